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

export {
  Tracer,
  type TraceRecord,
  type TraceEventMap,
  type TraceName,
  type TraceChannel,
  type TraceEventTable,
  type DefinedTraceEvent,
} from './trace/tracer.ts';
export { Counters, type Counter } from './trace/counters.ts';
export { ChromeTraceSink, type ChromeTrace, type ChromeTraceEvent } from './trace/chrome-trace.ts';

export { RegisterFile, FieldRef, type RegisterDef, type FieldAccess } from './hw/register-file.ts';
export { RegisterTable, defineRegisters, type RegisterSpec, type RegMap, type RegMapOf, type TableRegMap } from './hw/registers.ts';
export {
  defineLayout, decodeLayout, encodeLayout, formatLayout, readField, writeField, reservedBitsSet, hasReservedBits,
  type BitField, type FieldSpec, type FieldTable, type Layout,
} from './hw/layout.ts';
export { MsiController, type MsiMessage } from './irq/msi-controller.ts';
export { IntxPin, intxPinOf } from './irq/intx.ts';

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
  type DmaReadResult,
  type DmaWriteResult,
  type DmaFailure,
} from './pci/transaction.ts';
export * from './pci/caps/index.ts';

export { Board, type BoardOptions } from '../machines/board.ts';
export { createMachine, Machine, DEFAULT_DEVICES, type MachineOptions, type DeviceSpec } from '../machines/machine.ts';
export { machineBuilder, MachineBuilder, BusBuilder } from '../machines/builder.ts';
export type { BridgeSpec, TopologySpec } from '../machines/topology.ts';
export { Host } from './host/host.ts';
export { Process, type SpawnOptions, type MmapOptions } from './host/process.ts';
export * from './uapi/errno.ts';
export * from './uapi/memfd.ts';
export { LINUX_RELEASE, LINUX_SERIES } from './uapi/linux-release.ts';
export { PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC } from './host/mm.ts';
export { IommuCore } from './iommu-core/core.ts';
export { IommuDomain } from './iommu-core/domain.ts';
export { DmaEngine, type DmaEngineOptions } from '../devices/dma-engine/index.ts';
export { Smmuv3 } from '../iommu/smmuv3/smmuv3.ts';
export { Smmuv3Driver } from '../iommu/smmuv3/driver/driver.ts';
export { VtdIommu } from '../iommu/vtd/vtd.ts';
export {
  FaultInjector,
  InjectionPoint,
  injectedErrno,
  ALL_ACTIONS,
  type InjectionAction,
  type InjectionActionKind,
  type InjectionPointSpec,
  type InjectionPointTable,
  type DefinedPoints,
} from './fault/injector.ts';
export { INJECTION_POINTS, type InjectionPointName } from '../machines/points.ts';
export { machineLayout, type MachineKind, type MachineLayout } from '../machines/layout.ts';
export { TestDmaDevice, TEST_REGS, TEST_STATUS, TEST_CMD, TEST_ERROR } from '../devices/test-dma-device.ts';
export * from './vfio/index.ts';
export * from './uapi/struct.ts';
export { registerIommufd } from './iommufd/main.ts';
export * from './uapi/iommufd.ts';
export { applyPlan, loadPlan, validatePlan, parsePlan, PlanError, type FaultPlan, type PlanRule, type AppliedPlan } from './fault/plan.ts';
export { CallerError } from './errors.ts';
export { checkInvariants, recordBaseline, monitorUnmaps, guard, formatViolations, type Violation } from '../tools/fault/invariants.ts';
export { runFailNth } from '../tools/fault/fail-nth.ts';

// --- io-pgtable vocabulary (what page-table builders and the IOMMU core share) ---
export { IotlbGather, IOMMU_READ, IOMMU_WRITE, IOMMU_CACHE, IOMMU_NOEXEC, IOMMU_MMIO, IOMMU_PRIV, type PageTableBuilder, type TablePageAllocator } from './iommu-core/io-pgtable.ts';
export { type HostPlatform, type CpuArch } from './host/platform.ts';

// --- the DMA engine's descriptor formats (for drivers of the reference device) ---
export { DESC_STATUS, OPCODE, encodeDescriptor, decodeCompletion, type CompletionRecord } from '../devices/dma-engine/descriptor.ts';

// --- a guest's own page tables and vIOMMU structures (nested translation) ---
export { processGuestRam, guestAllocator, type ByteAccess } from '../iommu/guest/guest-mem.ts';
export { GUEST_ASID, guestStage1, s1Vste, vcmds, type GuestS1 } from '../iommu/guest/smmuv3.ts';
export { guestFirstStage, vtdS1, vtdInv } from '../iommu/guest/vtd.ts';

// --- tools that run machines: scenarios, VMM sequences, reports ---
export {
  runScenario,
  machineFor,
  scenarioDevices,
  isScenario,
  Metrics,
  UsageError,
  MACHINE_KINDS,
  MACHINE_PARAMS,
  type Scenario,
  type ScenarioContext,
  type ScenarioMachineOptions,
  type RunOptions,
  type RunResult,
  type ParamDoc,
  type ParamSpec,
} from '../tools/scenario/scenario.ts';
export {
  vfioType1Setup,
  iommufdSetup,
  ioasMap,
  vfioPciRealize,
  msixEventfds,
  eventfdCount,
  cdevOf,
  VmmError,
  type Type1Setup,
  type IommufdSetup,
  type PciRealize,
} from '../tools/scenario/vmm.ts';
export { EngineUser, type WqConfig } from '../tools/scenario/engine-user.ts';
export { summaryRow, stats, hitRates, descriptorLatencies, type Stats, type HitRate } from '../tools/report/figures.ts';
export { renderReports } from '../tools/report/html.ts';
export { runProgram, loadModule, ProgramLoadError, type ProgramOptions, type ProgramResult } from '../tools/cprog/runner.ts';
export { HANG_STATUS } from '../tools/cprog/program.ts';
export { compile as compileC, clangArgs, ioemuHeaders, type RunClang, type Tree as ClangTree, type CompileResult } from '../tools/cprog/compile.ts';
