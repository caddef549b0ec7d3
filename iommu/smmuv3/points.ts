/** Fault-injection points of the SMMUv3 model (aggregated in src/fault/points.ts). */
export const SMMUV3_INJECTION_POINTS = {
  'smmuv3.walk_read':
    'a translation table descriptor read (stage 1 or 2) aborts: F_WALK_EABT (corrupt: the descriptor is read with bits flipped)',
  'smmuv3.ste_fetch': 'an STE or L1STD fetch aborts: F_STE_FETCH (corrupt: the first word is read with bits flipped)',
  'smmuv3.cd_fetch': 'a CD or L1CD fetch aborts: F_CD_FETCH (corrupt: the first word is read with bits flipped)',
  'smmuv3.evtq_write':
    'an event queue record write aborts: the record is lost and GERROR.EVENTQ_ABT_ERR activates (drop: lost silently; corrupt: written with bits flipped)',
  'smmuv3.cmdq_process': 'a command fetch aborts: CMDQ_CONS.ERR = CERROR_ABT and GERROR.CMDQ_ERR (corrupt: the command is read with bits flipped)',
  'smmuv3.msi': 'an MSI write (CMD_SYNC, event queue, PRI queue, GERROR) aborts: GERROR.MSI_*_ABT_ERR (drop: the MSI is lost silently)',
  'smmuv3.priq_write':
    'a PRI queue record write aborts: the request is lost, GERROR.PRIQ_ABT_ERR activates and a Last request gets the automatic response (drop: lost silently; corrupt: written with bits flipped)',
  'smmuv3.atc_inv':
    'an ATS Invalidation Request from CMD_ATC_INV is lost on its way to the device (fail/drop), so the CMD_SYNC waiting for it times out with CERROR_ATC_INV_SYNC (delay: sent later)',
  'smmuv3.atc_inv_complete':
    'an ATS Invalidation Completion reaching the SMMU is lost (fail/drop: the CMD_SYNC times out with CERROR_ATC_INV_SYNC; delay: taken later)',
  'smmuv3.ats_treq':
    'an ATS Translation Request is answered Completer Abort (fail), or its first translation is returned with address bits flipped (corrupt)',
  'smmuv3.pri_resp':
    'a PRG Response (CMD_PRI_RESP or automatic) is lost (drop), sent as Response Failure (fail) or sent later (delay)',
  'smmuv3.stall':
    'a CMD_RESUME or CMD_STALL_TERM reaching a stalled transaction is lost (drop: the transaction waits for the stall timeout) or turns into an abort (fail)',
} as const;
