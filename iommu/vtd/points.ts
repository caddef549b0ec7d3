import type { InjectionPointTable } from '../../src/fault/injector.ts';

/**
 * Fault-injection points of the VT-d model (machines/points.ts lists them
 * with the other built-in ones). Each declares exactly the actions its
 * check() site carries out.
 */
export const VTD_INJECTION_POINTS = {
  'vtd.walk_read': {
    description: 'VT-d: a page-walk read of one 64-bit paging entry (fail, drop: fetch error fault reason; corrupt: XOR the entry)',
    actions: ['fail', 'drop', 'corrupt'],
  },
  'vtd.context_fetch': {
    description: 'VT-d: the context-entry fetch after the root entry (fail, drop: context fetch error; corrupt: XOR its first qword)',
    actions: ['fail', 'drop', 'corrupt'],
  },
  'vtd.pasid_fetch': {
    description: 'VT-d: the PASID-table-entry fetch after the directory entry (fail, drop: PASID entry fetch error; corrupt: XOR its first qword)',
    actions: ['fail', 'drop', 'corrupt'],
  },
  'vtd.fault_record': {
    description: 'VT-d: recording a fault in a fault recording register (fail, drop: the fault is lost, nothing recorded)',
    actions: ['fail', 'drop'],
  },
  'vtd.inv_queue_process': {
    description: 'VT-d: processing one invalidation queue descriptor (fail: IQE with IQEI fetch error; drop: skipped unexecuted; corrupt: XOR its first qword)',
    actions: ['fail', 'drop', 'corrupt'],
  },
  'vtd.msi': {
    description: 'VT-d: an event interrupt message write (fault / invalidation completion / page request; fail, drop: lost; delay: sent later; corrupt: XOR the 32-bit data with xorLo)',
    actions: ['fail', 'drop', 'delay', 'corrupt'],
    corruptMask: [0xffffffff, 0],
  },
  'vtd.ats_inv_complete': {
    description: 'VT-d: an ATS Invalidation Completion reaching the unit (fail, drop: lost, so the device-TLB invalidation times out with ITE; delay: arrives later)',
    actions: ['fail', 'drop', 'delay'],
  },
  'vtd.prq_write': {
    description: 'VT-d: writing a page request descriptor to the page request queue (fail: write error, the group is answered Response Failure; drop: lost; corrupt: XOR its first words)',
    actions: ['fail', 'drop', 'corrupt'],
  },
  'vtd.prg_response': {
    description: 'VT-d: a PRG Response sent downstream (page group response descriptor or automatic; fail, drop: lost; delay: sent later)',
    actions: ['fail', 'drop', 'delay'],
  },
} as const satisfies InjectionPointTable;
