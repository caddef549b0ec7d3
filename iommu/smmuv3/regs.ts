/**
 * The SMMUv3 programming interface as data (Arm IHI 0070, §6.2 "Register
 * overview", §6.3 "Register formats"): Page 0 at offset 0 and Page 1 at
 * 0x10000, each register with its offset and fields. The model builds its
 * RegisterFile from this table and a host driver imports the same table, the
 * way both would share a C header.
 */
import { field, type FieldAccess, type FieldDef, type RegisterDef } from '../../src/hw/register-file.ts';

/** Page 0 + Page 1 (§6.2). */
export const SMMU_PAGE_SIZE = 0x1_0000;
export const SMMU_REGION_SIZE = 0x2_0000;

/** Register offsets (§6.2.1 Page 0, §6.2.2 Page 1). */
export const SMMU_REG = {
  IDR0: 0x00, IDR1: 0x04, IDR2: 0x08, IDR3: 0x0c, IDR4: 0x10, IDR5: 0x14, IIDR: 0x18, AIDR: 0x1c,
  CR0: 0x20, CR0ACK: 0x24, CR1: 0x28, CR2: 0x2c, STATUSR: 0x40, GBPA: 0x44, AGBPA: 0x48,
  IRQ_CTRL: 0x50, IRQ_CTRLACK: 0x54, GERROR: 0x60, GERRORN: 0x64,
  GERROR_IRQ_CFG0: 0x68, GERROR_IRQ_CFG1: 0x70, GERROR_IRQ_CFG2: 0x74,
  STRTAB_BASE: 0x80, STRTAB_BASE_CFG: 0x88,
  CMDQ_BASE: 0x90, CMDQ_PROD: 0x98, CMDQ_CONS: 0x9c,
  EVENTQ_BASE: 0xa0, EVENTQ_IRQ_CFG0: 0xb0, EVENTQ_IRQ_CFG1: 0xb8, EVENTQ_IRQ_CFG2: 0xbc,
  PRIQ_BASE: 0xc0, PRIQ_IRQ_CFG0: 0xd0, PRIQ_IRQ_CFG1: 0xd8, PRIQ_IRQ_CFG2: 0xdc,
  // Page 1 (§6.2.2): the queue indexes the SMMU produces into or consumes from.
  EVENTQ_PROD: 0x100a8, EVENTQ_CONS: 0x100ac, PRIQ_PROD: 0x100c8, PRIQ_CONS: 0x100cc,
} as const;
export type SmmuRegName = keyof typeof SMMU_REG;

/**
 * §6.2.1: Page 0 offsets 0xA8/0xAC/0xC8/0xCC are "optional alias of
 * SMMU_{EVENTQ,PRIQ}_{PROD,CONS}, otherwise RAZ/WI". This model implements the
 * alias (so a driver limited to Page 0 works too).
 */
export const SMMU_PAGE0_ALIASES: Readonly<Record<number, number>> = Object.freeze({
  0xa8: SMMU_REG.EVENTQ_PROD, 0xac: SMMU_REG.EVENTQ_CONS, 0xc8: SMMU_REG.PRIQ_PROD, 0xcc: SMMU_REG.PRIQ_CONS,
});

const ro = (name: string, shift: number, width = 1) => field(name, shift, width, 'ro');
const rw = (name: string, shift: number, width = 1) => field(name, shift, width, 'rw');

/** §6.3.1 SMMU_IDR0. */
const IDR0_FIELDS = [
  ro('S2P', 0), ro('S1P', 1), ro('TTF', 2, 2), ro('COHACC', 4), ro('BTM', 5), ro('HTTU', 6, 2), ro('DORMHINT', 8),
  ro('HYP', 9), ro('ATS', 10), ro('NS1ATS', 11), ro('ASID16', 12), ro('MSI', 13), ro('SEV', 14), ro('ATOS', 15),
  ro('PRI', 16), ro('VMW', 17), ro('VMID16', 18), ro('CD2L', 19), ro('VATOS', 20), ro('TTENDIAN', 21, 2),
  ro('ATSRECERR', 23), ro('STALL_MODEL', 24, 2), ro('TERM_MODEL', 26), ro('ST_LEVEL', 27, 2), ro('RME_IMPL', 30),
];
/** §6.3.2 SMMU_IDR1. */
const IDR1_FIELDS = [
  ro('SIDSIZE', 0, 6), ro('SSIDSIZE', 6, 5), ro('PRIQS', 11, 5), ro('EVENTQS', 16, 5), ro('CMDQS', 21, 5),
  ro('ATTR_PERMS_OVR', 26), ro('ATTR_TYPES_OVR', 27), ro('REL', 28), ro('QUEUES_PRESET', 29), ro('TABLES_PRESET', 30),
  ro('ECMDQ', 31),
];
/** §6.3.4 SMMU_IDR3. */
const IDR3_FIELDS = [
  ro('HAD', 2), ro('PBHA', 3), ro('XNX', 4), ro('PPS', 5), ro('MPAM', 7), ro('FWB', 8), ro('STT', 9), ro('RIL', 10),
  ro('BBML', 11, 2), ro('E0PD', 13), ro('PTWNNC', 14), ro('DPT', 15),
];
/** §6.3.6 SMMU_IDR5. */
const IDR5_FIELDS = [
  ro('OAS', 0, 3), ro('GRAN4K', 4), ro('GRAN16K', 5), ro('GRAN64K', 6), ro('VAX', 10, 2), ro('STALL_MAX', 16, 16),
];
/**
 * §6.3.9 SMMU_CR0 / §6.3.10 SMMU_CR0ACK. VMW and DPT_WALK_EN are RES0 here
 * (IDR0.VMW = 0, IDR3.DPT = 0). PRIQEN enables the PRI queue (§8); ATSCHK
 * selects whether ATS Translated transactions are checked against STE.EATS
 * (1, "safe") or pass without a Stream table lookup (0, "fast").
 */
const cr0Fields = (a: FieldAccess) => [
  field('SMMUEN', 0, 1, a), field('PRIQEN', 1, 1, a), field('EVENTQEN', 2, 1, a), field('CMDQEN', 3, 1, a),
  field('ATSCHK', 4, 1, a),
];
/** §6.3.18 SMMU_GERROR / §6.3.19 SMMU_GERRORN: each error is active while the two bits differ. */
const gerrorFields = (a: FieldAccess) => [
  field('CMDQ_ERR', 0, 1, a), field('EVENTQ_ABT_ERR', 2, 1, a), field('PRIQ_ABT_ERR', 3, 1, a),
  field('MSI_CMDQ_ABT_ERR', 4, 1, a), field('MSI_EVENTQ_ABT_ERR', 5, 1, a), field('MSI_PRIQ_ABT_ERR', 6, 1, a),
  field('MSI_GERROR_ABT_ERR', 7, 1, a), field('SFM_ERR', 8, 1, a), field('CMDQP_ERR', 9, 1, a),
];
const irqCtrlFields = (a: FieldAccess) => [
  field('GERROR_IRQEN', 0, 1, a), field('PRIQ_IRQEN', 1, 1, a), field('EVENTQ_IRQEN', 2, 1, a),
];
/** *_IRQ_CFG0/1/2 (§6.3.21-23 for GERROR; the Event and PRI queue ones are identical). */
const msiCfg = (prefix: string, base: number): RegisterDef[] => [
  { name: `${prefix}_IRQ_CFG0`, offset: base, size: 8, fields: [rw('ADDR', 2, 50)] }, // ADDR[55:52] RES0 above OAS (52)
  { name: `${prefix}_IRQ_CFG1`, offset: base + 8, size: 4, fields: [rw('DATA', 0, 32)] },
  { name: `${prefix}_IRQ_CFG2`, offset: base + 12, size: 4, fields: [rw('MEMATTR', 0, 4), rw('SH', 4, 2)] },
];
/** *Q_BASE (§6.3.26 CMDQ_BASE; EVENTQ/PRIQ_BASE identical with WA for RA). */
const qBase = (name: string, offset: number, hint: string): RegisterDef => ({
  name, offset, size: 8, fields: [rw('LOG2SIZE', 0, 5), rw('ADDR', 5, 51), rw(hint, 62)],
});

/** Every register of the Non-secure programming interface this model implements. */
export const SMMU_REGISTERS: readonly RegisterDef[] = Object.freeze([
  { name: 'IDR0', offset: SMMU_REG.IDR0, size: 4, fields: IDR0_FIELDS },
  { name: 'IDR1', offset: SMMU_REG.IDR1, size: 4, fields: IDR1_FIELDS },
  { name: 'IDR2', offset: SMMU_REG.IDR2, size: 4, fields: [ro('BA_VATOS', 0, 10)] },
  { name: 'IDR3', offset: SMMU_REG.IDR3, size: 4, fields: IDR3_FIELDS },
  { name: 'IDR4', offset: SMMU_REG.IDR4, size: 4, access: 'ro' },
  { name: 'IDR5', offset: SMMU_REG.IDR5, size: 4, fields: IDR5_FIELDS },
  { name: 'IIDR', offset: SMMU_REG.IIDR, size: 4, fields: [ro('IMPLEMENTER', 0, 12), ro('REVISION', 12, 4), ro('VARIANT', 16, 4), ro('PRODUCTID', 20, 12)] },
  { name: 'AIDR', offset: SMMU_REG.AIDR, size: 4, fields: [ro('ARCHMINORREV', 0, 4), ro('ARCHMAJORREV', 4, 4)] },
  { name: 'CR0', offset: SMMU_REG.CR0, size: 4, fields: cr0Fields('rw') },
  { name: 'CR0ACK', offset: SMMU_REG.CR0ACK, size: 4, fields: cr0Fields('ro') },
  // §6.3.11 SMMU_CR1: table/queue access attributes (stored, no effect on a coherent model).
  { name: 'CR1', offset: SMMU_REG.CR1, size: 4, fields: [rw('QUEUE_IC', 0, 2), rw('QUEUE_OC', 2, 2), rw('QUEUE_SH', 4, 2), rw('TABLE_IC', 6, 2), rw('TABLE_OC', 8, 2), rw('TABLE_SH', 10, 2)] },
  // §6.3.12 SMMU_CR2: E2H is RES0 (IDR0.Hyp = 0); REC_CFG_ATS is not implemented (SMMUv3.2 model).
  { name: 'CR2', offset: SMMU_REG.CR2, size: 4, fields: [ro('E2H', 0), rw('RECINVSID', 1), rw('PTM', 2)] },
  { name: 'STATUSR', offset: SMMU_REG.STATUSR, size: 4, fields: [ro('DORMANT', 0)] },
  // §6.3.14 SMMU_GBPA: written with UPDATE = 1, which the SMMU clears when the attributes apply.
  { name: 'GBPA', offset: SMMU_REG.GBPA, size: 4, fields: [rw('MEMATTR', 0, 4), rw('MTCFG', 4), rw('ALLOCCFG', 8, 4), rw('SHCFG', 12, 2), rw('PRIVCFG', 16, 2), rw('INSTCFG', 18, 2), rw('ABORT', 20), rw('UPDATE', 31)] },
  { name: 'AGBPA', offset: SMMU_REG.AGBPA, size: 4, access: 'ro' },
  { name: 'IRQ_CTRL', offset: SMMU_REG.IRQ_CTRL, size: 4, fields: irqCtrlFields('rw') },
  { name: 'IRQ_CTRLACK', offset: SMMU_REG.IRQ_CTRLACK, size: 4, fields: irqCtrlFields('ro') },
  { name: 'GERROR', offset: SMMU_REG.GERROR, size: 4, fields: gerrorFields('ro') },
  { name: 'GERRORN', offset: SMMU_REG.GERRORN, size: 4, fields: gerrorFields('rw') },
  ...msiCfg('GERROR', SMMU_REG.GERROR_IRQ_CFG0),
  // §6.3.24 SMMU_STRTAB_BASE, §6.3.25 SMMU_STRTAB_BASE_CFG.
  { name: 'STRTAB_BASE', offset: SMMU_REG.STRTAB_BASE, size: 8, fields: [rw('ADDR', 6, 50), rw('RA', 62)] },
  { name: 'STRTAB_BASE_CFG', offset: SMMU_REG.STRTAB_BASE_CFG, size: 4, fields: [rw('LOG2SIZE', 0, 6), rw('SPLIT', 6, 5), rw('FMT', 16, 2)] },
  qBase('CMDQ_BASE', SMMU_REG.CMDQ_BASE, 'RA'),
  { name: 'CMDQ_PROD', offset: SMMU_REG.CMDQ_PROD, size: 4, fields: [rw('WR', 0, 20)] },
  { name: 'CMDQ_CONS', offset: SMMU_REG.CMDQ_CONS, size: 4, fields: [rw('RD', 0, 20), rw('ERR', 24, 7)] },
  qBase('EVENTQ_BASE', SMMU_REG.EVENTQ_BASE, 'WA'),
  ...msiCfg('EVENTQ', SMMU_REG.EVENTQ_IRQ_CFG0),
  qBase('PRIQ_BASE', SMMU_REG.PRIQ_BASE, 'WA'),
  ...msiCfg('PRIQ', SMMU_REG.PRIQ_IRQ_CFG0),
  { name: 'EVENTQ_PROD', offset: SMMU_REG.EVENTQ_PROD, size: 4, fields: [rw('WR', 0, 20), rw('OVFLG', 31)] },
  { name: 'EVENTQ_CONS', offset: SMMU_REG.EVENTQ_CONS, size: 4, fields: [rw('RD', 0, 20), rw('OVACKFLG', 31)] },
  { name: 'PRIQ_PROD', offset: SMMU_REG.PRIQ_PROD, size: 4, fields: [rw('WR', 0, 20), rw('OVFLG', 31)] },
  { name: 'PRIQ_CONS', offset: SMMU_REG.PRIQ_CONS, size: 4, fields: [rw('RD', 0, 20), rw('OVACKFLG', 31)] },
]);

/* ---- Bit values a driver writes and polls ---- */

export const CR0 = { SMMUEN: 1, PRIQEN: 2, EVENTQEN: 4, CMDQEN: 8, ATSCHK: 16 } as const;
export const CR2 = { E2H: 1, RECINVSID: 2, PTM: 4 } as const;
export const IRQ_CTRL = { GERROR_IRQEN: 1, PRIQ_IRQEN: 2, EVENTQ_IRQEN: 4 } as const;
export const GBPA = { ABORT: 1 << 20, UPDATE: 0x8000_0000, SHCFG_INCOMING: 1 << 12 } as const;
export const GERROR = {
  CMDQ_ERR: 1 << 0, EVENTQ_ABT_ERR: 1 << 2, PRIQ_ABT_ERR: 1 << 3, MSI_CMDQ_ABT_ERR: 1 << 4,
  MSI_EVENTQ_ABT_ERR: 1 << 5, MSI_PRIQ_ABT_ERR: 1 << 6, MSI_GERROR_ABT_ERR: 1 << 7, SFM_ERR: 1 << 8, CMDQP_ERR: 1 << 9,
} as const;
export type GerrorName = keyof typeof GERROR;
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
export const Q_OVF = 0x8000_0000;
/** IDR5.OAS / CD.IPS / STE.S2PS encodings → bits. */
export const OAS_BITS: readonly number[] = Object.freeze([32, 36, 40, 42, 44, 48, 52]);

/** A register value from field values (fields not named are 0). */
export function packFields(def: RegisterDef, values: Readonly<Record<string, number>>): number {
  let v = 0;
  for (const [name, value] of Object.entries(values)) {
    const f = def.fields?.find((x) => !Array.isArray(x) && (x as FieldDef).name === name) as FieldDef | undefined;
    if (f === undefined) throw new Error(`${def.name} has no field ${name}`);
    v = (v | ((value & (2 ** f.width - 1)) << f.shift)) >>> 0;
  }
  return v;
}

export function registerDef(name: string): RegisterDef {
  const d = SMMU_REGISTERS.find((r) => r.name === name);
  if (d === undefined) throw new Error(`no SMMU register ${name}`);
  return d;
}
