import type { InjectionActionKind, InjectionPointTable } from '../../src/fault/injector.ts';

/**
 * Fault-injection points of the SMMUv3 model (machines/points.ts lists them
 * with the other built-in ones). Each declares exactly the actions its
 * check() site carries out.
 */
export const SMMUV3_INJECTION_POINTS = {
  'smmuv3.walk_read': {
    description: 'a translation table descriptor read (stage 1 or 2) aborts: F_WALK_EABT (fail); the descriptor is read with bits flipped (corrupt)',
    actions: ['fail', 'corrupt'],
  },
  'smmuv3.ste_fetch': {
    description: 'an STE or L1STD fetch aborts: F_STE_FETCH (fail); its first words are read with bits flipped (corrupt)',
    actions: ['fail', 'corrupt'],
  },
  'smmuv3.cd_fetch': {
    description: 'a CD or L1CD fetch aborts: F_CD_FETCH (fail); its first words are read with bits flipped (corrupt)',
    actions: ['fail', 'corrupt'],
  },
  'smmuv3.evtq_write': {
    description: 'an event queue record write aborts: the record is lost and GERROR.EVENTQ_ABT_ERR activates (fail); lost silently (drop); written with bits flipped (corrupt)',
    actions: ['fail', 'drop', 'corrupt'],
  },
  'smmuv3.cmdq_process': {
    description: 'a command fetch aborts: CMDQ_CONS.ERR = CERROR_ABT and GERROR.CMDQ_ERR (fail); the command is read with bits flipped (corrupt)',
    actions: ['fail', 'corrupt'],
  },
  'smmuv3.msi': {
    description: 'an MSI write (CMD_SYNC, event queue, PRI queue, GERROR) aborts: GERROR.MSI_*_ABT_ERR (fail); the MSI is lost silently (drop)',
    actions: ['fail', 'drop'],
  },
  'smmuv3.priq_write': {
    description:
      'a PRI queue record write aborts: the request is lost, GERROR.PRIQ_ABT_ERR activates and a Last request gets the automatic response (fail); lost silently (drop); written with bits flipped (corrupt)',
    actions: ['fail', 'drop', 'corrupt'],
  },
  'smmuv3.atc_inv': {
    description:
      'an ATS Invalidation Request from CMD_ATC_INV is lost on its way to the device (fail, drop), so the CMD_SYNC waiting for it times out with CERROR_ATC_INV_SYNC; sent later (delay)',
    actions: ['fail', 'drop', 'delay'],
  },
  'smmuv3.atc_inv_complete': {
    description: 'an ATS Invalidation Completion reaching the SMMU is lost (fail, drop: the CMD_SYNC times out with CERROR_ATC_INV_SYNC); taken later (delay)',
    actions: ['fail', 'drop', 'delay'],
  },
  'smmuv3.ats_treq': {
    description: 'an ATS Translation Request is answered Completer Abort (fail); its first translation is returned with address bits flipped (corrupt: only when it returns one; bits 0-51)',
    actions: ['fail', 'corrupt'],
    corruptMask: [0xffffffff, 0xfffff],
  },
  'smmuv3.pri_resp': {
    description: 'a PRG Response (CMD_PRI_RESP or automatic) is lost (drop), sent as Response Failure (fail: unless it already is one) or sent later (delay)',
    actions: ['fail', 'drop', 'delay'],
  },
  'smmuv3.stall': {
    description:
      'a CMD_RESUME or CMD_STALL_TERM reaching a stalled transaction is lost (drop: the transaction waits for the stall timeout); a CMD_RESUME that would retry or terminate aborts instead (fail)',
    actions: ['fail', 'drop'],
  },
} as const satisfies InjectionPointTable;

/** What some SMMUv3 sites can carry out at a given hit (subsets of their point's actions; constant, so a hit allocates nothing). */
export const SMMUV3_SITE_ACTIONS = {
  failOnly: ['fail'],
  dropOnly: ['drop'],
  dropDelay: ['drop', 'delay'],
} as const satisfies Record<string, readonly InjectionActionKind[]>;
