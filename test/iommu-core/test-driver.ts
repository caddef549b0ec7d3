import { createVmsaBuilder } from '../../iommu/pgtable/vmsa-builder.ts';
import type { IotlbGather } from '../../src/iommu-core/io-pgtable.ts';
import { Board } from '../../machines/board.ts';
import { Host } from '../../src/host/host.ts';
import type { Mm } from '../../src/host/mm.ts';
import { IommuCore } from '../../src/iommu-core/core.ts';
import { IoPgtableDomain } from '../../src/iommu-core/io-pgtable-domain.ts';
import { IopfQueue } from '../../src/iommu-core/iopf.ts';
import { SvaManager } from '../../src/iommu-core/sva.ts';
import type { DriverDomain, HwInfo, IommuDriver, PageRequest, PageResponseCode, ResvRegion } from '../../src/iommu-core/types.ts';
import type { PciFunction } from '../../src/pci/pci-function.ts';
import { BareFunction } from '../pci/helpers.ts';

/**
 * A driver for core tests with no hardware behind it (the role of the
 * kernel's iommufd mock domain): domains keep their tables in guest memory
 * through the real builder, and the driver records what the core asked of it.
 */
export class TestDriver implements IommuDriver {
  readonly name = 'test-iommu';
  readonly attached = new Map<PciFunction, DriverDomain>();
  readonly pasidAttached = new Map<string, DriverDomain>();
  readonly responses: { dev: string; grpid: number; pasid: number; code: PageResponseCode }[] = [];
  readonly flushes: string[] = [];
  refuseAttach = new Set<PciFunction>();
  /** What enforce_cache_coherency answers for paging domains allocated from now on. */
  coherentDomains = false;
  /** max_pasids per device (default 1 << 16). */
  readonly maxPasidsOf = new Map<PciFunction, number>();
  readonly blockedDomain: DriverDomain;
  readonly identityDomain: DriverDomain;
  /** The I/O page-fault queue its devices join (mock_iommu_iopf_queue); setup() gives it the test's own. */
  iopfQueue: IopfQueue;
  /** mdev->iopf_refcount per device. */
  readonly iopfRefs = new Map<PciFunction, number>();

  constructor(readonly host: Host) {
    this.iopfQueue = host.iopf;
    const self = this;
    const staticDomain = (type: 'blocked' | 'identity'): DriverDomain => ({
      type,
      pgsizes: [],
      geometry: { apertureStart: 0, apertureEnd: 0 },
      attachDev(dev) {
        return self.attachRid(dev, this);
      },
      setDevPasid(dev, pasid) {
        const key = `${dev.bdf}/${pasid}`;
        if (type === 'blocked') {
          self.iopfDisable(dev, self.pasidAttached.get(key));
          self.pasidAttached.delete(key);
          return 0;
        }
        return self.attachPasid(dev, pasid, this);
      },
      free() {},
    });
    this.blockedDomain = staticDomain('blocked');
    this.identityDomain = staticDomain('identity');
  }

  /**
   * mock_dev_enable_iopf() (iommufd/selftest.c): a domain with a fault
   * handler takes a reference; the first puts the device on the queue.
   */
  iopfEnable(dev: PciFunction, domain: DriverDomain | undefined): number {
    if (domain?.hasIopfHandler !== true) return 0;
    const n = this.iopfRefs.get(dev) ?? 0;
    if (n === 0) {
      const r = this.iopfQueue.addDevice(dev);
      if (r < 0) return r;
    }
    this.iopfRefs.set(dev, n + 1);
    return 0;
  }

  /** mock_dev_disable_iopf(): the last reference takes the device off the queue. */
  iopfDisable(dev: PciFunction, domain: DriverDomain | undefined): void {
    if (domain?.hasIopfHandler !== true) return;
    const n = (this.iopfRefs.get(dev) ?? 0) - 1;
    if (n > 0) this.iopfRefs.set(dev, n);
    else {
      this.iopfRefs.delete(dev);
      this.iopfQueue.removeDevice(dev);
    }
  }

  /** mock_domain_nop_attach(): the new domain's reference, then the old one's dropped. */
  attachRid(dev: PciFunction, domain: DriverDomain): number {
    const r = this.iopfEnable(dev, domain);
    if (r < 0) return r;
    this.iopfDisable(dev, this.attached.get(dev));
    this.attached.set(dev, domain);
    return 0;
  }

  /** mock_domain_set_dev_pasid_nop(). */
  attachPasid(dev: PciFunction, pasid: number, domain: DriverDomain): number {
    const key = `${dev.bdf}/${pasid}`;
    const r = this.iopfEnable(dev, domain);
    if (r < 0) return r;
    this.iopfDisable(dev, this.pasidAttached.get(key));
    this.pasidAttached.set(key, domain);
    return 0;
  }

  handles(): boolean {
    return true;
  }
  probeDevice(): number {
    return 0;
  }
  releaseDevice(): void {}

  domainAllocPaging(): DriverDomain | number {
    const b = createVmsaBuilder(this.host.platform.sysmem, this.host.allocator.tablePages(), { stage: 1, granule: 4096, iaBits: 48, oaBits: 48 });
    if (typeof b === 'number') return b;
    const self = this;
    const coherent = this.coherentDomains;
    return new (class extends IoPgtableDomain {
      enforceCacheCoherency(): boolean {
        return coherent;
      }
      attachDev(dev: PciFunction): number {
        if (self.refuseAttach.has(dev)) return -22;
        return self.attachRid(dev, this);
      }
      setDevPasid(dev: PciFunction, pasid: number): number {
        return self.attachPasid(dev, pasid, this);
      }
      protected flushGather(g: IotlbGather): void {
        self.flushes.push(`range ${g.start.toString(16)}-${g.end.toString(16)}`);
      }
      flushIotlbAll(): void {
        self.flushes.push('all');
      }
    })(b, 48);
  }

  domainAllocSva(_dev: PciFunction, mm: Mm): DriverDomain | number {
    const self = this;
    const d: DriverDomain = {
      type: 'sva',
      pgsizes: [],
      geometry: { apertureStart: 0, apertureEnd: 2 ** 48 - 1 },
      attachDev: () => -22,
      setDevPasid(dev, pasid) {
        return self.attachPasid(dev, pasid, d);
      },
      iovaToPhys: (iova) => mm.physOf(iova),
      flushIotlbAll: () => self.flushes.push('sva-all'),
      free() {},
    };
    return d;
  }

  getResvRegions(): ResvRegion[] {
    return [{ start: 0x800_0000, length: 0x10_0000, type: 'sw-msi', prot: 3 }];
  }
  pageResponse(dev: PciFunction, req: PageRequest, code: PageResponseCode): void {
    this.responses.push({ dev: dev.bdf, grpid: req.grpid, pasid: req.pasid, code });
  }
  hwInfo(): HwInfo {
    return { type: 0, data: new Uint8Array(0), capabilities: 0 };
  }
  maxPasids(dev: PciFunction): number {
    return this.maxPasidsOf.get(dev) ?? 1 << 16;
  }
}

export function setup() {
  const board = new Board('virt-smmuv3', { ramBytes: 256 * 2 ** 20 });
  const host = new Host(board);
  const core = new IommuCore();
  const driver = new TestDriver(host);
  core.registerDriver(driver);
  const iopf = new IopfQueue(core, board.scheduler, board.tracer, board.counters, { serviceNs: 500 });
  driver.iopfQueue = iopf;
  const sva = new SvaManager(core, iopf, board.tracer);
  const dev = (slot: number) => {
    const f = new BareFunction(`d${slot}`);
    board.rc.plug(f, slot);
    return f;
  };
  return { board, host, core, driver, iopf, sva, dev };
}
