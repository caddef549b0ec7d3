import { formatBdf } from './bdf.ts';
import { BAR_BITS, CFG, COMMAND, HEADER_TYPE_MULTIFUNCTION, VENDOR_ABSENT } from './header.ts';
import type { PhysMem } from '../memory/phys-mem.ts';

/** Configuration read/write by bus, devfn and register, as host software issues them. */
export interface ConfigAccessor {
  read(bus: number, devfn: number, reg: number, size: 1 | 2 | 4): number;
  write(bus: number, devfn: number, reg: number, size: 1 | 2 | 4, value: number): void;
}

/** Configuration access through an ECAM window in physical memory (PCIe 7.2.2). */
export function ecamAccessor(mem: PhysMem, base: number): ConfigAccessor {
  const addr = (bus: number, devfn: number, reg: number) => base + bus * 0x100000 + devfn * 0x1000 + reg;
  return {
    read(bus, devfn, reg, size) {
      const a = addr(bus, devfn, reg);
      return size === 4 ? mem.read32(a) : size === 2 ? mem.read16(a) : mem.read8(a);
    },
    write(bus, devfn, reg, size, value) {
      const a = addr(bus, devfn, reg);
      if (size === 4) mem.write32(a, value);
      else if (size === 2) mem.write16(a, value);
      else mem.write8(a, value);
    },
  };
}

export interface EnumeratedBar {
  index: number;
  kind: 'mem32' | 'mem64' | 'io';
  prefetchable: boolean;
  size: number;
  /** Assigned address; undefined for I/O BARs (no I/O space is allocated) or when space ran out. */
  addr: number | undefined;
}

export interface EnumeratedFunction {
  bdf: string;
  bus: number;
  devfn: number;
  vendorId: number;
  deviceId: number;
  classCode: number;
  headerType: number;
  bars: EnumeratedBar[];
  /** For bridges: the bus numbers assigned below. */
  secondaryBus?: number;
  subordinateBus?: number;
}

export interface EnumerateOptions {
  /** Non-prefetchable 32-bit memory window [base, limit]. */
  mmio32: [number, number];
  /** 64-bit prefetchable window [base, limit]; 64-bit prefetchable BARs go here when given. */
  mmio64?: [number, number];
}

const MIB = 0x100000;
const TWO_32 = 0x1_0000_0000;

class Allocator {
  next: number;
  constructor(readonly base: number, readonly limit: number) {
    this.next = base;
  }
  alloc(size: number): number | undefined {
    const a = Math.ceil(this.next / size) * size;
    if (a + size - 1 > this.limit) return undefined;
    this.next = a + size;
    return a;
  }
  alignTo(align: number): void {
    this.next = Math.ceil(this.next / align) * align;
  }
}

/**
 * What firmware (or Linux's pci_scan/assign code) does at boot: walk the
 * hierarchy through configuration space, number the buses below bridges,
 * size every BAR by writing all-ones, assign addresses from the windows,
 * program bridge windows and turn on memory decoding. Bus mastering is left
 * to drivers (pci_set_master), except on bridges, which forward upstream DMA
 * only when theirs is set.
 */
export function enumeratePci(cfg: ConfigAccessor, opts: EnumerateOptions): EnumeratedFunction[] {
  const np = new Allocator(opts.mmio32[0], opts.mmio32[1]);
  const pref = opts.mmio64 ? new Allocator(opts.mmio64[0], opts.mmio64[1]) : np;
  const found: EnumeratedFunction[] = [];
  let lastBus = 0;

  const scanBus = (bus: number, depth: number): void => {
    if (depth > 32) return;
    for (let dev = 0; dev < 32; dev++) {
      if (cfg.read(bus, dev << 3, CFG.VENDOR_ID, 2) === VENDOR_ABSENT) continue;
      const multi = (cfg.read(bus, dev << 3, CFG.HEADER_TYPE, 1) & HEADER_TYPE_MULTIFUNCTION) !== 0;
      for (let fn = 0; fn < (multi ? 8 : 1); fn++) {
        const devfn = (dev << 3) | fn;
        const vendorId = cfg.read(bus, devfn, CFG.VENDOR_ID, 2);
        if (vendorId === VENDOR_ABSENT) continue;
        const headerType = cfg.read(bus, devfn, CFG.HEADER_TYPE, 1) & 0x7f;
        const f: EnumeratedFunction = {
          bdf: formatBdf({ segment: 0, bus, device: dev, fn }),
          bus,
          devfn,
          vendorId,
          deviceId: cfg.read(bus, devfn, CFG.DEVICE_ID, 2),
          classCode: cfg.read(bus, devfn, 0x08, 4) >>> 8,
          headerType,
          bars: sizeBars(cfg, bus, devfn, headerType === 1 ? 2 : 6),
        };
        found.push(f);
        for (const bar of f.bars) {
          if (bar.kind === 'io') continue;
          const a = bar.prefetchable && bar.kind === 'mem64' ? pref.alloc(bar.size) : np.alloc(bar.size);
          bar.addr = a;
          if (a !== undefined) writeBar(cfg, bus, devfn, bar, a);
        }
        if (headerType === 1) {
          const secondary = ++lastBus;
          cfg.write(bus, devfn, CFG.PRIMARY_BUS, 1, bus);
          cfg.write(bus, devfn, CFG.SECONDARY_BUS, 1, secondary);
          cfg.write(bus, devfn, CFG.SUBORDINATE_BUS, 1, 0xff);
          np.alignTo(MIB);
          pref.alignTo(MIB);
          const npStart = np.next;
          const prefStart = pref.next;
          scanBus(secondary, depth + 1);
          np.alignTo(MIB);
          pref.alignTo(MIB);
          cfg.write(bus, devfn, CFG.SUBORDINATE_BUS, 1, lastBus);
          f.secondaryBus = secondary;
          f.subordinateBus = lastBus;
          programWindow(cfg, bus, devfn, CFG.MEMORY_BASE, npStart, np.next);
          if (pref !== np) programWindow(cfg, bus, devfn, CFG.PREF_MEMORY_BASE, prefStart, pref.next);
          else programWindow(cfg, bus, devfn, CFG.PREF_MEMORY_BASE, 1, 0);
        }
        const cmd = cfg.read(bus, devfn, CFG.COMMAND, 2);
        const enable = COMMAND.MEMORY | (headerType === 1 ? COMMAND.MASTER : 0);
        cfg.write(bus, devfn, CFG.COMMAND, 2, cmd | enable);
      }
    }
  };
  scanBus(0, 0);
  return found;
}

/** Size each BAR: write all-ones with decoding off, read back the mask, restore. */
function sizeBars(cfg: ConfigAccessor, bus: number, devfn: number, count: number): EnumeratedBar[] {
  const cmd = cfg.read(bus, devfn, CFG.COMMAND, 2);
  cfg.write(bus, devfn, CFG.COMMAND, 2, cmd & ~(COMMAND.MEMORY | COMMAND.IO));
  const bars: EnumeratedBar[] = [];
  for (let i = 0; i < count; i++) {
    const off = CFG.BAR0 + 4 * i;
    const orig = cfg.read(bus, devfn, off, 4);
    cfg.write(bus, devfn, off, 4, 0xffffffff);
    const mask = cfg.read(bus, devfn, off, 4);
    cfg.write(bus, devfn, off, 4, orig);
    if (mask === 0) continue;
    if (orig & BAR_BITS.IO_SPACE) {
      const size = ((~(mask & 0xfffffffc) >>> 0) & 0xffff) + 1;
      bars.push({ index: i, kind: 'io', prefetchable: false, size, addr: undefined });
      continue;
    }
    const is64 = (orig & 0x6) === BAR_BITS.MEM_TYPE_64;
    const lowMask = (mask & 0xfffffff0) >>> 0;
    let highMask = 0xffffffff;
    if (is64 && i + 1 < count) {
      const origHi = cfg.read(bus, devfn, off + 4, 4);
      cfg.write(bus, devfn, off + 4, 4, 0xffffffff);
      highMask = cfg.read(bus, devfn, off + 4, 4);
      cfg.write(bus, devfn, off + 4, 4, origHi);
    }
    if (!is64 && lowMask === 0) continue;
    // The size is the two's complement of the writable address bits across both halves.
    const size = highMask === 0xffffffff ? TWO_32 - lowMask : (TWO_32 - highMask) * TWO_32;
    bars.push({ index: i, kind: is64 ? 'mem64' : 'mem32', prefetchable: (orig & BAR_BITS.PREFETCH) !== 0, size, addr: undefined });
    if (is64) i++;
  }
  cfg.write(bus, devfn, CFG.COMMAND, 2, cmd);
  return bars;
}

function writeBar(cfg: ConfigAccessor, bus: number, devfn: number, bar: EnumeratedBar, addr: number): void {
  const off = CFG.BAR0 + 4 * bar.index;
  const low = cfg.read(bus, devfn, off, 4) & 0xf;
  cfg.write(bus, devfn, off, 4, ((addr % TWO_32) | low) >>> 0);
  if (bar.kind === 'mem64') cfg.write(bus, devfn, off + 4, 4, Math.floor(addr / TWO_32));
}

/** Program a bridge window [start, end) in 1 MiB units; an empty one is closed (base > limit). */
function programWindow(cfg: ConfigAccessor, bus: number, devfn: number, baseReg: number, start: number, end: number): void {
  const empty = end <= start;
  const base = empty ? 0xfff00000 : start;
  const limit = empty ? 0 : end - 1;
  const enc = (a: number) => ((Math.floor(a / 0x10000) & 0xfff0) | 0) & 0xffff;
  const lowBits = cfg.read(bus, devfn, baseReg, 2) & 0xf;
  cfg.write(bus, devfn, baseReg, 2, enc(base) | lowBits);
  cfg.write(bus, devfn, baseReg + 2, 2, enc(limit) | lowBits);
  if (baseReg === CFG.PREF_MEMORY_BASE) {
    cfg.write(bus, devfn, CFG.PREF_BASE_UPPER32, 4, empty ? 0 : Math.floor(base / TWO_32));
    cfg.write(bus, devfn, CFG.PREF_LIMIT_UPPER32, 4, empty ? 0 : Math.floor(limit / TWO_32));
  }
}
