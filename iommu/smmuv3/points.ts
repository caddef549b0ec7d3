/** Fault-injection points of the SMMUv3 model (aggregated in src/fault/points.ts). */
export const SMMUV3_INJECTION_POINTS = {
  'smmuv3.walk_read':
    'a translation table descriptor read (stage 1 or 2) aborts: F_WALK_EABT (corrupt: the descriptor is read with bits flipped)',
  'smmuv3.ste_fetch': 'an STE or L1STD fetch aborts: F_STE_FETCH (corrupt: the first word is read with bits flipped)',
  'smmuv3.cd_fetch': 'a CD or L1CD fetch aborts: F_CD_FETCH (corrupt: the first word is read with bits flipped)',
  'smmuv3.evtq_write':
    'an event queue record write aborts: the record is lost and GERROR.EVENTQ_ABT_ERR activates (drop: lost silently; corrupt: written with bits flipped)',
  'smmuv3.cmdq_process': 'a command fetch aborts: CMDQ_CONS.ERR = CERROR_ABT and GERROR.CMDQ_ERR (corrupt: the command is read with bits flipped)',
  'smmuv3.msi': 'an MSI write (CMD_SYNC, event queue, GERROR) aborts: GERROR.MSI_*_ABT_ERR (drop: the MSI is lost silently)',
} as const;
