/**
 * The public API of ioemu (shared/CONTRACT.md). Everything users, examples
 * and outside suites rely on is exported from here.
 */
export { GuestRam } from './memory/guest-ram.ts';
export { MemoryRegion, type MmioOps, type MmioAccessRules, type AccessSize } from './memory/memory-region.ts';
export { AddressSpace } from './memory/address-space.ts';
export { type FlatRange } from './memory/flat-view.ts';
export {
  type PhysMem,
  type MemTxResult,
  MEMTX_OK,
  MEMTX_DECODE_ERROR,
  MEMTX_DEVICE_ERROR,
  PAGE_SIZE,
  PAGE_SHIFT,
} from './memory/phys-mem.ts';

export { Scheduler, type ScheduledEvent } from './sim/scheduler.ts';
export { Prng } from './sim/prng.ts';
export { type SimContext } from './sim/context.ts';

export { Tracer, type TraceRecord, type TraceEventMap, type TraceName } from './trace/tracer.ts';
export { Counters, type Counter } from './trace/counters.ts';
export { ChromeTraceSink, type ChromeTrace, type ChromeTraceEvent } from './trace/chrome-trace.ts';

export { RegisterFile, FieldRef, field, type RegisterDef, type FieldDef, type FieldAccess } from './hw/register-file.ts';
export { RegisterTable, defineRegisters, type RegisterSpec, type RegMap, type RegMapOf, type TableRegMap } from './hw/registers.ts';
export {
  defineLayout, decodeLayout, encodeLayout, formatLayout, readField, writeField, reservedBitsSet, hasReservedBits,
  type BitField, type FieldSpec, type FieldTable, type Layout,
} from './hw/layout.ts';
export { MsiController, type MsiMessage } from './irq/msi-controller.ts';

export { ConfigSpace, PCI_CONFIG_SIZE, PCIE_CONFIG_SIZE } from './pci/config-space.ts';
export { CapabilityList } from './pci/capability-list.ts';
export { CFG, COMMAND, STATUS, BAR_BITS } from './pci/header.ts';
export { PciFunction, type PciIdentity } from './pci/pci-function.ts';
export { PciBridge } from './pci/bridge.ts';
export { PcieRootPort, type RootPortOptions } from './pci/root-port.ts';
export { PcieToPciBridge, ConventionalPciBridge } from './pci/pci-bridges.ts';
export { PciBus } from './pci/bus.ts';
export { RootComplex } from './pci/root-complex.ts';
export { type BarSpec, type BarKind } from './pci/bar.ts';
export { formatBdf, parseBdf, requesterId, formatRequesterId, type Bdf } from './pci/bdf.ts';
export { enumeratePci, ecamAccessor, type ConfigAccessor, type EnumeratedFunction } from './pci/enumerate.ts';
export { describeFunction, listCapabilities } from './pci/lspci.ts';
export { type DmaRemapper, type TranslationAnswer } from './pci/remapper.ts';
export {
  NO_PASID,
  type DmaTransaction,
  type DmaCompletion,
  type CompletionStatus,
  type AddressType,
  type DmaAttrs,
  type DmaResult,
} from './pci/transaction.ts';
export * from './pci/caps/index.ts';

export { Board, type BoardOptions } from '../machines/board.ts';
export { createMachine, Machine, DEFAULT_DEVICES, type MachineOptions, type DeviceSpec } from '../machines/machine.ts';
export { machineBuilder, MachineBuilder, BusBuilder } from '../machines/builder.ts';
export type { BridgeSpec, TopologySpec } from '../machines/topology.ts';
export { Host } from './host/host.ts';
export { Process, type SpawnOptions, type MmapOptions } from './host/process.ts';
export * from './uapi/errno.ts';
export { PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC } from './host/mm.ts';
export { IommuCore } from './iommu-core/core.ts';
export { IommuDomain } from './iommu-core/domain.ts';
export { DmaEngine, type DmaEngineOptions } from '../devices/dma-engine/index.ts';
export { Smmuv3 } from '../iommu/smmuv3/smmuv3.ts';
export { Smmuv3Driver } from '../iommu/smmuv3/driver/driver.ts';
export { VtdIommu } from '../iommu/vtd/vtd.ts';
export { FaultInjector, type InjectionAction } from './fault/injector.ts';
export { INJECTION_POINTS, type InjectionPointName } from '../machines/points.ts';
export { machineLayout, type MachineKind, type MachineLayout } from '../machines/layout.ts';
export { TestDmaDevice, TEST_REGS, TEST_STATUS, TEST_CMD, TEST_ERROR } from '../devices/test-dma-device.ts';
export * from './vfio/index.ts';
export * from './uapi/struct.ts';
export { registerIommufd } from './iommufd/main.ts';
export * from './uapi/iommufd.ts';
export { applyPlan, loadPlan, validatePlan, parsePlan, type FaultPlan } from './fault/plan.ts';
export { checkInvariants, recordBaseline, monitorUnmaps, guard, formatViolations, type Violation } from '../tools/fault/invariants.ts';
export { runFailNth } from '../tools/fault/fail-nth.ts';
