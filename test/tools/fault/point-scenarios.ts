/**
 * One scenario per injection point (issue 9: "each point actually fires in
 * some scenario"): what to run on which machine so that the point is hit, and
 * when to arm it. A scenario calls `arm()` just before the step of interest,
 * so set-up steps that hit the same point (page allocations, say) are not
 * what gets injected.
 */
import { createMachine, type Machine } from '../../../machines/machine.ts';
import type { MachineKind } from '../../../machines/layout.ts';
import type { InjectionAction } from '../../../src/fault/injector.ts';
import { REFERENCE, SequenceExecutor } from '../../../tools/fault/model-based.ts';
import type { SvaHandle } from '../../../src/iommu-core/sva.ts';
import { EngineUser } from '../../../tools/scenario/engine-user.ts';
import { PasidCapability } from '../../../src/pci/caps/pasid.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import type { Process } from '../../../src/host/process.ts';
import {
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_IOAS_ALLOC,
  iommu_fault_alloc,
  iommu_hwpt_alloc,
  iommu_ioas_alloc,
  vfio_device_bind_iommufd,
} from '../../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../../src/uapi/struct.ts';
import {
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_MSIX_IRQ_INDEX,
  vfio_irq_set,
} from '../../../src/uapi/vfio.ts';
import type { Smmuv3Driver } from '../../../iommu/smmuv3/driver/driver.ts';
import { TestDriver } from '../../iommu-core/test-driver.ts';
import { BarePcieFunction } from '../../pci/helpers.ts';
import { PAGE, vfioContainer } from './ops.ts';
import { GVA as SMMU_GVA, veventqAlloc, vm as smmuVm } from '../../iommufd/smmu-vm.ts';

export interface PointScenario {
  /** What the scenario does, for the test's message. */
  what: string;
  machine: MachineKind;
  /** The action armed (default fail). */
  action?: InjectionAction;
  /**
   * Runs on `m`; calls arm() before the step of interest (arm(other) when it
   * builds a machine of its own). May return what its calls returned, where
   * that is all an injection changes (an ioctl's -errno).
   */
  run(m: Machine, arm: Arm): unknown;
}

export type Arm = (target?: Machine) => void;

const DEV0 = '0000:00:01.0';

/** The campaign's fixed operation (VFIO map, SVA bind + DMA + PRI fault, iommufd map/attach/DMA, replace, unbind), then every process exits. */
function reference(armBeforeSetup = false) {
  return (m: Machine, arm: Arm) => {
    const e = new SequenceExecutor(() => m);
    if (armBeforeSetup) {
      arm();
      try {
        e.setup();
      } catch (err) {
        // The injected failure made a set-up call return -errno (the executor's must() says so): that is the point.
        if (err instanceof Error && err.message.startsWith('setup: ')) return;
        throw err;
      }
    } else {
      e.setup();
      arm();
    }
    for (const c of REFERENCE) e.step(c);
    for (const p of [...m.host.processes.values()]) p.exit();
    m.run();
  };
}

/** A device DMA to an IOVA nothing maps: the IOMMU records a translation fault (event queue / fault recording register). */
function unmappedDma(m: Machine, arm: Arm): void {
  // The plain test device: no ATS, so the IOMMU itself translates (and records) the fault.
  vfioContainer(m, '0000:00:03.0');
  const dev = m.device('0000:00:03.0');
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  arm();
  dev.dmaRead(0x7700_0000n, 8);
  m.run();
}

/** A stall-capable PASID master (no PRI) on virt-smmuv3: a fault stalls, is served by host.iopf and resumed with CMD_RESUME. */
function stallingDevice(_m: Machine, arm: Arm): void {
  class StallDev extends BarePcieFunction {
    constructor() {
      super('staller');
      new PasidCapability(this.config, this.caps, { maxPasidWidth: 8 });
    }
  }
  const m = createMachine('virt-smmuv3', { ramBytes: 128 * 2 ** 20, devices: [{ bdf: '0000:00:04.0', kind: () => new StallDev() }] });
  const dev = m.device('0000:00:04.0');
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  (m.iommuDriver as Smmuv3Driver).setStallCapable(dev);
  const p = m.host.spawn();
  const va = p.mmap(2 * PAGE);
  const h = m.host.sva.bind(dev, p.mm, p.pid) as SvaHandle;
  arm(m);
  dev.dmaWrite(va + 8n, new Uint8Array([1, 2, 3]), { pasid: h.pasid });
  m.run();
}

/** The DMA engine behind VFIO copies a page through its portal with a completion record. */
function engineMemmove(m: Machine, arm: Arm): void {
  const c = vfioContainer(m);
  const device = c.v.deviceFd(c.group, DEV0);
  const buf = c.p.mmap(4 * PAGE);
  c.p.memWrite(buf, new Uint8Array(4 * PAGE).fill(0x5a));
  if (c.v.mapDma(c.container, { vaddr: buf, iova: 0x10_0000n, size: 4 * PAGE }) < 0) throw new Error('MAP_DMA failed');
  const e = new EngineUser(c.p, c.v, device);
  e.enable();
  e.configWq(0);
  arm();
  e.memmove(0, { src: 0x10_0000n, dst: 0x10_1000n, length: 256, record: 0x10_3000n });
  m.run();
}

/** VFIO_IOMMU_DIRTY_PAGES START allocates a bitmap per DMA range. */
function dirtyStart(m: Machine, arm: Arm): number {
  const c = vfioContainer(m);
  const buf = c.p.mmap(4 * PAGE);
  c.v.mapDma(c.container, { vaddr: buf, iova: 0x10_0000n, size: 4 * PAGE });
  arm();
  return c.v.dirtyStart(c.container);
}

/** A second group whose devices sit behind another IOMMU instance needs a domain of its own, replayed from the container's mappings. */
function replay(m: Machine, arm: Arm): void {
  const c = vfioContainer(m);
  const buf = c.p.mmap(PAGE);
  c.v.mapDma(c.container, { vaddr: buf, iova: 0x10_0000n, size: PAGE });
  const other = m.host.iommu.groupOf(m.device('0000:00:03.0'))!;
  Object.defineProperty(other, 'driver', { value: new TestDriver(m.host) });
  const g2 = c.p.open(`/dev/vfio/${other.id}`);
  arm();
  c.v.setContainer(g2, c.container);
}

/** VFIO_DEVICE_SET_IRQS: MSI-X vector 0 triggers an eventfd. */
function msix(m: Machine, arm: Arm): void {
  const c = vfioContainer(m);
  const device = c.v.deviceFd(c.group, DEV0);
  const efd = c.p.eventfd();
  const b = encodeStruct(vfio_irq_set, { argsz: vfio_irq_set.size + 4, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index: VFIO_PCI_MSIX_IRQ_INDEX, start: 0, count: 1 }, vfio_irq_set.size + 4);
  new DataView(b.buffer).setInt32(vfio_irq_set.size, efd, true);
  arm();
  c.p.ioctl(device, VFIO_DEVICE_SET_IRQS, b);
}

/** iommufd: an IOAS, then a fault queue and a fault-capable HWPT on the bound cdev. */
function iommufdFaultQueue(m: Machine, arm: Arm): number {
  const p = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
  const fd = p.open('/dev/iommu');
  const a = encodeStruct(iommu_ioas_alloc, { size: iommu_ioas_alloc.size });
  p.ioctl(fd, IOMMU_IOAS_ALLOC, a);
  const ioas = new StructView(iommu_ioas_alloc, a).num('out_ioas_id');
  const names = p.readdir(`/sys/bus/pci/devices/${DEV0}/vfio-dev`) as string[];
  const cdev = p.open(`/dev/vfio/devices/${names[0]}`);
  const devId = bindIommufd(p, cdev, fd);
  arm();
  const f = encodeStruct(iommu_fault_alloc, { size: iommu_fault_alloc.size });
  const r = p.ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, f);
  if (r < 0) return r;
  const faultId = new StructView(iommu_fault_alloc, f).num('out_fault_id');
  const h = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags: IOMMU_HWPT_FAULT_ID_VALID, dev_id: devId, pt_id: ioas, fault_id: faultId });
  return p.ioctl(fd, IOMMU_HWPT_ALLOC, h);
}

/** iommufd on virt-smmuv3: a nested device with a vEVENTQ faults in its guest's stage 1 (the driver reports the event). */
function iommufdVevent(_m: Machine, arm: Arm): void {
  const v = smmuVm();
  veventqAlloc(v.p, v.fd, v.viommu);
  arm(v.m);
  v.fault(SMMU_GVA);
}

function bindIommufd(p: Process, cdev: number, iommufd: number): number {
  const b = encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd });
  if (p.ioctl(cdev, VFIO_DEVICE_BIND_IOMMUFD, b) < 0) throw new Error('BIND_IOMMUFD failed');
  return new StructView(vfio_device_bind_iommufd, b).num('out_devid');
}

const both = (what: string, run: PointScenario['run'], action?: InjectionAction): PointScenario[] => [
  { what, machine: 'virt-smmuv3', run, ...(action ? { action } : {}) },
  { what, machine: 'q35-vtd', run, ...(action ? { action } : {}) },
];
const on = (machine: MachineKind, what: string, run: PointScenario['run'], action?: InjectionAction): PointScenario[] => [{ what, machine, run, ...(action ? { action } : {}) }];

const REF = 'the fixed operation (VFIO map, SVA bind + PRI, iommufd map/attach/DMA)';
const REF_SETUP = 'setting up the fixed operation (VFIO container and group, iommufd bind)';

/** Point name -> the scenarios that must fire it (keys not registered yet are ignored; a registered point with no entry fails the test). */
export const POINT_SCENARIOS: Record<string, PointScenario[]> = {
  'host.page_alloc': both(REF, reference()),
  'host.pin': both(REF, reference()),
  'smmuv3.walk_read': on('virt-smmuv3', REF, reference()),
  'smmuv3.ste_fetch': on('virt-smmuv3', REF, reference(), { kind: 'corrupt', xorLo: 1 << 4 }),
  'smmuv3.cd_fetch': on('virt-smmuv3', REF, reference()),
  'smmuv3.evtq_write': on('virt-smmuv3', 'a DMA to an unmapped IOVA', unmappedDma),
  'smmuv3.cmdq_process': on('virt-smmuv3', REF, reference()),
  'smmuv3.msi': on('virt-smmuv3', REF, reference(), { kind: 'drop' }),
  'smmuv3.priq_write': on('virt-smmuv3', REF, reference()),
  'smmuv3.atc_inv': on('virt-smmuv3', REF, reference()),
  'smmuv3.atc_inv_complete': on('virt-smmuv3', REF, reference(), { kind: 'delay', ns: 1000 }),
  'smmuv3.ats_treq': on('virt-smmuv3', REF, reference()),
  'smmuv3.pri_resp': on('virt-smmuv3', REF, reference(), { kind: 'delay', ns: 1000 }),
  'smmuv3.stall': on('virt-smmuv3', 'a stall-capable PASID master faulting on an untouched page', stallingDevice),
  'vtd.walk_read': on('q35-vtd', REF, reference()),
  'vtd.context_fetch': on('q35-vtd', REF, reference()),
  'vtd.pasid_fetch': on('q35-vtd', REF, reference(), { kind: 'corrupt', xorLo: 1 << 6 }),
  'vtd.fault_record': on('q35-vtd', 'a DMA to an unmapped IOVA', unmappedDma, { kind: 'drop' }),
  'vtd.inv_queue_process': on('q35-vtd', REF, reference()),
  'vtd.msi': on('q35-vtd', REF, reference(), { kind: 'delay', ns: 1000 }),
  'vtd.ats_inv_complete': on('q35-vtd', REF, reference()),
  'vtd.prq_write': on('q35-vtd', REF, reference()),
  'vtd.prg_response': on('q35-vtd', REF, reference(), { kind: 'delay', ns: 1000 }),
  'dma-engine.ats.completion': both(REF, reference(), { kind: 'corrupt', xorLo: 0x1000 }),
  'dma-engine.ats.inv-completion': both(REF, reference(), { kind: 'delay', ns: 1000 }),
  'dma-engine.pri.request': both(REF, reference(), { kind: 'drop' }),
  // Issue 9 names four PRI-response faults: drop, delay, a wrong PRG index (corrupt), Response Failure (fail).
  'dma-engine.pri.response': [
    ...both(`${REF}: the response dropped`, reference(), { kind: 'drop' }),
    ...both(`${REF}: the response delayed`, reference(), { kind: 'delay', ns: 50_000 }),
    ...both(`${REF}: a wrong PRG index`, reference(), { kind: 'corrupt', xorLo: 1 }),
    ...both(`${REF}: Response Failure`, reference(), { kind: 'fail' }),
  ],
  'dma-engine.completion-record': both('a MEMMOVE through the VFIO-owned DMA engine', engineMemmove),
  'vfio.dma_alloc': both(REF, reference()),
  'vfio.pin': both(REF, reference()),
  'vfio.iommu_map': both(REF, reference()),
  'vfio.bitmap_alloc': both('VFIO_IOMMU_DIRTY_PAGES start', dirtyStart),
  'vfio.domain_alloc': both(REF_SETUP, reference(true)),
  'vfio.replay': both('a second group behind another IOMMU joining a container with mappings', replay),
  'vfio.sva_bind': both(REF, reference()),
  'vfio.irq_alloc': both('VFIO_DEVICE_SET_IRQS enabling MSI-X', msix),
  'vfio.container_alloc': both(REF_SETUP, reference(true)),
  'vfio.iommu_alloc': both(REF_SETUP, reference(true)),
  'vfio.group_alloc': both(REF_SETUP, reference(true)),
  'vfio.device_file': both(REF_SETUP, reference(true)),
  'iommufd.object_alloc': both(REF_SETUP, reference(true)),
  'iommufd.area_alloc': both(REF, reference()),
  'iommufd.pin': both(REF, reference()),
  'iommufd.account': both(REF, reference()),
  'iommufd.domain_map': both(REF, reference()),
  'iommufd.domain_alloc': both(REF, reference()),
  'iommufd.fault_alloc': both('IOMMU_FAULT_QUEUE_ALLOC and a fault-capable HWPT', iommufdFaultQueue),
  'iommufd.vevent_alloc': on('virt-smmuv3', 'a guest stage-1 fault reported to the vIOMMU\'s vEVENTQ', iommufdVevent),
};

/**
 * Issue 9's list of where faults must be injectable, each item with the
 * points that serve it (every one must be registered).
 */
export const ISSUE_ITEMS: Record<string, readonly string[]> = {
  'guest-memory reads of the SMMUv3 page walks': ['smmuv3.walk_read'],
  'guest-memory reads of the VT-d page walks': ['vtd.walk_read'],
  'STE fetches': ['smmuv3.ste_fetch'],
  'CD fetches': ['smmuv3.cd_fetch'],
  'context-entry fetches': ['vtd.context_fetch'],
  'PASID-entry fetches': ['vtd.pasid_fetch'],
  'event queue writes': ['smmuv3.evtq_write', 'vtd.fault_record'],
  'PRI queue writes': ['smmuv3.priq_write'],
  'page request queue writes': ['vtd.prq_write'],
  'command queue processing': ['smmuv3.cmdq_process'],
  'invalidation queue processing': ['vtd.inv_queue_process'],
  'MSI delivery': ['smmuv3.msi', 'vtd.msi'],
  'ATS translation completions at the device': ['dma-engine.ats.completion'],
  'ATS invalidation completions at the device': ['dma-engine.ats.inv-completion'],
  'PRI responses (drop, delay, wrong PRG index, Response Failure)': ['dma-engine.pri.response'],
  'page pinning in the host': ['host.pin'],
  'physical page allocation in the host': ['host.page_alloc'],
  'every allocation point of the VFIO path': [
    'vfio.container_alloc', 'vfio.iommu_alloc', 'vfio.group_alloc', 'vfio.domain_alloc', 'vfio.replay', 'vfio.device_file',
    'vfio.dma_alloc', 'vfio.pin', 'vfio.iommu_map', 'vfio.bitmap_alloc', 'vfio.sva_bind', 'vfio.irq_alloc',
  ],
};
