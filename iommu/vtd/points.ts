/** Fault-injection points of the VT-d model (aggregated in src/fault/points.ts). */
export const VTD_INJECTION_POINTS = {
  'vtd.walk_read':
    'VT-d: a page-walk read of one 64-bit paging entry (fail/drop: fetch error fault reason; corrupt: XOR the entry)',
  'vtd.context_fetch':
    'VT-d: the context-entry fetch after the root entry (fail/drop: context fetch error; corrupt: XOR its first qword)',
  'vtd.pasid_fetch':
    'VT-d: the PASID-table-entry fetch after the directory entry (fail/drop: PASID entry fetch error; corrupt: XOR its first qword)',
  'vtd.fault_record':
    'VT-d: recording a fault in a fault recording register (fail/drop: the fault is lost, nothing recorded)',
  'vtd.inv_queue_process':
    'VT-d: processing one invalidation queue descriptor (fail: IQE with IQEI fetch error; drop: skipped unexecuted; corrupt: XOR its first qword)',
  'vtd.msi':
    'VT-d: an event interrupt message write (fault / invalidation completion / page request; fail/drop: lost; delay: sent later; corrupt: XOR the data)',
  'vtd.ats_inv_complete':
    'VT-d: an ATS Invalidation Completion reaching the unit (fail/drop: lost, so the device-TLB invalidation times out with ITE; delay: arrives later)',
  'vtd.prq_write':
    'VT-d: writing a page request descriptor to the page request queue (fail: write error, the group is answered Response Failure; drop: lost; corrupt: XOR its first words)',
  'vtd.prg_response':
    'VT-d: a PRG Response sent downstream (page group response descriptor or automatic; fail/drop: lost; delay: sent later)',
} as const;
