import { MemoryRegion } from '../memory/memory-region.ts';
import { PciBus } from './bus.ts';
import { CFG, COMMAND } from './header.ts';
import { PciFunction, type PciIdentity } from './pci-function.ts';
import type { RootComplex } from './root-complex.ts';

const BRIDGE_SPACE = 2 ** 52;
const TWO_32 = 0x1_0000_0000;

/**
 * A PCI-to-PCI bridge with a type 1 header (PCI-to-PCI Bridge Architecture
 * 1.2 §3.2; a PCIe root or switch port is one). Software assigns its bus
 * numbers and memory windows; the secondary bus's BARs are visible upstream
 * only inside the windows and only while memory decoding is on, as QEMU
 * models it with aliases of the secondary bus's memory.
 */
export class PciBridge extends PciFunction {
  readonly secondary: PciBus;
  private readonly secondaryMemory = MemoryRegion.container('bridge-secondary-memory', BRIDGE_SPACE);
  private windows: MemoryRegion[] = [];

  constructor(name: string, id: PciIdentity, host: RootComplex) {
    super(name, id, 1);
    const c = this.config;
    c.setWritable(CFG.PRIMARY_BUS, 3, 0xffffff);
    // Memory base/limit: bits [15:4] = address [31:20]; low nibble 0 = 32-bit window.
    c.setWritable(CFG.MEMORY_BASE, 2, 0xfff0);
    c.setWritable(CFG.MEMORY_LIMIT, 2, 0xfff0);
    // Prefetchable window: low nibble 1 = 64-bit capable.
    c.set16(CFG.PREF_MEMORY_BASE, 1);
    c.set16(CFG.PREF_MEMORY_LIMIT, 1);
    c.setWritable(CFG.PREF_MEMORY_BASE, 2, 0xfff0);
    c.setWritable(CFG.PREF_MEMORY_LIMIT, 2, 0xfff0);
    c.setWritable(CFG.PREF_BASE_UPPER32, 4, 0xffffffff);
    c.setWritable(CFG.PREF_LIMIT_UPPER32, 4, 0xffffffff);
    c.setWritable(CFG.BRIDGE_CONTROL, 2, 0x0fff);
    this.secondary = new PciBus(host, this.secondaryMemory, () => this.config.get8(CFG.SECONDARY_BUS), this);
    c.onWrite(CFG.MEMORY_BASE, 0x30 - CFG.MEMORY_BASE, () => this.updateWindows());
  }

  get secondaryBus(): number {
    return this.config.get8(CFG.SECONDARY_BUS);
  }

  get subordinateBus(): number {
    return this.config.get8(CFG.SUBORDINATE_BUS);
  }

  /** Non-prefetchable window [base, limit], or undefined when limit < base (closed). */
  memoryWindow(): [number, number] | undefined {
    const base = (this.config.get16(CFG.MEMORY_BASE) & 0xfff0) * 0x10000;
    const limit = (this.config.get16(CFG.MEMORY_LIMIT) & 0xfff0) * 0x10000 + 0xfffff;
    return limit > base ? [base, limit] : undefined;
  }

  prefetchableWindow(): [number, number] | undefined {
    const base = (this.config.get16(CFG.PREF_MEMORY_BASE) & 0xfff0) * 0x10000 + this.config.get32(CFG.PREF_BASE_UPPER32) * TWO_32;
    const limit =
      (this.config.get16(CFG.PREF_MEMORY_LIMIT) & 0xfff0) * 0x10000 + 0xfffff + this.config.get32(CFG.PREF_LIMIT_UPPER32) * TWO_32;
    return limit > base && limit < BRIDGE_SPACE ? [base, limit] : undefined;
  }

  protected override commandChanged(): void {
    super.commandChanged();
    this.updateWindows();
  }

  override attach(bus: PciBus, devfnValue: number): void {
    super.attach(bus, devfnValue);
    this.updateWindows();
  }

  protected override deviceReset(): void {
    this.updateWindows();
  }

  private updateWindows(): void {
    const parent = this.bus;
    if (parent === undefined) return;
    for (const w of this.windows) {
      parent.memory.removeSubregion(w);
      w.dispose();
    }
    this.windows = [];
    if ((this.command & COMMAND.MEMORY) === 0) return;
    for (const [i, win] of [this.memoryWindow(), this.prefetchableWindow()].entries()) {
      if (win === undefined) continue;
      const [base, limit] = win;
      const alias = MemoryRegion.alias(`${this.name}-window${i}`, this.secondaryMemory, base, limit - base + 1);
      parent.memory.addSubregion(base, alias, 0);
      this.windows.push(alias);
    }
  }
}
