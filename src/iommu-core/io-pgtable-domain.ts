import type { IotlbGather, PageTableBuilder } from './io-pgtable.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import type { DomainGeometry, DomainType, DriverDomain } from './types.ts';

/**
 * A paging domain whose translations live in an io-pgtable builder: the part
 * every driver shares (map and unmap through the builder, iova_to_phys,
 * parking freed table pages until the driver has invalidated). A driver
 * extends it with how its hardware is attached and invalidated.
 */
export abstract class IoPgtableDomain implements DriverDomain {
  readonly type: DomainType = 'paging';
  readonly pgsizes: readonly number[];
  readonly geometry: DomainGeometry;
  readonly stats = { mapCalls: 0, leafWrites: 0 };

  constructor(readonly pgtable: PageTableBuilder, inputBits: number) {
    this.pgsizes = pgtable.pgsizes;
    this.geometry = { apertureStart: 0, apertureEnd: 2 ** inputBits - 1 };
  }

  abstract attachDev(dev: PciFunction): number;

  /** Invalidate the hardware's caches for what `gather` covers and wait for completion. */
  protected abstract flushGather(gather: IotlbGather): void;

  abstract flushIotlbAll(): void;

  mapPages(iova: number, pa: number, pgsize: number, pgcount: number, prot: number): { mapped: number; err: number } {
    this.stats.mapCalls++;
    const before = this.pgtable.stats.leafWrites;
    const err = this.pgtable.map(iova, pa, pgsize * pgcount, prot);
    this.stats.leafWrites += this.pgtable.stats.leafWrites - before;
    return err < 0 ? { mapped: 0, err } : { mapped: pgsize * pgcount, err: 0 };
  }

  unmapPages(iova: number, pgsize: number, pgcount: number, gather: IotlbGather): number {
    return this.pgtable.unmap(iova, pgsize * pgcount, gather);
  }

  iovaToPhys(iova: number): number {
    return this.pgtable.iovaToPhys(iova);
  }

  iotlbSync(gather: IotlbGather): void {
    this.flushGather(gather);
    this.pgtable.releaseGathered(gather);
  }

  free(): void {
    this.pgtable.destroy();
  }
}
