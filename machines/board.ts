import { FaultInjector } from '../src/fault/injector.ts';
import { MsiController } from '../src/irq/msi-controller.ts';
import { AddressSpace } from '../src/memory/address-space.ts';
import { GuestRam } from '../src/memory/guest-ram.ts';
import { MemoryRegion } from '../src/memory/memory-region.ts';
import { ecamAccessor, enumeratePci, type ConfigAccessor, type EnumeratedFunction } from '../src/pci/enumerate.ts';
import type { CpuArch, HostPlatform } from '../src/host/platform.ts';
import type { RamSpan } from '../src/host/page-allocator.ts';
import { ARM64, X86_64 } from './cpu.ts';
import { RootComplex } from '../src/pci/root-complex.ts';
import { Prng } from '../src/sim/prng.ts';
import { Scheduler } from '../src/sim/scheduler.ts';
import { Counters } from '../src/trace/counters.ts';
import { Tracer } from '../src/trace/tracer.ts';
import { stringifyExact } from '../src/trace/chrome-trace.ts';
import { machineLayout, type MachineKind, type MachineLayout } from './layout.ts';

export interface BoardOptions {
  /** Seed of the board's PRNG (default 1). */
  seed?: number;
  /** Bytes of RAM (default 1 GiB; sparse, so 1 TiB costs nothing until touched). */
  ramBytes?: number;
}

/** The 52-bit physical address space every machine decodes. */
const PHYS_SPACE = 2 ** 52;

/**
 * The hardware of a machine without its host software: RAM, system memory
 * map, interrupt controller doorbell, PCIe root complex with ECAM and memory
 * windows, virtual time, the PRNG, tracing and counters. Machines add the
 * IOMMU, devices and the host kernel on top of it.
 */
export class Board implements HostPlatform {
  readonly kind: MachineKind;
  readonly cpu: CpuArch;
  readonly pciConfig: ConfigAccessor;
  readonly ramSpans: readonly RamSpan[];
  readonly layout: MachineLayout;
  readonly scheduler = new Scheduler();
  readonly prng: Prng;
  readonly tracer: Tracer;
  readonly counters = new Counters();
  readonly faults = new FaultInjector();
  readonly ram: GuestRam;
  readonly sysmemRoot = MemoryRegion.container('system', PHYS_SPACE);
  readonly sysmem: AddressSpace;
  readonly msi: MsiController;
  readonly rc: RootComplex;

  constructor(kind: MachineKind, opts: BoardOptions = {}) {
    this.kind = kind;
    const ramBytes = opts.ramBytes ?? 2 ** 30;
    this.layout = machineLayout(kind, ramBytes);
    this.cpu = kind === 'q35-vtd' ? X86_64 : ARM64;
    this.ramSpans = this.layout.ram.map((r) => ({ gpa: r.gpa, size: r.size }));
    this.prng = new Prng(opts.seed ?? 1);
    this.tracer = new Tracer(() => this.scheduler.now);
    this.faults.onInjection((p, a, ctx) =>
      this.tracer.trace('fault.inject', p.name, { point: p.name, action: a.kind, ctx: ctx === undefined ? '' : stringifyExact(ctx) }),
    );
    this.ram = new GuestRam(ramBytes);
    this.sysmem = new AddressSpace('system', this.sysmemRoot, this.tracer);
    for (const [i, r] of this.layout.ram.entries()) {
      this.sysmemRoot.addSubregion(r.gpa, MemoryRegion.ram(`ram${i}`, this.ram, r.offset, r.size));
    }
    const l = this.layout;
    this.msi = new MsiController(l.msiBase, l.msiSize, this.tracer, () => this.scheduler.now);
    this.sysmemRoot.addSubregion(l.msiBase, this.msi.region, 1);
    this.rc = new RootComplex({ sysmem: this.sysmem, tracer: this.tracer, counters: this.counters, ecamBuses: l.ecamBuses, msi: this.msi });
    this.sysmemRoot.addSubregion(l.ecamBase, this.rc.ecam, 1);
    this.pciConfig = ecamAccessor(this.sysmem, l.ecamBase);
    for (const [name, [base, limit]] of [['pci-mmio32', l.mmio32], ['pci-mmio64', l.mmio64]] as const) {
      this.sysmemRoot.addSubregion(base, MemoryRegion.alias(name, this.rc.pciMemory, base, limit - base + 1));
    }
  }

  now(): number {
    return this.scheduler.now;
  }

  /** Guest physical address of byte `offset` of RAM. */
  ramAddress(offset: number): number {
    for (const r of this.layout.ram) if (offset >= r.offset && offset < r.offset + r.size) return r.gpa + (offset - r.offset);
    throw new RangeError(`RAM offset ${offset} beyond ${this.ram.size} bytes`);
  }

  /** Byte offset in `ram` of guest physical address `gpa`, or undefined when no RAM is there. */
  ramOffset(gpa: number): number | undefined {
    for (const r of this.layout.ram) if (gpa >= r.gpa && gpa < r.gpa + r.size) return r.offset + (gpa - r.gpa);
    return undefined;
  }

  /** Give back the frames of [gpa, gpa+bytes) of RAM: they read as zeros again (freed host pages). */
  discardRam(gpa: number, bytes: number): void {
    for (const r of this.layout.ram) {
      if (gpa >= r.gpa && gpa + bytes <= r.gpa + r.size) {
        this.ram.discard(r.offset + (gpa - r.gpa), bytes);
        return;
      }
    }
    this.sysmem.writeFrom(gpa, new Uint8Array(bytes));
  }

  /** Boot-time PCI enumeration through ECAM, as firmware does it. */
  enumeratePci(): EnumeratedFunction[] {
    const l = this.layout;
    return enumeratePci(this.pciConfig, { mmio32: l.mmio32, mmio64: l.mmio64 });
  }
}
