/**
 * Every trace point of ioemu, declared in one place (the idea of QEMU's
 * trace-events file): the event name and the shape of its arguments. A model
 * emits only names listed here, so a typo is a type error and a reader finds
 * every architectural event in one file. Add new points here as parts land.
 * An argument that can exceed 2^53 (a u64 size such as an ATS invalidation's
 * 2^64 "everything", an address straight from a uapi struct) is a bigint:
 * the Chrome trace writes it as an exact hex string (chrome-trace.ts).
 */
export interface TraceEventMap {
  // --- VFIO ---
  /** VFIO_IOMMU_MAP_DMA mapped a range in `runs` physically contiguous runs (one iommu_map per run per domain). */
  'vfio.map': { iova: number; size: number; vaddr: number; runs: number };
  'vfio.unmap': { iova: number; size: number };
  /** A group joined a container's type1 IOMMU (`shared`: into an existing domain). */
  'vfio.attach': { group: number; domains: number; shared: boolean };
  'vfio.detach': { group: number; domains: number };
  'vfio.bind': { pid: number; pasid: number };
  'vfio.unbind': { pid: number; pasid: number };
  /** A device's MSI/MSI-X vector reached the host and signalled its eventfd. */
  'vfio.irq': { dev: string; index: number; vector: number };
  /** A process mmapped a device region (a BAR) of a vfio-pci device. */
  'vfio.mmap': { dev: string; index: number; offset: number; length: number };
  /** The device asserted INTx: vfio masked it (auto-mask) and signalled the trigger eventfd. */
  'vfio.intx': { dev: string };
  // --- end VFIO ---
  // --- iommufd ---
  /** IOMMU_IOAS_MAP (or a VFIO compat MAP_DMA) placed `length` bytes of user memory at `iova` in IOAS `ioas`. */
  'iommufd.map': { ioas: number; iova: number; length: number; uptr: number; compat: boolean };
  /** IOMMU_IOAS_COPY mapped `length` bytes of `src` at `iova` in `ioas`, sharing the pages. */
  'iommufd.copy': { ioas: number; src: number; srcIova: number; iova: number; length: number };
  /** IOMMU_IOAS_UNMAP (or a VFIO compat UNMAP_DMA): `length` bytes went from [iova, iova+requested). */
  'iommufd.unmap': { ioas: number; iova: bigint; requested: bigint; length: number; compat: boolean };
  /**
   * The IOMMU driver reported an event to vIOMMU `viommu`'s vEVENTQ of `type`: queued with `sequence`,
   * or lost (the LOST_EVENTS header took the sequence number); `queued` events now wait.
   */
  'iommufd.vevent': { veventq: number; viommu: number; type: number; sequence: number; lost: boolean; queued: number };
  // --- end iommufd ---
  // --- DMA engine ---
  'dma-engine.desc.start': { dev: string; wq: number; op: string; pasid: number; len: number };
  /** A descriptor completed; `dur` is its time from dispatch. `fault` names the failed access's fault, if any. */
  'dma-engine.desc.complete': { dev: string; wq: number; op: string; status: string; bytes: number; fault: string };
  'dma-engine.atc.hit': { dev: string; pasid: number; addr: number; write: boolean };
  'dma-engine.atc.miss': { dev: string; pasid: number; addr: number; write: boolean };
  'dma-engine.atc.fill': { dev: string; pasid: number; addr: number; size: number; pa: number; perms: string };
  'dma-engine.atc.invalidate': { dev: string; itag: number; pasid: number; global: boolean; addr: number; size: bigint; dropped: number };
  'dma-engine.pri.request': { dev: string; pasid: number; prg: number; addr: number; write: boolean; last: boolean };
  'dma-engine.pri.response': { dev: string; pasid: number; prg: number; code: string; expected: boolean };
  /** The error register latched an error (or overflowed). */
  'dma-engine.error': { dev: string; code: number; wq: number; info: number; addr: number };
  // --- end DMA engine ---
  // --- ATS and PRI messages through the root complex ---
  'ats.translate': { rid: number; pasid: number; addr: number; len: number };
  'ats.invalidate': { rid: number; itag: number; pasid: number; addr: number; size: bigint };
  'ats.inv-complete': { rid: number; itags: number; cc: number };
  'pri.request': { rid: number; pasid: number; addr: number; prg: number; last: boolean };
  'pri.response': { rid: number; pasid: number; prg: number; code: string };
  // --- IOMMU core and I/O page faults ---
  /** A page request reached the core's fault queue. */
  'iopf.report': { dev: string; pasid: number; grpid: number; addr: number; last: boolean };
  /** A page request group was answered; `dur` is its service time. */
  'iopf.response': { dev: string; pasid: number; grpid: number; code: string; requests: number };
  'iommu.attach': { dev: string; domain: string; pasid: number };
  /**
   * A driver refused a PCI function at probe (`driver`: 'iommu' for the IOMMU driver's probe_device,
   * 'vfio-pci' for the VFIO bind); the function stays in sysfs without that driver. `reason` is the
   * kernel's log line, e.g. SMMUv3's "Aliasing StreamID 0x100 (from 0000:01:01.0) unsupported".
   */
  'host.probe-failed': { dev: string; driver: string; errno: number; reason: string };
  /**
   * A system call of a C program run as a process (tools/cprog): the call, its arguments as the
   * program passed them (as text), the result; a failure has result -errno and its name in `errno`.
   * `dur` is the virtual time the call took (a blocking read or poll, a sleep).
   */
  'proc.syscall': { pid: number; call: string; args: string; result: number; errno: string };
  'sva.bind': { dev: string; pid: number; pasid: number };
  'sva.unbind': { dev: string; pid: number; pasid: number };
  /** An access that decoded to nothing: reads return all-ones, writes are dropped. */
  'mem.unassigned': { as: string; addr: number; size: number; write: boolean };
  /** An MMIO access of a size or alignment the region does not accept. */
  'mem.invalid-access': { region: string; offset: number; size: number; write: boolean };
  'pci.config.read': { bdf: string; offset: number; size: number; value: number };
  'pci.config.write': { bdf: string; offset: number; size: number; value: number };
  'pci.bar.map': { bdf: string; bar: number; addr: number; size: number };
  'pci.bar.unmap': { bdf: string; bar: number };
  /** A bus-master transaction as it leaves the device. */
  'dma.transaction': {
    rid: number;
    pasid: number;
    at: string;
    addr: number;
    len: number;
    write: boolean;
  };
  /** A transaction that completed with something other than Successful Completion. */
  'dma.abort': { rid: number; addr: number; status: string; reason: string };
  'msi.send': { rid: number; addr: number; data: number };
  'msi.receive': { addr: number; data: number };
  'msix.pending': { bdf: string; vector: number };
  'device.op': { device: string; op: string; detail: string };
  /** A fault-injection point fired (src/fault/points.ts names them). */
  'fault.inject': { point: string; action: string; ctx: string };
  // --- SMMUv3 ---
  /** Software wrote an SMMU register (value after the write took effect). */
  'smmuv3.reg': { reg: string; offset: number; value: number };
  /** CR0 / IRQ_CTRL / GBPA updates completed (the ACK registers now match). */
  'smmuv3.enable': { reg: string; value: number };
  /** A command was consumed from the command queue. */
  'smmuv3.cmd': { op: string; index: number; detail: string };
  /** Command consumption stopped on an error (CMDQ_CONS.ERR). */
  'smmuv3.cmd.error': { op: string; index: number; err: string; reason: string };
  /** A configuration structure was fetched from memory (STE, L1STD, CD, L1CD). */
  'smmuv3.cfg.fetch': { kind: string; sid: number; ssid: number; addr: number; ok: boolean; detail: string };
  /** Configuration cache entries dropped by a CMD_CFGI_*. */
  'smmuv3.cfg.invalidate': { op: string; sid: number; ssid: number; entries: number };
  /** A translation missed the IOTLB and walked the tables. */
  'smmuv3.walk': { sid: number; ssid: number; stage: number; ia: number; oa: number; size: number; reads: number; writes: number; fault: string };
  /** IOTLB entries dropped by a CMD_TLBI_*. */
  'smmuv3.tlbi': { op: string; vmid: number; asid: number; addr: number; size: number; entries: number };
  /** A transaction was terminated (aborted, or completed RAZ/WI). */
  'smmuv3.fault': { sid: number; ssid: number; addr: number; write: boolean; fault: string; action: string };
  /** An event record was produced; outcome: recorded, suppressed, overflow, disabled or lost. */
  'smmuv3.event': { code: number; name: string; sid: number; ssid: number; addr: number; outcome: string };
  /** A global error became active (GERROR != GERRORN) or was acknowledged. */
  'smmuv3.gerror': { name: string; active: boolean };
  /** An interrupt was raised: an MSI write or the wired line. */
  'smmuv3.irq': { line: string; msi: boolean; addr: number; data: number; ok: boolean };
  /** An ATS Translation Request was answered (the first entry's address, size and permissions). */
  'smmuv3.ats': { sid: number; ssid: number; addr: number; len: number; status: string; entries: number; pa: number; size: number; perms: string };
  /** An ATS Invalidation Request: sent, completed by the endpoint, or abandoned by a timed-out CMD_SYNC. */
  'smmuv3.atc.inv': { what: string; sid: number; ssid: number; itag: number; addr: number; size: bigint; global: boolean };
  /** A CMD_SYNC waits for ATC invalidation completions, or completes after waiting. */
  'smmuv3.sync': { index: number; state: string };
  /** A page request reached the PRI queue; outcome: recorded, overflow, disabled, lost or dropped. */
  'smmuv3.priq': { sid: number; ssid: number; prg: number; addr: number; last: boolean; outcome: string };
  /** A PRG Response left for an endpoint (CMD_PRI_RESP, or automatic). */
  'smmuv3.pri.resp': { sid: number; ssid: number; prg: number; code: string; auto: boolean };
  /** A transaction stalled, or its stall ended (retry, abort, terminate, stall-term, timeout). */
  'smmuv3.stall': { sid: number; stag: number; action: string };
  // --- end SMMUv3 ---
  // --- VT-d ---
  /** A GSTS status bit changed after a GCMD command (TES, RTPS, QIES). */
  'vtd.gsts': { status: string; value: boolean };
  /** GCMD.SRTP latched RTADDR: root table address and translation mode (legacy, scalable, invalid). */
  'vtd.root': { addr: number; mode: string };
  /** A DMA translated successfully (IOTLB hit or walk). */
  'vtd.translate': { sid: number; pasid: number; addr: number; pa: number; length: number; write: boolean };
  /** A DMA aborted with a fault reason; recorded = written to a fault recording register. */
  'vtd.fault': { sid: number; pasid: number; addr: number; reason: number; name: string; write: boolean; fpd: boolean; recorded: boolean };
  /** A fault was written to fault recording register `index`. */
  'vtd.fault.record': { index: number; reason: number; name: string; sid: number; pasid: number; addr: number; write: boolean };
  /** A fault was lost: FSTS.PFO set or the next recording register still full. */
  'vtd.fault.overflow': { reason: number; name: string; sid: number; addr: number };
  /** A context or PASID-table entry was fetched into its cache. */
  'vtd.entry.load': { kind: string; sid: number; pasid: number; entry: string };
  /** An IOTLB miss walked the page tables. */
  'vtd.walk': { sid: number; pasid: number; did: number; addr: number; stage: string; ok: boolean; pa: number; pageSize: number; reads: number };
  /** A cache invalidation (context, pasid, iotlb, piotlb) at a scope, and how many entries it removed. */
  'vtd.invalidate': { cache: string; scope: string; did: number; sid: number; pasid: number; addr: number; am: number; removed: number };
  /** An invalidation queue descriptor was executed. */
  'vtd.qi.desc': { index: number; type: string; desc: string };
  /** An invalidation wait descriptor completed. */
  'vtd.qi.wait': { statusWrite: boolean; addr: number; data: number; interrupt: boolean; fence: boolean };
  /** The invalidation queue stopped with FSTS.IQE (IQERCD.IQEI = iqei). */
  'vtd.qi.error': { head: number; iqei: number; type: number };
  /** An event interrupt (fault, inv, prq) message; delivered false when injection dropped it. */
  'vtd.irq': { kind: string; addr: number; data: number; delivered: boolean };
  /** An ATS Translation Request answered (status SC/UR, number of completion entries). */
  'vtd.ats.translate': { sid: number; pasid: number; addr: number; length: number; status: string; entries: number };
  /** A device-TLB invalidation descriptor sent an ATS Invalidation Request with ITag `itag`. */
  'vtd.devtlb.invalidate': { sid: number; itag: number; pasid: number; global: boolean; addr: number; size: bigint };
  /** The device completed an ATS invalidation. */
  'vtd.devtlb.complete': { sid: number; itag: number };
  /** An ATS invalidation was not completed in time: Invalidation Time-out Error. */
  'vtd.devtlb.timeout': { sid: number; itag: number; waitedNs: number };
  /** A page request descriptor was written to the page request queue at entry `index`. */
  'vtd.prq.write': { index: number; sid: number; pasid: number; addr: number; prgi: number; lpig: boolean; read: boolean; write: boolean };
  /** A page request was discarded: queue full or PRS.PRO set; autoResponse is the unit's own answer. */
  'vtd.prq.overflow': { sid: number; pasid: number; addr: number; prgi: number; autoResponse: string };
  /** A PRG Response went downstream (auto: generated by the unit, not by a page group response descriptor). */
  'vtd.prg.response': { rid: number; pasid: number; prgi: number; code: string; auto: boolean };
  // --- end VT-d ---
}

export type TraceName = keyof TraceEventMap;
