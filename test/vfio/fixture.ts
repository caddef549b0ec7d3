import type { Test } from 'tap';
import { TestDmaDevice } from '../../devices/test-dma-device.ts';
import { Board } from '../../machines/board.ts';
import type { MachineKind } from '../../machines/layout.ts';
import { createMachine, type Machine, type MachineOptions } from '../../machines/machine.ts';
import { parseBdf } from '../../src/pci/bdf.ts';
import { Host } from '../../src/host/host.ts';
import type { Process, SpawnOptions } from '../../src/host/process.ts';
import type { IommuDomain } from '../../src/iommu-core/domain.ts';
import type { PciFunction } from '../../src/pci/pci-function.ts';
import type { DmaRemapper } from '../../src/pci/remapper.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfio_bitmap,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
} from '../../src/uapi/vfio.ts';
import { bindVfioPci } from '../../src/vfio/bind.ts';
import { vfioModule, type VfioModule, type VfioOptions } from '../../src/vfio/module.ts';
import type { VfioPciDevice } from '../../src/vfio/vfio-pci.ts';
import { TestDriver } from '../iommu-core/test-driver.ts';
import { BareFunction } from '../pci/helpers.ts';

export const KINDS: MachineKind[] = ['virt-smmuv3', 'q35-vtd'];
export const PAGE = 4096;
export const MIB2 = 2 ** 21;
export const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

/**
 * A translation agent for tests until the SMMUv3/VT-d models land: each DMA
 * piece goes through the domain the IOMMU core has attached for the
 * requester (and PASID), so DMA sees exactly what VFIO mapped.
 */
export function coreRemapper(host: Host): DmaRemapper {
  return {
    translate(txn, addr, out) {
      const dev = host.iommu.probedDevices().find((d) => d.requesterId === txn.requesterId);
      const dom = dev === undefined ? undefined : host.iommu.domainForPasid(dev, txn.pasid);
      if (dom === undefined || dom.type === 'blocked') {
        out.status = 'UR';
        out.fault = 'BLOCKED';
        return false;
      }
      const pa = dom.type === 'identity' ? addr : dom.iovaToPhys(addr);
      if (pa < 0) {
        out.status = 'UR';
        out.fault = 'F_TRANSLATION';
        return false;
      }
      out.pa = pa;
      out.length = PAGE - (addr % PAGE);
      return true;
    },
  };
}

export interface Fixture {
  board: Board;
  host: Host;
  driver: TestDriver;
  /** The test DMA device at 00:01.0 (PCIe, FLR, MSI-X) and a bare function at 00:02.0 (one 4K BAR). */
  dma: TestDmaDevice;
  bare: BareFunction;
  vdma: VfioPciDevice;
  vbare: VfioPciDevice;
  /**
   * A device SVA can bind: the DMA engine (PASID, ATS, PRI) at 00:05.0 on a
   * real machine, whose IOMMU needs PASID support; the test device itself
   * under the test driver, which binds anything.
   */
  sva: PciFunction;
  /** A second one (00:06.0 on a real machine; the bare function under the test driver). */
  sva2: PciFunction;
  p: Process;
  spawn(opts?: SpawnOptions): Process;
  groupOf(fn: PciFunction): number;
}

export interface SetupOptions {
  kind?: MachineKind;
  ramBytes?: number;
  /** vfio_iommu_type1 module parameters (writable at run time in Linux too: /sys/module/vfio_iommu_type1/parameters/). */
  vfio?: VfioOptions;
  proc?: SpawnOptions;
  /** More functions on the root bus ('0000:00:DD.F'), probed and bound to vfio-pci like the others. */
  plug?: { bdf: string; fn: PciFunction }[];
  /** Test-driver variant only: touch the bare board before enumeration. */
  extra?: (board: Board) => void;
}

export function setup(opts: SetupOptions = {}): Fixture {
  const board = new Board(opts.kind ?? 'virt-smmuv3', { ramBytes: opts.ramBytes ?? 256 * 2 ** 20 });
  const host = new Host(board);
  const driver = new TestDriver(host);
  host.iommu.registerDriver(driver);
  setVfioParams(vfioModule(host), opts.vfio);
  const dma = new TestDmaDevice(board, 'td0');
  board.rc.plug(dma, 1);
  const bare = new BareFunction('bare', {}, [{ kind: 'mem32', size: 0x1000 }]);
  board.rc.plug(bare, 2);
  for (const { bdf, fn } of opts.plug ?? []) {
    const b = parseBdf(bdf)!;
    board.rc.plug(fn, b.device, b.fn);
  }
  opts.extra?.(board);
  board.enumeratePci();
  board.rc.remapper = coreRemapper(host);
  const vdma = bindVfioPci(host, dma) as VfioPciDevice;
  const vbare = bindVfioPci(host, bare) as VfioPciDevice;
  for (const { fn } of opts.plug ?? []) bindVfioPci(host, fn);
  const spawn = (o?: SpawnOptions) => host.spawn({ memlockLimit: 2 ** 40, ...o });
  return {
    board,
    host,
    driver,
    dma,
    bare,
    vdma,
    vbare,
    sva: dma,
    sva2: bare,
    p: spawn(opts.proc),
    spawn,
    groupOf: (fn) => host.iommu.groupOf(fn)!.id,
  };
}

function setVfioParams(mod: VfioModule, opts: VfioOptions = {}): void {
  if (opts.dmaEntryLimit !== undefined) mod.dmaEntryLimit = opts.dmaEntryLimit;
  if (opts.disableHugepages !== undefined) mod.disableHugepages = opts.disableHugepages;
}

/**
 * The same endpoints on a real machine (createMachine): the SMMUv3 or VT-d
 * model behind the root complex, programmed by its driver, every endpoint
 * probed and bound to vfio-pci by the machine itself.
 */
export function setupMachine(kind: MachineKind, opts: SetupOptions = {}, machineOptions: Partial<MachineOptions> = {}): MachineFixture {
  if (opts.extra !== undefined) throw new Error('extra is for the test-driver variant; use plug');
  const m = createMachine(kind, {
    ramBytes: opts.ramBytes ?? 256 * 2 ** 20,
    ...machineOptions,
    devices: [
      { bdf: '0000:00:01.0', kind: 'test-device', name: 'td0' },
      { bdf: '0000:00:02.0', kind: () => new BareFunction('bare', {}, [{ kind: 'mem32', size: 0x1000 }]), name: 'bare' },
      { bdf: '0000:00:05.0', kind: 'dma-engine', name: 'sva0' },
      { bdf: '0000:00:06.0', kind: 'dma-engine', name: 'sva1' },
      ...(opts.plug ?? []).map(({ bdf, fn }) => ({ bdf, kind: () => fn, name: fn.name })),
    ],
  });
  const host = m.host;
  const mod = vfioModule(host);
  setVfioParams(mod, opts.vfio);
  const dma = m.device('0000:00:01.0') as TestDmaDevice;
  const bare = m.device('0000:00:02.0') as BareFunction;
  const vfioOf = (fn: PciFunction) => mod.devices.find((d) => d.fn === fn)!;
  const spawn = (o?: SpawnOptions) => host.spawn({ memlockLimit: 2 ** 40, ...o });
  return {
    machine: m,
    board: m.board,
    host,
    driver: undefined,
    dma,
    bare,
    vdma: vfioOf(dma),
    vbare: vfioOf(bare),
    sva: m.device('0000:00:05.0'),
    sva2: m.device('0000:00:06.0'),
    p: spawn(opts.proc),
    spawn,
    groupOf: (fn) => host.iommu.groupOf(fn)!.id,
  };
}

export type MachineFixture = Omit<Fixture, 'driver'> & { machine?: Machine; driver: TestDriver | undefined };

/**
 * Rules of VFIO type1 that a backend may lack. The kernel's iommufd VFIO
 * compatibility (drivers/iommu/iommufd/vfio_compat.c) has no VFIO_UPDATE_VADDR
 * (check_extension says 0, MAP/UNMAP_FLAG_VADDR are -EINVAL), no dirty page
 * tracking (VFIO_IOMMU_DIRTY_PAGES is -ENOIOCTLCMD, UNMAP's GET_DIRTY_BITMAP
 * -EINVAL) and no SVA bind; and none of vfio_iommu_type1's module parameters:
 * no dma_entry_limit (DMA_AVAIL is a constant U32_MAX) and no
 * disable_hugepages (iommufd has IOMMU_OPTION_HUGE_PAGES instead). A
 * variant that runs on it lists these in `skips`.
 */
export type Rule = 'update-vaddr' | 'dirty-pages' | 'sva-bind' | 'dma-entry-limit' | 'disable-hugepages';

/**
 * One backend the VFIO rule suite runs on. Each test file loops over
 * VARIANTS with t.test(v.name, ...). Hardware facts a rule sees differently
 * per machine are fields here, so tests assert the real values.
 */
export interface Variant {
  name: string;
  /** The board's architecture (page-table format; for real machines also the IOMMU). */
  kind: MachineKind;
  /** A real machine (SMMUv3/VT-d model and driver), or the core test driver on a bare board. */
  real: boolean;
  /**
   * Who serves /dev/vfio/vfio: VFIO's type1 container, or iommufd's VFIO
   * compatibility (MachineOptions.vfioContainer 'iommufd'), whose rules differ
   * where vfio_compat.c differs from vfio_iommu_type1.c; tests assert each
   * backend's own behaviour there.
   */
  container: 'type1' | 'iommufd';
  skips: ReadonlySet<Rule>;
  /** The IOMMU's reserved MSI window [start, end] that VFIO carves out of the valid IOVAs. */
  msiWindow: readonly [number, number];
  /** The highest IOVA of a paging domain (its aperture end). */
  apertureEnd: number;
  /** vfio's iova_pgsizes: the domain's page sizes. */
  pgsizes: number;
  /** The fault name a DMA to an unmapped IOVA gets (the IOMMU's event or fault reason). */
  unmappedFault: string;
  /**
   * Runs the heavy cases (100,000 mappings, fail-nth sweeps, the map bench).
   * They run on one real machine only (q35-vtd), to keep the suite fast.
   */
  heavy: boolean;
  setup(opts?: SetupOptions): MachineFixture;
}

const SMMU_MSI: readonly [number, number] = [0x800_0000, 0x80f_ffff]; // arm-smmu-v3.c MSI_IOVA_BASE, MSI_IOVA_LENGTH (1 MiB)
const VTD_MSI: readonly [number, number] = [0xfee0_0000, 0xfeef_ffff]; // intel-iommu IOAPIC_RANGE_START/END
const PGSIZES = PAGE | MIB2 | 2 ** 30;

/** What iommufd's VFIO compatibility does not offer (see Rule). */
const COMPAT_SKIPS: ReadonlySet<Rule> = new Set<Rule>(['update-vaddr', 'dirty-pages', 'sva-bind', 'dma-entry-limit', 'disable-hugepages']);

export const VARIANTS: readonly Variant[] = [
  {
    name: 'test-driver',
    kind: 'virt-smmuv3',
    real: false,
    container: 'type1',
    skips: new Set(),
    msiWindow: SMMU_MSI,
    apertureEnd: 2 ** 48 - 1,
    pgsizes: PGSIZES,
    unmappedFault: 'F_TRANSLATION',
    heavy: false,
    setup: (o) => setup(o),
  },
  {
    name: 'virt-smmuv3',
    kind: 'virt-smmuv3',
    real: true,
    container: 'type1',
    skips: new Set(),
    msiWindow: SMMU_MSI,
    apertureEnd: 2 ** 48 - 1,
    pgsizes: PGSIZES,
    unmappedFault: 'F_TRANSLATION', // SMMUv3 event 0x10
    heavy: false,
    // VFIO_IOMMU_BIND (type1 SVA) is itself from a series that never merged, and its tests fault pages in through
    // PRI, which mainline arm-smmu-v3 denies: this variant runs the posted SMMUv3 PRI series.
    setup: (o) => setupMachine('virt-smmuv3', o, { smmuPri: 'posted-series' }),
  },
  {
    name: 'q35-vtd',
    kind: 'q35-vtd',
    real: true,
    container: 'type1',
    skips: new Set(),
    msiWindow: VTD_MSI,
    apertureEnd: 2 ** 47 - 1, // a first-stage domain keeps to the canonical lower half (intel-iommu gaw - 1)
    pgsizes: PGSIZES,
    unmappedFault: 'DMAR_SM_FS_PTE_NOT_PRESENT', // paging domains use the first stage in scalable mode
    heavy: true,
    setup: (o) => setupMachine('q35-vtd', o),
  },
  {
    // The same machines with /dev/vfio/vfio served by iommufd (CONFIG_IOMMUFD_VFIO_CONTAINER).
    name: 'q35-vtd/iommufd',
    kind: 'q35-vtd',
    real: true,
    container: 'iommufd',
    skips: COMPAT_SKIPS,
    msiWindow: VTD_MSI,
    apertureEnd: 2 ** 47 - 1,
    pgsizes: PGSIZES,
    unmappedFault: 'DMAR_SM_FS_PTE_NOT_PRESENT',
    heavy: false,
    setup: (o) => setupMachine('q35-vtd', o, { vfioContainer: 'iommufd' }),
  },
  {
    name: 'virt-smmuv3/iommufd',
    kind: 'virt-smmuv3',
    real: true,
    container: 'iommufd',
    skips: COMPAT_SKIPS,
    msiWindow: SMMU_MSI,
    apertureEnd: 2 ** 48 - 1,
    pgsizes: PGSIZES,
    unmappedFault: 'F_TRANSLATION',
    heavy: false,
    setup: (o) => setupMachine('virt-smmuv3', o, { vfioContainer: 'iommufd' }),
  },
];

/** The variants that offer a rule. */
export function variantsWith(rule?: Rule): Variant[] {
  return VARIANTS.filter((v) => rule === undefined || !v.skips.has(rule));
}

export function s32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

export function cstr(s: string): Uint8Array {
  return new Uint8Array([...s].map((c) => c.charCodeAt(0)).concat(0));
}

/** /dev/vfio/vfio + /dev/vfio/<group> joined, type1v2 set: [container fd, group fd]. */
export function openTyped(p: Process, group: number, type = VFIO_TYPE1v2_IOMMU): [number, number] {
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${group}`);
  if (c < 0 || g < 0) throw new Error(`open failed ${c} ${g}`);
  const r = p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c));
  if (r < 0) throw new Error(`SET_CONTAINER ${r}`);
  const s = p.ioctl(c, VFIO_SET_IOMMU, type);
  if (s < 0) throw new Error(`SET_IOMMU ${s}`);
  return [c, g];
}

export function deviceFd(p: Process, g: number, bdf: string): number {
  return p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(bdf));
}

/**
 * openTyped, then the device's fd, as QEMU does before any mapping:
 * [container fd, group fd, device fd]. On type1 the group is attached to the
 * container's IOMMU at SET_IOMMU already; iommufd's compat layer binds and
 * attaches a device only when it is opened (vfio_df_group_open ->
 * iommufd_device_bind + attach to the compat IOAS), and only then does the
 * IOAS get a domain: pins, page sizes and the reserved MSI window appear then.
 */
export function openAttached(p: Process, f: Pick<Fixture, 'groupOf' | 'dma'>, fn: PciFunction = f.dma): [number, number, number] {
  const [c, g] = openTyped(p, f.groupOf(fn));
  const d = deviceFd(p, g, fn.bdf);
  if (d < 0) throw new Error(`GET_DEVICE_FD ${d}`);
  return [c, g, d];
}

export function mapBytes(m: { vaddr: bigint | number; iova: bigint | number; size: bigint | number; flags?: number; argsz?: number }): Uint8Array {
  return encodeStruct(vfio_iommu_type1_dma_map, {
    argsz: m.argsz ?? vfio_iommu_type1_dma_map.size,
    flags: m.flags ?? RW,
    vaddr: BigInt(m.vaddr),
    iova: BigInt(m.iova),
    size: BigInt(m.size),
  });
}

export function map(p: Process, c: number, m: { vaddr: bigint | number; iova: bigint | number; size: bigint | number; flags?: number; argsz?: number }): number {
  return p.ioctl(c, VFIO_IOMMU_MAP_DMA, mapBytes(m));
}

/** UNMAP_DMA: [result, size field after the call]. */
export function unmap(
  p: Process,
  c: number,
  u: { iova: bigint | number; size: bigint | number; flags?: number; argsz?: number; bitmap?: { pgsize: bigint; size: bigint; data: bigint } },
): [number, bigint] {
  const extra = u.bitmap !== undefined ? vfio_bitmap.size : 0;
  const bytes = new Uint8Array(vfio_iommu_type1_dma_unmap.size + extra);
  bytes.set(encodeStruct(vfio_iommu_type1_dma_unmap, { argsz: u.argsz ?? bytes.length, flags: u.flags ?? 0, iova: BigInt(u.iova), size: BigInt(u.size) }));
  if (u.bitmap !== undefined) bytes.set(encodeStruct(vfio_bitmap, u.bitmap), vfio_iommu_type1_dma_unmap.size);
  const r = p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, bytes);
  return [r, new StructView(vfio_iommu_type1_dma_unmap, bytes).big('size')];
}

/** The domain a device translates through now. */
export function domainOf(f: Pick<Fixture, 'host'>, fn: PciFunction): IommuDomain {
  return f.host.iommu.domainForPasid(fn, -1)!;
}

/** Leaf entries written into a domain's page table so far (io-pgtable stats). */
export function leafWrites(d: IommuDomain): number {
  return d.driver.stats?.leafWrites ?? 0;
}

/** What must be true after a failed map: nothing pinned, nothing charged, nothing in the IOMMU. */
export function assertNothingLeft(t: Pick<Test, 'equal'>, f: Pick<Fixture, 'host' | 'dma' | 'p' | 'board'>, iova: number, size: number, v?: Pick<Variant, 'container'>): void {
  const d = domainOf(f, f.dma);
  let mapped = 0;
  for (let a = iova; a < iova + size; a += PAGE) if (d.iovaToPhys(a) >= 0) mapped++;
  t.equal(mapped, 0, 'no IOMMU entries');
  t.equal(f.p.mm.pinnedVm, 0, 'no pins');
  t.equal(f.p.mm.lockedVm, 0, 'no locked memory charged');
  // type1's own pinned-page counter; iommufd pins through its iopt_pages, seen in the mm's counters above.
  if (v?.container !== 'iommufd') t.equal(f.board.counters.get('vfio.pinned_pages'), 0, 'the pinned-page counter is back to 0');
}
