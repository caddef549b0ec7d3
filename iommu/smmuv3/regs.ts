/**
 * The SMMUv3 programming interface as data (Arm IHI 0070, §6.2 "Register
 * overview", §6.3 "Register formats"): the register table both the model
 * and the host driver read, and the values it gives names to.
 */
import { defineRegisters, type RegName, type TableRegMap } from '../../src/hw/registers.ts';

/** Page 0 + Page 1 (§6.2). */
export const SMMU_PAGE_SIZE = 0x1_0000;
export const SMMU_REGION_SIZE = 0x2_0000;

/** §6.3.9 SMMU_CR0 / §6.3.10 SMMU_CR0ACK. VMW and DPT_WALK_EN are RES0 here (IDR0.VMW = 0, IDR3.DPT = 0). */
const CR0_FIELDS = [['SMMUEN', 0], ['PRIQEN', 1], ['EVENTQEN', 2], ['CMDQEN', 3], ['ATSCHK', 4]] as const;
/** §6.3.18 SMMU_GERROR / §6.3.19 SMMU_GERRORN: each error is active while the two bits differ. */
const GERROR_FIELDS = [
  ['CMDQ_ERR', 0], ['EVENTQ_ABT_ERR', 2], ['PRIQ_ABT_ERR', 3], ['MSI_CMDQ_ABT_ERR', 4], ['MSI_EVENTQ_ABT_ERR', 5],
  ['MSI_PRIQ_ABT_ERR', 6], ['MSI_GERROR_ABT_ERR', 7], ['SFM_ERR', 8], ['CMDQP_ERR', 9],
] as const;
/** §6.3.16 SMMU_IRQ_CTRL / §6.3.17 SMMU_IRQ_CTRLACK. */
const IRQ_CTRL_FIELDS = [['GERROR_IRQEN', 0], ['PRIQ_IRQEN', 1], ['EVENTQ_IRQEN', 2]] as const;
/** *_IRQ_CFG0/1/2 (§6.3.21-23 for GERROR; the Event and PRI queue ones are identical). ADDR[55:52] is RES0 above OAS (52). */
const IRQ_CFG0_FIELDS = [['ADDR', 51, 2]] as const;
const IRQ_CFG1_FIELDS = [['DATA', 31, 0]] as const;
const IRQ_CFG2_FIELDS = [['MEMATTR', 3, 0], ['SH', 5, 4]] as const;
/** *Q_PROD / *Q_CONS of the queues the SMMU writes (§6.3.28-29, §6.3.31-32): the overflow flag in bit 31. */
const OUT_PROD_FIELDS = [['WR', 19, 0], ['OVFLG', 31]] as const;
const OUT_CONS_FIELDS = [['RD', 19, 0], ['OVACKFLG', 31]] as const;

/**
 * The SMMUv3 programming interface (Arm IHI 0070, §6.2 "Register overview",
 * §6.3 "Register formats"): Page 0 at offset 0 and Page 1 at 0x10000, each
 * register with its offset and fields `[name, msb, lsb?, access?]`. The
 * model builds its RegisterFile from this table and the host driver encodes
 * and decodes through the same table, the way both would share a C header.
 */
export const SMMU_REGS = defineRegisters('smmuv3', [
  /** §6.3.1 SMMU_IDR0. */
  {
    name: 'IDR0', offset: 0x00, size: 4, access: 'ro',
    fields: [
      ['S2P', 0], ['S1P', 1], ['TTF', 3, 2], ['COHACC', 4], ['BTM', 5], ['HTTU', 7, 6], ['DORMHINT', 8], ['HYP', 9], ['ATS', 10],
      ['NS1ATS', 11], ['ASID16', 12], ['MSI', 13], ['SEV', 14], ['ATOS', 15], ['PRI', 16], ['VMW', 17], ['VMID16', 18], ['CD2L', 19],
      ['VATOS', 20], ['TTENDIAN', 22, 21], ['ATSRECERR', 23], ['STALL_MODEL', 25, 24], ['TERM_MODEL', 26], ['ST_LEVEL', 28, 27],
      ['RME_IMPL', 30],
    ],
  },
  /** §6.3.2 SMMU_IDR1. */
  {
    name: 'IDR1', offset: 0x04, size: 4, access: 'ro',
    fields: [
      ['SIDSIZE', 5, 0], ['SSIDSIZE', 10, 6], ['PRIQS', 15, 11], ['EVENTQS', 20, 16], ['CMDQS', 25, 21], ['ATTR_PERMS_OVR', 26],
      ['ATTR_TYPES_OVR', 27], ['REL', 28], ['QUEUES_PRESET', 29], ['TABLES_PRESET', 30], ['ECMDQ', 31],
    ],
  },
  { name: 'IDR2', offset: 0x08, size: 4, access: 'ro', fields: [['BA_VATOS', 9, 0]] },
  /** §6.3.4 SMMU_IDR3. */
  {
    name: 'IDR3', offset: 0x0c, size: 4, access: 'ro',
    fields: [
      ['HAD', 2], ['PBHA', 3], ['XNX', 4], ['PPS', 5], ['MPAM', 7], ['FWB', 8], ['STT', 9], ['RIL', 10], ['BBML', 12, 11], ['E0PD', 13],
      ['PTWNNC', 14], ['DPT', 15],
    ],
  },
  { name: 'IDR4', offset: 0x10, size: 4, access: 'ro' },
  /** §6.3.6 SMMU_IDR5. */
  {
    name: 'IDR5', offset: 0x14, size: 4, access: 'ro',
    fields: [['OAS', 2, 0], ['GRAN4K', 4], ['GRAN16K', 5], ['GRAN64K', 6], ['VAX', 11, 10], ['STALL_MAX', 31, 16]],
  },
  { name: 'IIDR', offset: 0x18, size: 4, access: 'ro', fields: [['IMPLEMENTER', 11, 0], ['REVISION', 15, 12], ['VARIANT', 19, 16], ['PRODUCTID', 31, 20]] },
  { name: 'AIDR', offset: 0x1c, size: 4, access: 'ro', fields: [['ARCHMINORREV', 3, 0], ['ARCHMAJORREV', 7, 4]] },
  /**
   * PRIQEN enables the PRI queue (§8); ATSCHK selects whether ATS Translated
   * transactions are checked against STE.EATS (1, "safe") or pass without a
   * Stream table lookup (0, "fast").
   */
  { name: 'CR0', offset: 0x20, size: 4, fields: CR0_FIELDS },
  { name: 'CR0ACK', offset: 0x24, size: 4, access: 'ro', fields: CR0_FIELDS },
  /** §6.3.11 SMMU_CR1: table/queue access attributes (stored, no effect on a coherent model). */
  {
    name: 'CR1', offset: 0x28, size: 4,
    fields: [['QUEUE_IC', 1, 0], ['QUEUE_OC', 3, 2], ['QUEUE_SH', 5, 4], ['TABLE_IC', 7, 6], ['TABLE_OC', 9, 8], ['TABLE_SH', 11, 10]],
  },
  /** §6.3.12 SMMU_CR2: E2H is RES0 (IDR0.Hyp = 0); REC_CFG_ATS is not implemented (SMMUv3.2 model). */
  { name: 'CR2', offset: 0x2c, size: 4, fields: [['E2H', 0, 0, 'ro'], ['RECINVSID', 1], ['PTM', 2]] },
  { name: 'STATUSR', offset: 0x40, size: 4, access: 'ro', fields: [['DORMANT', 0]] },
  /** §6.3.14 SMMU_GBPA: written with UPDATE = 1, which the SMMU clears when the attributes apply. */
  {
    name: 'GBPA', offset: 0x44, size: 4,
    fields: [['MEMATTR', 3, 0], ['MTCFG', 4], ['ALLOCCFG', 11, 8], ['SHCFG', 13, 12], ['PRIVCFG', 17, 16], ['INSTCFG', 19, 18], ['ABORT', 20], ['UPDATE', 31]],
  },
  { name: 'AGBPA', offset: 0x48, size: 4, access: 'ro' },
  { name: 'IRQ_CTRL', offset: 0x50, size: 4, fields: IRQ_CTRL_FIELDS },
  { name: 'IRQ_CTRLACK', offset: 0x54, size: 4, access: 'ro', fields: IRQ_CTRL_FIELDS },
  { name: 'GERROR', offset: 0x60, size: 4, access: 'ro', fields: GERROR_FIELDS },
  { name: 'GERRORN', offset: 0x64, size: 4, fields: GERROR_FIELDS },
  { name: 'GERROR_IRQ_CFG0', offset: 0x68, size: 8, fields: IRQ_CFG0_FIELDS },
  { name: 'GERROR_IRQ_CFG1', offset: 0x70, size: 4, fields: IRQ_CFG1_FIELDS },
  { name: 'GERROR_IRQ_CFG2', offset: 0x74, size: 4, fields: IRQ_CFG2_FIELDS },
  /** §6.3.24 SMMU_STRTAB_BASE, §6.3.25 SMMU_STRTAB_BASE_CFG. */
  { name: 'STRTAB_BASE', offset: 0x80, size: 8, fields: [['ADDR', 55, 6], ['RA', 62]] },
  { name: 'STRTAB_BASE_CFG', offset: 0x88, size: 4, fields: [['LOG2SIZE', 5, 0], ['SPLIT', 10, 6], ['FMT', 17, 16]] },
  /** §6.3.26 SMMU_CMDQ_BASE; EVENTQ_BASE and PRIQ_BASE are the same with WA for RA. */
  { name: 'CMDQ_BASE', offset: 0x90, size: 8, fields: [['LOG2SIZE', 4, 0], ['ADDR', 55, 5], ['RA', 62]] },
  { name: 'CMDQ_PROD', offset: 0x98, size: 4, fields: [['WR', 19, 0]] },
  { name: 'CMDQ_CONS', offset: 0x9c, size: 4, fields: [['RD', 19, 0], ['ERR', 30, 24]] },
  { name: 'EVENTQ_BASE', offset: 0xa0, size: 8, fields: [['LOG2SIZE', 4, 0], ['ADDR', 55, 5], ['WA', 62]] },
  { name: 'EVENTQ_IRQ_CFG0', offset: 0xb0, size: 8, fields: IRQ_CFG0_FIELDS },
  { name: 'EVENTQ_IRQ_CFG1', offset: 0xb8, size: 4, fields: IRQ_CFG1_FIELDS },
  { name: 'EVENTQ_IRQ_CFG2', offset: 0xbc, size: 4, fields: IRQ_CFG2_FIELDS },
  { name: 'PRIQ_BASE', offset: 0xc0, size: 8, fields: [['LOG2SIZE', 4, 0], ['ADDR', 55, 5], ['WA', 62]] },
  { name: 'PRIQ_IRQ_CFG0', offset: 0xd0, size: 8, fields: IRQ_CFG0_FIELDS },
  { name: 'PRIQ_IRQ_CFG1', offset: 0xd8, size: 4, fields: IRQ_CFG1_FIELDS },
  { name: 'PRIQ_IRQ_CFG2', offset: 0xdc, size: 4, fields: IRQ_CFG2_FIELDS },
  // Page 1 (§6.2.2): the queue indexes the SMMU produces into or consumes from.
  { name: 'EVENTQ_PROD', offset: 0x100a8, size: 4, fields: OUT_PROD_FIELDS },
  { name: 'EVENTQ_CONS', offset: 0x100ac, size: 4, fields: OUT_CONS_FIELDS },
  { name: 'PRIQ_PROD', offset: 0x100c8, size: 4, fields: OUT_PROD_FIELDS },
  { name: 'PRIQ_CONS', offset: 0x100cc, size: 4, fields: OUT_CONS_FIELDS },
]);

export type SmmuRegMap = TableRegMap<typeof SMMU_REGS>;
export type SmmuRegName = RegName<SmmuRegMap>;

/** Register offsets (§6.2.1 Page 0, §6.2.2 Page 1), from the table. */
export const SMMU_REG = SMMU_REGS.offsets();

/**
 * §6.2.1: Page 0 offsets 0xA8/0xAC/0xC8/0xCC are "optional alias of
 * SMMU_{EVENTQ,PRIQ}_{PROD,CONS}, otherwise RAZ/WI". This model implements the
 * alias (so a driver limited to Page 0 works too).
 */
export const SMMU_PAGE0_ALIASES: Readonly<Record<number, number>> = Object.freeze({
  0xa8: SMMU_REG.EVENTQ_PROD, 0xac: SMMU_REG.EVENTQ_CONS, 0xc8: SMMU_REG.PRIQ_PROD, 0xcc: SMMU_REG.PRIQ_CONS,
});

/* ---- Bit masks a driver writes and polls, from the table ---- */

export const CR0 = SMMU_REGS.masks('CR0');
export const CR2 = SMMU_REGS.masks('CR2');
export const IRQ_CTRL = SMMU_REGS.masks('IRQ_CTRL');
export const GBPA = SMMU_REGS.masks('GBPA');
export const GERROR = SMMU_REGS.masks('GERROR');
export type GerrorName = keyof typeof GERROR;
/** GBPA.SHCFG: use the incoming shareability (§6.3.14). */
export const SHCFG_INCOMING = 0b01;
/** §6.3.25 STRTAB_BASE_CFG.FMT. */
export const STRTAB_FMT_LINEAR = 0;
export const STRTAB_FMT_2LVL = 1;
/** §7.1 CMDQ_CONS.ERR codes. */
export const CERROR = { NONE: 0, ILL: 1, ABT: 2, ATC_INV_SYNC: 3 } as const;
/** CMD_PRI_RESP.Resp (§4.6.1): Deny (PCIe Invalid Request), Fail (Response Failure), Success. */
export const PRI_RESP = { DENY: 0, FAIL: 1, SUCCESS: 2 } as const;
/** CMD_ATC_INV.Size that invalidates the whole address space (2^52 pages). */
export const ATC_INV_SIZE_ALL = 52;
/** EVENTQ_PROD.OVFLG / EVENTQ_CONS.OVACKFLG (§7.4), PRIQ_PROD.OVFLG / PRIQ_CONS.OVACKFLG (§8.2). */
export const Q_OVF = SMMU_REGS.mask('EVENTQ_PROD', 'OVFLG');
/** IDR5.OAS / CD.IPS / STE.S2PS encodings → bits. */
export const OAS_BITS: readonly number[] = Object.freeze([32, 36, 40, 42, 44, 48, 52]);
