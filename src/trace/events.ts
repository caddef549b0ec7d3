/**
 * Every trace point of ioemu, declared in one place (the idea of QEMU's
 * trace-events file): the event name and the shape of its arguments. A model
 * emits only names listed here, so a typo is a type error and a reader finds
 * every architectural event in one file. Add new points here as parts land.
 */
export interface TraceEventMap {
  // --- ATS and PRI messages through the root complex ---
  'ats.translate': { rid: number; pasid: number; addr: number; len: number };
  'ats.invalidate': { rid: number; itag: number; pasid: number; addr: number; size: number };
  'ats.inv-complete': { rid: number; itags: number; cc: number };
  'pri.request': { rid: number; pasid: number; addr: number; prg: number; last: boolean };
  'pri.response': { rid: number; pasid: number; prg: number; code: string };
  // --- IOMMU core and I/O page faults ---
  /** A page request reached the core's fault queue. */
  'iopf.report': { dev: string; pasid: number; grpid: number; addr: number; last: boolean };
  /** A page request group was answered; `dur` is its service time. */
  'iopf.response': { dev: string; pasid: number; grpid: number; code: string; requests: number };
  'iommu.attach': { dev: string; domain: string; pasid: number };
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
}

export type TraceName = keyof TraceEventMap;
