import type { MemoryRegion } from '../memory/memory-region.ts';
import { devfn as makeDevfn } from './bdf.ts';
import type { PciFunction } from './pci-function.ts';
import type { RootComplex } from './root-complex.ts';

/**
 * A PCI bus segment: up to 32 devices x 8 functions, the memory space in
 * which their BARs are decoded, and the bus number that software assigned
 * (0 for the root bus; a bridge's Secondary Bus Number below it).
 */
export class PciBus {
  readonly functions = new Map<number, PciFunction>();
  readonly memory: MemoryRegion;
  readonly host: RootComplex;
  private readonly numberSource: () => number;

  /** The bridge above this bus (undefined for the root bus). */
  readonly upstream: PciFunction | undefined;

  constructor(host: RootComplex, memory: MemoryRegion, numberSource: () => number, upstream?: PciFunction) {
    this.host = host;
    this.upstream = upstream;
    this.memory = memory;
    this.numberSource = numberSource;
  }

  get number(): number {
    return this.numberSource();
  }

  /** Plug a function in at device/function. Throws if the slot is taken (a topology bug). */
  plug(fn: PciFunction, device: number, func = 0): PciFunction {
    if (device < 0 || device > 31 || func < 0 || func > 7) throw new RangeError(`bad slot ${device}.${func}`);
    const df = makeDevfn(device, func);
    if (this.functions.has(df)) throw new Error(`slot ${device}.${func} is already occupied`);
    this.functions.set(df, fn);
    fn.attach(this, df);
    return fn;
  }

  /** The function at devfn, if present and visible (function 0 must exist for others to be seen). */
  lookup(devfnValue: number): PciFunction | undefined {
    if (!this.functions.has(devfnValue & ~7)) return undefined;
    return this.functions.get(devfnValue);
  }
}
