import { DmaEngine, type DmaEngineOptions } from '../devices/dma-engine/index.ts';
import { TestDmaDevice } from '../devices/test-dma-device.ts';
import { formatBdf, parseBdf, type Bdf } from '../src/pci/bdf.ts';
import type { PciBridge } from '../src/pci/bridge.ts';
import type { PciBus } from '../src/pci/bus.ts';
import { CFG, HEADER_TYPE_MULTIFUNCTION } from '../src/pci/header.ts';
import { ConventionalPciBridge, PcieToPciBridge } from '../src/pci/pci-bridges.ts';
import type { PciFunction } from '../src/pci/pci-function.ts';
import { PcieRootPort } from '../src/pci/root-port.ts';
import type { SimContext } from '../src/sim/context.ts';
import type { Board } from './board.ts';

/**
 * A machine's PCI topology as data: endpoints, and bridges with the
 * functions below them. Addresses are full BDFs; the bus of a bridge's
 * children is the one firmware gives its secondary bus: buses are numbered
 * depth first in slot order, so the first bridge found gets bus 1, the
 * bridges below it 2, 3, ..., then the next bridge on the root bus the
 * number after those. Several functions in one slot make a multi-function
 * device (function 0 must be among them).
 */
export type TopologySpec = DeviceSpec | BridgeSpec;

/** One endpoint: where it sits and how to build it. */
export interface DeviceSpec {
  /** 'DDDD:BB:DD.F' (or 'BB:DD.F'). */
  bdf: string;
  /** A reference device, or a factory for your own. */
  kind: 'dma-engine' | 'test-device' | ((ctx: SimContext, name: string) => PciFunction);
  name?: string;
  /** Options of the DMA engine. */
  engine?: DmaEngineOptions;
}

/**
 * A bridge and what sits below it:
 * - 'root-port': a PCIe root port (root bus only); with `acs` it implements
 *   ACS, which Linux enables, so each device below gets its own IOMMU group;
 *   without, the devices below share the port's group.
 * - 'pcie-pci-bridge': a PCIe-to-PCI bridge; the devices below reach the
 *   IOMMU under its alias requester ID (secondary bus, 00.0) and share its group.
 * - 'pci-bridge': a conventional PCI-to-PCI bridge; the devices below reach
 *   the IOMMU under the bridge's own requester ID and share its group.
 */
export interface BridgeSpec {
  bdf: string;
  kind: 'root-port' | 'pcie-pci-bridge' | 'pci-bridge';
  name?: string;
  acs?: boolean;
  children?: TopologySpec[];
}

export function isBridgeSpec(s: TopologySpec): s is BridgeSpec {
  return s.kind === 'root-port' || s.kind === 'pcie-pci-bridge' || s.kind === 'pci-bridge';
}

/** A function the topology placed, with the BDF it must have once firmware numbered the buses. */
export interface PlacedFunction {
  bdf: string;
  fn: PciFunction;
  endpoint: boolean;
}

/**
 * Build and plug every function of `specs` below the board's root complex.
 * Throws on a topology error (bad address, slot taken, a child on the wrong
 * bus, a function without function 0 in its slot).
 */
export function plugTopology(board: Board, specs: readonly TopologySpec[]): PlacedFunction[] {
  const placed: PlacedFunction[] = [];
  const names = { endpoint: 0, bridge: 0 };
  let lastBus = 0;

  const plugBus = (bus: PciBus, busNumber: number, list: readonly TopologySpec[], where: string): void => {
    const entries = list.map((spec) => ({ spec, b: parseAddress(spec.bdf) }));
    const perSlot = new Map<number, number[]>();
    for (const { spec, b } of entries) {
      if (b.bus !== busNumber) {
        throw new Error(`${spec.bdf}: ${where} is bus ${hex2(busNumber)} (firmware numbers buses depth first), not ${hex2(b.bus)}`);
      }
      const fns = perSlot.get(b.device) ?? [];
      if (fns.includes(b.fn)) throw new Error(`two functions at ${formatBdf(b)}`);
      fns.push(b.fn);
      perSlot.set(b.device, fns);
    }
    for (const [device, fns] of perSlot) {
      if (!fns.includes(0)) throw new Error(`${hex2(busNumber)}:${hex2(device)}: functions ${fns.join(',')} without function 0 are invisible`);
    }
    // Firmware scans in slot order; bus numbers follow that order, not the order of the list.
    entries.sort((x, y) => x.b.device * 8 + x.b.fn - (y.b.device * 8 + y.b.fn));
    for (const { spec, b } of entries) {
      const fn = build(board, spec, busNumber, names);
      if (perSlot.get(b.device)!.length > 1) {
        fn.config.set8(CFG.HEADER_TYPE, fn.config.get8(CFG.HEADER_TYPE) | HEADER_TYPE_MULTIFUNCTION);
      }
      bus.plug(fn, b.device, b.fn);
      placed.push({ bdf: formatBdf(b), fn, endpoint: !isBridgeSpec(spec) });
      if (isBridgeSpec(spec)) {
        const secondary = ++lastBus;
        plugBus((fn as PciBridge).secondary, secondary, spec.children ?? [], `below ${formatBdf(b)} the secondary bus`);
      } else if ('children' in spec) {
        throw new Error(`${spec.bdf}: an endpoint has no children`);
      }
    }
  };
  plugBus(board.rc.rootBus, 0, specs, 'the root bus');
  return placed;
}

/** After enumeration: every function sits where its spec said (a safety net for the numbering rule above). */
export function checkPlacement(placed: readonly PlacedFunction[]): void {
  for (const p of placed) {
    if (p.fn.bdf !== p.bdf) throw new Error(`${p.bdf}: firmware placed it at ${p.fn.bdf}`);
  }
}

function build(board: Board, spec: TopologySpec, busNumber: number, names: { endpoint: number; bridge: number }): PciFunction {
  if (isBridgeSpec(spec)) {
    const name = spec.name ?? `${spec.kind}${names.bridge++}`;
    if (spec.kind === 'root-port') {
      if (busNumber !== 0) throw new Error(`${spec.bdf}: a root port sits on the root bus`);
      return new PcieRootPort(board.rc, name, { acs: spec.acs ?? false });
    }
    if (spec.acs) throw new Error(`${spec.bdf}: only root ports take 'acs' (PCI bridges cannot isolate)`);
    return spec.kind === 'pcie-pci-bridge' ? new PcieToPciBridge(board.rc, name) : new ConventionalPciBridge(board.rc, name);
  }
  const index = names.endpoint++;
  const name = spec.name ?? `dev${index}`;
  if (spec.kind === 'dma-engine') return new DmaEngine(board, { name, ...spec.engine });
  if (spec.kind === 'test-device') return new TestDmaDevice(board, name);
  return spec.kind(board, name);
}

function parseAddress(s: string): Bdf {
  const b = parseBdf(s);
  if (b === undefined || b.segment !== 0) throw new Error(`bad device address ${s}`);
  return b;
}

const hex2 = (v: number) => v.toString(16).padStart(2, '0');
