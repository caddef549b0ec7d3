import type { DmaEngineOptions } from '../devices/dma-engine/index.ts';
import type { PciFunction } from '../src/pci/pci-function.ts';
import type { SimContext } from '../src/sim/context.ts';
import type { MachineKind } from './layout.ts';
import { createMachine, type Machine, type MachineOptions } from './machine.ts';
import type { BridgeSpec, TopologySpec } from './topology.ts';

type Below = (bus: BusBuilder) => unknown;

/**
 * The functions on one bus, described in a few chained calls; bridges take
 * a callback that describes their secondary bus. Produces the
 * `TopologySpec[]` that `createMachine(kind, { devices })` takes.
 */
export class BusBuilder {
  readonly specs: TopologySpec[] = [];

  /** An ATS/PRI/PASID-capable reference DMA engine. */
  dmaEngine(bdf: string, opts: { name?: string; engine?: DmaEngineOptions } = {}): this {
    this.specs.push({ bdf, kind: 'dma-engine', ...opts });
    return this;
  }

  /** The plain test device (no ATS/PRI/PASID). */
  testDevice(bdf: string, name?: string): this {
    this.specs.push({ bdf, kind: 'test-device', ...(name === undefined ? {} : { name }) });
    return this;
  }

  /** Your own device model. */
  device(bdf: string, factory: (ctx: SimContext, name: string) => PciFunction, name?: string): this {
    this.specs.push({ bdf, kind: factory, ...(name === undefined ? {} : { name }) });
    return this;
  }

  /** A PCIe root port; `acs: true` isolates the devices below it into their own groups. */
  rootPort(bdf: string, opts: { acs?: boolean; name?: string }, below?: Below): this;
  rootPort(bdf: string, below?: Below): this;
  rootPort(bdf: string, a?: { acs?: boolean; name?: string } | Below, b?: Below): this {
    const opts = typeof a === 'function' ? {} : (a ?? {});
    return this.bridge({ bdf, kind: 'root-port', ...opts }, typeof a === 'function' ? a : b);
  }

  /** A PCIe-to-PCI bridge: the devices below reach the IOMMU as (secondary bus, 00.0). */
  pcieToPciBridge(bdf: string, below?: Below, name?: string): this {
    return this.bridge({ bdf, kind: 'pcie-pci-bridge', ...(name === undefined ? {} : { name }) }, below);
  }

  /** A conventional PCI-to-PCI bridge: the devices below reach the IOMMU under the bridge's own ID. */
  pciBridge(bdf: string, below?: Below, name?: string): this {
    return this.bridge({ bdf, kind: 'pci-bridge', ...(name === undefined ? {} : { name }) }, below);
  }

  private bridge(spec: BridgeSpec, below: Below | undefined): this {
    const sub = new BusBuilder();
    below?.(sub);
    this.specs.push({ ...spec, children: sub.specs });
    return this;
  }
}

/** A machine of one kind with the topology described on its root bus. */
export class MachineBuilder extends BusBuilder {
  constructor(readonly kind: MachineKind) {
    super();
  }

  /** createMachine(kind, { ...options, devices: the topology }). */
  build(options: Omit<MachineOptions, 'devices'> = {}): Machine {
    return createMachine(this.kind, { ...options, devices: this.specs });
  }
}

/**
 * Describe a machine's topology in a few lines:
 * ```ts
 * const m = machineBuilder('q35-vtd')
 *   .rootPort('00:04.0', { acs: true }, (rp) => rp.dmaEngine('01:00.0'))
 *   .pcieToPciBridge('00:05.0', (br) => br.testDevice('02:01.0').testDevice('02:02.0'))
 *   .build({ seed: 7 });
 * ```
 */
export function machineBuilder(kind: MachineKind): MachineBuilder {
  return new MachineBuilder(kind);
}
