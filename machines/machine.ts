import { CallerError } from '../src/errors.ts';
import { Smmuv3Driver, type SmmuPriMode } from '../iommu/smmuv3/driver/driver.ts';
import { Smmuv3, type Smmuv3Options } from '../iommu/smmuv3/smmuv3.ts';
import { VtdIommu, type VtdOptions } from '../iommu/vtd/vtd.ts';
import { VtdDriver } from '../iommu/vtd/driver/driver.ts';
import { Host } from '../src/host/host.ts';
import type { IommuDriver } from '../src/iommu-core/types.ts';
import type { MemoryRegion } from '../src/memory/memory-region.ts';
import { parseBdf, formatBdf } from '../src/pci/bdf.ts';
import { ecamAccessor } from '../src/pci/enumerate.ts';
import { enableAcs } from '../src/host/pci-acs.ts';
import { EINVAL, ENODEV } from '../src/uapi/errno.ts';
import type { PciFunction } from '../src/pci/pci-function.ts';
import type { DmaRemapper } from '../src/pci/remapper.ts';
import { ChromeTraceSink } from '../src/trace/chrome-trace.ts';
import { Board } from './board.ts';
import { bindVfioPci } from '../src/vfio/bind.ts';
import { registerIommufd } from '../src/iommufd/main.ts';
import { vfioModule } from '../src/vfio/module.ts';
import type { MachineKind } from './layout.ts';
import { checkPlacement, plugTopology, type DeviceSpec, type TopologySpec } from './topology.ts';

export type { BridgeSpec, DeviceSpec, TopologySpec } from './topology.ts';

export interface MachineOptions {
  seed?: number;
  ramBytes?: number;
  /** Endpoints, and bridges with the functions below them (machines/topology.ts). */
  devices?: TopologySpec[];
  /** Collect every trace event in `machine.trace` (a Chrome trace sink). */
  trace?: boolean;
  /** Options for the SMMUv3 model (virt-smmuv3). */
  smmu?: Smmuv3Options;
  /**
   * How the emulated arm-smmu-v3 driver treats PCIe PRI (virt-smmuv3; README.md
   * "PRI on virt-smmuv3"): 'mainline' (default) is Linux 7.3, which services no
   * page request (logs "unexpected PRI request received" and denies it; SVA
   * relies on stalls); 'posted-series' services PRI as the SMMUv3 PRI series
   * posted to the list (not merged) does.
   */
  smmuPri?: SmmuPriMode;
  /** Options for the VT-d model (q35-vtd). */
  vtd?: VtdOptions;
  /**
   * Who provides /dev/vfio/vfio (default 'type1'): VFIO's type1 container, or 'iommufd'
   * (CONFIG_IOMMUFD_VFIO_CONTAINER), an iommufd serving the container ioctls from its
   * compat IOAS, so legacy container code (QEMU's) runs unchanged on iommufd.
   */
  vfioContainer?: 'type1' | 'iommufd';
}

/** The default endpoints (CONTRACT.md): two SVA-capable DMA engines and the plain test device. */
export const DEFAULT_DEVICES: readonly DeviceSpec[] = Object.freeze([
  { bdf: '0000:00:01.0', kind: 'dma-engine', name: 'dma0' },
  { bdf: '0000:00:02.0', kind: 'dma-engine', name: 'dma1' },
  { bdf: '0000:00:03.0', kind: 'test-device', name: 'testdev' },
]);

/** The IOMMU of a machine kind: its model (behind the root complex) and the driver that programs it. */
interface IommuPair {
  model: DmaRemapper & { region: MemoryRegion };
  driver: IommuDriver;
}

type IommuFactory = (board: Board, host: Host, opts: MachineOptions) => IommuPair;

const IOMMUS: Partial<Record<MachineKind, IommuFactory>> = {
  'virt-smmuv3': (board, host, opts) => {
    const model = new Smmuv3(board, board.sysmem, opts.smmu);
    board.sysmemRoot.addSubregion(board.layout.iommuBase, model.region, 1);
    board.rc.remapper = model;
    return { model, driver: new Smmuv3Driver(host, board.layout.iommuBase, { pri: opts.smmuPri ?? 'mainline' }) };
  },
  'q35-vtd': (board, host, opts) => {
    const model = new VtdIommu(board, board.sysmem, opts.vtd);
    board.sysmemRoot.addSubregion(board.layout.iommuBase, model.region, 1);
    board.rc.remapper = model;
    return { model, driver: new VtdDriver(host, board.layout.iommuBase) };
  },
};

/** Let another module provide a machine kind's IOMMU (the VT-d model registers itself this way). */
export function registerIommu(kind: MachineKind, factory: IommuFactory): void {
  IOMMUS[kind] = factory;
}

/** Called for every endpoint after the kernel probed it (VFIO binds vfio-pci here). */
type EndpointHook = (machine: Machine, fn: PciFunction) => void;
const endpointHooks: EndpointHook[] = [];
export function onEndpointProbed(hook: EndpointHook): void {
  endpointHooks.push(hook);
}

// Every endpoint is bound to vfio-pci (CONTRACT.md): /dev/vfio/<group> and /dev/vfio/devices/vfio<N>.
// One without an IOMMU group (its IOMMU refused it) cannot be: vfio_group_find_or_alloc() fails with
// -EINVAL, so vfio-pci's probe fails and the function is left without a driver.
onEndpointProbed((m, fn) => {
  if (m.host.iommu.groupOf(fn) === undefined) {
    m.recordProbeFailure(fn, 'vfio-pci', -EINVAL, 'no IOMMU group');
    return;
  }
  const r = bindVfioPci(m.host, fn);
  if (typeof r === 'number' && r < 0) throw new Error(`${fn.bdf}: vfio-pci bind failed (${r})`);
});

/** A driver's refusal of a function at boot, as the kernel log would show it. */
export interface ProbeFailure {
  bdf: string;
  /** 'iommu' (the IOMMU driver's probe_device) or 'vfio-pci'. */
  driver: string;
  errno: number;
  reason: string;
}

/** IOMMU drivers that can say why they refused a device (the SMMUv3 driver's aliasing StreamID). */
interface ExplainsProbeFailure {
  probeFailure(dev: PciFunction): string | undefined;
}

/**
 * A whole machine (CONTRACT.md createMachine): the board, its IOMMU model and
 * driver, the host kernel, and the endpoints enumerated, probed and handed
 * to their drivers.
 */
export class Machine {
  readonly kind: MachineKind;
  readonly board: Board;
  readonly host: Host;
  readonly iommu: IommuPair['model'];
  readonly iommuDriver: IommuDriver;
  readonly trace: ChromeTraceSink | undefined;
  /** Endpoints by BDF, in slot order. */
  private readonly byBdf = new Map<string, PciFunction>();
  /** Every function, bridges included, by BDF. */
  private readonly functionsByBdf = new Map<string, PciFunction>();
  /**
   * Functions a driver refused at boot (machines/README.md): on virt-smmuv3 every device but
   * the first that reaches the SMMU under one StreamID (behind a PCIe-to-PCI or conventional
   * PCI bridge) has no IOMMU group, hence no VFIO nodes. The machine still builds.
   */
  readonly probeFailures: ProbeFailure[] = [];

  constructor(kind: MachineKind, opts: MachineOptions = {}) {
    this.kind = kind;
    const board = new Board(kind, { seed: opts.seed ?? 1, ...(opts.ramBytes !== undefined ? { ramBytes: opts.ramBytes } : {}) });
    this.board = board;
    if (opts.trace) this.trace = new ChromeTraceSink(board.tracer, { machine: kind, seed: String(opts.seed ?? 1) });
    const host = new Host(board);
    this.host = host;
    const factory = IOMMUS[kind];
    if (factory === undefined) throw new Error(`no IOMMU is available for ${kind}`);
    const pair = factory(board, host, opts);
    this.iommu = pair.model;
    this.iommuDriver = pair.driver;
    host.iommu.registerDriver(pair.driver);
    const placed = plugTopology(board, opts.devices ?? DEFAULT_DEVICES);
    board.enumeratePci();
    checkPlacement(placed);
    vfioModule(host, { container: opts.vfioContainer ?? 'type1' });
    registerIommufd(host);
    // The kernel scans every function, enabling ACS where implemented (an IOMMU asked for it), then
    // probes each into its IOMMU group in scan order: bridges too, as Linux groups them with their devices.
    const cfg = ecamAccessor(board.sysmem, board.layout.ecamBase);
    for (const p of placed) enableAcs(cfg, p.fn.busNumber, p.fn.devfn);
    for (const p of placed) {
      this.functionsByBdf.set(p.bdf, p.fn);
      const r = host.addPciDevice(p.fn);
      // -ENODEV from probe_device: the device is left without an IOMMU, as Linux leaves it
      // (probe_iommu_group); anything else is a broken model or machine.
      if (r === -ENODEV) {
        const why = (pair.driver as Partial<ExplainsProbeFailure>).probeFailure?.(p.fn) ?? `${pair.driver.name}: probe_device failed`;
        this.recordProbeFailure(p.fn, 'iommu', r, why);
      } else if (r < 0) throw new Error(`${p.bdf}: IOMMU probe failed (${r})`);
      if (!p.endpoint) continue;
      this.byBdf.set(p.bdf, p.fn);
      for (const hook of endpointHooks) hook(this, p.fn);
    }
  }

  /** Log a driver's refusal of a function (trace 'host.probe-failed'). */
  recordProbeFailure(fn: PciFunction, driver: string, errno: number, reason: string): void {
    this.probeFailures.push({ bdf: fn.bdf, driver, errno, reason });
    this.board.tracer.trace('host.probe-failed', fn.bdf, { dev: fn.bdf, driver, errno, reason });
  }

  /** The function (endpoint or bridge) at a BDF; throws for an unknown one. */
  device(bdf: string): PciFunction {
    const b = parseBdf(bdf);
    const fn = b === undefined ? undefined : this.functionsByBdf.get(formatBdf(b));
    if (fn === undefined) throw new CallerError(`no device at ${bdf}`);
    return fn;
  }

  /** The endpoints, in slot order (bridges are reached through device(bdf)). */
  devices(): PciFunction[] {
    return [...this.byBdf.values()];
  }

  /** Run the simulation until no event is pending. */
  run(): void {
    this.board.scheduler.run();
  }

  /** Virtual time in ns. */
  now(): number {
    return this.board.scheduler.now;
  }
}

export function createMachine(kind: MachineKind, options: MachineOptions = {}): Machine {
  return new Machine(kind, options);
}
