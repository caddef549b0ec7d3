/**
 * VT-d remapping-unit registers (VT-d spec §10.4 "Register Descriptions",
 * revision 3.x numbering; later revisions renumber the chapter), declared
 * once as a register table: the shared "header" of the hardware model and
 * of any driver. Each register's fields are `[name, msb, lsb?, access?]`
 * with bits numbered across the whole register as the spec draws them; a
 * field may cross bit 32 of a 64-bit register (the register file reads it
 * exactly), so one declaration serves the model's RegisterFile, decoding
 * and encoding of whole values, and the masks a driver writes.
 */
import { defineLayout, type FieldSpec, type Layout } from '../../src/hw/layout.ts';
import { defineRegisters, RegisterTable, type RegName, type TableRegMap } from '../../src/hw/registers.ts';

/** Offset of the IOTLB registers (IVA at +0, IOTLB at +8); ECAP.IRO = IOTLB_REG_OFFSET / 16. */
export const IOTLB_REG_OFFSET = 0x0f0;
/** Offset of the first fault recording register (16 bytes each); CAP.FRO = FRCD_REG_OFFSET / 16. */
export const FRCD_REG_OFFSET = 0x220;
/** Size of the register window (one 4 KiB page). */
export const VTD_MMIO_SIZE = 0x1000;
/** Most fault recording registers that fit in the page above FRCD_REG_OFFSET and that we allow. */
export const MAX_FAULT_RECORDS = 64;

const IM_IP = [['IP', 30, 30, 'ro'], ['IM', 31, 31, 'rw']] as const;
const EVENT_DATA = [['IMD', 15, 0]] as const;
const EVENT_ADDR = [['MA', 31, 2]] as const;
const EVENT_UADDR = [['MUA', 31, 0]] as const;

/** The fixed registers in offset order (§10.4.1 - §10.4.38). */
export const VTD_REGS = defineRegisters('vtd', [
  /** §10.4.1 Version */
  { name: 'VER', offset: 0x000, size: 4, access: 'ro', fields: [['MIN', 3, 0], ['MAX', 7, 4]], reset: 0x30 },
  /** §10.4.2 Capability (value filled from the model's options) */
  {
    name: 'CAP', offset: 0x008, size: 8, access: 'ro',
    fields: [
      ['ND', 2, 0], ['AFL', 3], ['RWBF', 4], ['PLMR', 5], ['PHMR', 6], ['CM', 7], ['SAGAW', 12, 8], ['MGAW', 21, 16],
      ['ZLR', 22], ['FRO', 33, 24], ['SLLPS', 37, 34], ['PSI', 39], ['NFR', 47, 40], ['MAMV', 53, 48], ['DWD', 54],
      ['DRD', 55], ['FL1GP', 56], ['PI', 59], ['FL5LP', 60], ['ECMDS', 61], ['ESIRTPS', 62], ['ESRTPS', 63],
    ],
  },
  /** §10.4.3 Extended Capability */
  {
    name: 'ECAP', offset: 0x010, size: 8, access: 'ro',
    fields: [
      ['C', 0], ['QI', 1], ['DT', 2], ['IR', 3], ['EIM', 4], ['PT', 6], ['SC', 7], ['IRO', 17, 8], ['MHMV', 23, 20],
      ['MTS', 25], ['NEST', 26], ['PRS', 29], ['ERS', 30], ['SRS', 31], ['NWFS', 33], ['EAFS', 34], ['PSS', 39, 35],
      ['PASID', 40], ['DIT', 41], ['PDS', 42], ['SMTS', 43], ['VCS', 44], ['SLADS', 45], ['SLTS', 46], ['FLTS', 47],
      ['SMPWCS', 48], ['RPS', 49], ['ADMS', 52], ['RPRIVS', 53],
    ],
  },
  /** §10.4.4 Global Command: write-only command bits */
  {
    name: 'GCMD', offset: 0x018, size: 4, access: 'wo',
    fields: [['CFI', 23], ['SIRTP', 24], ['IRE', 25], ['QIE', 26], ['WBF', 27], ['EAFL', 28], ['SFL', 29], ['SRTP', 30], ['TE', 31]],
  },
  /** §10.4.5 Global Status */
  {
    name: 'GSTS', offset: 0x01c, size: 4, access: 'ro',
    fields: [['CFIS', 23], ['IRTPS', 24], ['IRES', 25], ['QIES', 26], ['WBFS', 27], ['AFLS', 28], ['FLS', 29], ['RTPS', 30], ['TES', 31]],
  },
  /** §10.4.6 Root Table Address; TTM 00 legacy, 01 scalable, 10 abort-DMA (needs ADMS), 11 reserved */
  { name: 'RTADDR', offset: 0x020, size: 8, fields: [['TTM', 11, 10], ['RTA', 63, 12]] },
  /** §10.4.7 Context Command (register-based context-cache invalidation) */
  {
    name: 'CCMD', offset: 0x028, size: 8,
    fields: [['DID', 15, 0], ['SID', 31, 16], ['FM', 33, 32], ['CAIG', 60, 59, 'ro'], ['CIRG', 62, 61], ['ICC', 63]],
  },
  /** §10.4.9 Fault Status */
  {
    name: 'FSTS', offset: 0x034, size: 4,
    fields: [['PFO', 0, 0, 'w1c'], ['PPF', 1, 1, 'ro'], ['IQE', 4, 4, 'w1c'], ['ICE', 5, 5, 'w1c'], ['ITE', 6, 6, 'w1c'], ['FRI', 15, 8, 'ro']],
  },
  /** §10.4.10 - §10.4.13 Fault Event Control / Data / Address / Upper Address */
  { name: 'FECTL', offset: 0x038, size: 4, fields: IM_IP, reset: 0x8000_0000 },
  { name: 'FEDATA', offset: 0x03c, size: 4, fields: EVENT_DATA },
  { name: 'FEADDR', offset: 0x040, size: 4, fields: EVENT_ADDR },
  { name: 'FEUADDR', offset: 0x044, size: 4, fields: EVENT_UADDR },
  /** §10.4.15 Advanced Fault Log (CAP.AFL = 0: reads as zero) */
  { name: 'AFLOG', offset: 0x058, size: 8, access: 'ro', fields: [['FLS', 11, 9], ['FLA', 63, 12]] },
  /** §10.4.16 Protected Memory Enable (no protected regions: PRS follows EPM) */
  { name: 'PMEN', offset: 0x064, size: 4, fields: [['PRS', 0, 0, 'ro'], ['EPM', 31]] },
  /** §10.4.21 - §10.4.29 Invalidation Queue Head / Tail / Address, Completion Status, Event registers, Error Record */
  { name: 'IQH', offset: 0x080, size: 8, access: 'ro', fields: [['QH', 18, 4]] },
  { name: 'IQT', offset: 0x088, size: 8, fields: [['QT', 18, 4]] },
  { name: 'IQA', offset: 0x090, size: 8, fields: [['QS', 2, 0], ['DW', 11], ['IQA', 63, 12]] },
  { name: 'ICS', offset: 0x09c, size: 4, fields: [['IWC', 0, 0, 'w1c']] },
  { name: 'IECTL', offset: 0x0a0, size: 4, fields: IM_IP, reset: 0x8000_0000 },
  { name: 'IEDATA', offset: 0x0a4, size: 4, fields: EVENT_DATA },
  { name: 'IEADDR', offset: 0x0a8, size: 4, fields: EVENT_ADDR },
  { name: 'IEUADDR', offset: 0x0ac, size: 4, fields: EVENT_UADDR },
  { name: 'IQERCD', offset: 0x0b0, size: 8, access: 'ro', fields: [['IQEI', 3, 0], ['ITESID', 47, 32], ['ICESID', 63, 48]] },
  /**
   * §10.4.31 - §10.4.38 Page Request Queue Head / Tail / Address, Status, Event registers. The
   * unit advances PQT; software may write it too, to reset an empty queue (Linux writes 0 at init).
   */
  { name: 'PQH', offset: 0x0c0, size: 8, fields: [['PQH', 18, 5]] },
  { name: 'PQT', offset: 0x0c8, size: 8, fields: [['PQT', 18, 5]] },
  { name: 'PQA', offset: 0x0d0, size: 8, fields: [['PQS', 2, 0], ['PQA', 63, 12]] },
  { name: 'PRS', offset: 0x0dc, size: 4, fields: [['PPR', 0, 0, 'w1c'], ['PRO', 1, 1, 'w1c']] },
  { name: 'PECTL', offset: 0x0e0, size: 4, fields: IM_IP, reset: 0x8000_0000 },
  { name: 'PEDATA', offset: 0x0e4, size: 4, fields: EVENT_DATA },
  { name: 'PEADDR', offset: 0x0e8, size: 4, fields: EVENT_ADDR },
  { name: 'PEUADDR', offset: 0x0ec, size: 4, fields: EVENT_UADDR },
  /** §10.4.8 IOTLB registers: Invalidate Address (IVA) and IOTLB Invalidate, at ECAP.IRO * 16 */
  { name: 'IVA', offset: IOTLB_REG_OFFSET, size: 8, fields: [['AM', 5, 0], ['IH', 6], ['ADDR', 63, 12]] },
  {
    name: 'IOTLB', offset: IOTLB_REG_OFFSET + 8, size: 8,
    fields: [['DID', 47, 32], ['DW', 48], ['DR', 49], ['IAIG', 58, 57, 'ro'], ['IIRG', 61, 60], ['IVT', 63]],
  },
]);

/**
 * §10.4.14 Fault Recording register (128 bits, at CAP.FRO * 16 + 16 * i).
 * T1:T2 (bits 126, 92) give the request type: 00 write, 10 read, 01 page
 * request, 11 atomic; older revisions called bit 126 alone T (1 = read).
 */
const FRCD_FIELDS = [
  ['FI', 63, 12, 'ro'], ['SID', 79, 64, 'ro'], ['T2', 92, 92, 'ro'], ['PRIV', 93, 93, 'ro'], ['EXE', 94, 94, 'ro'],
  ['PP', 95, 95, 'ro'], ['FR', 103, 96, 'ro'], ['PV', 123, 104, 'ro'], ['AT', 125, 124, 'ro'], ['T1', 126, 126, 'ro'],
  ['F', 127, 127, 'w1c'],
] as const;
type FrcdField = (typeof FRCD_FIELDS)[number][0];
/** The whole fault record as one layout (for decoding the four dwords a driver reads). */
export const VTD_FRCD: Layout<FrcdField> = defineLayout('FRCD', 16, FRCD_FIELDS);

/** A fault record is two 64-bit registers: its fields below bit 64, and those above (numbered from bit 64). */
const FRCD_LO_FIELDS = FRCD_FIELDS.filter(([, msb]) => msb < 64) as readonly FieldSpec<'FI'>[];
const FRCD_HI_FIELDS = FRCD_FIELDS.filter(([, msb]) => msb >= 64).map(
  ([n, msb, lsb, acc]) => [n, msb - 64, lsb - 64, acc] as const,
) as readonly FieldSpec<Exclude<FrcdField, 'FI'>>[];

export type FrcdLoName = `FRCD${number}_LO`;
export type FrcdHiName = `FRCD${number}_HI`;
type FrcdRegMap = { readonly [K in FrcdLoName]: 'FI' } & { readonly [K in FrcdHiName]: Exclude<FrcdField, 'FI'> };

export function frcdOffset(i: number): number {
  return FRCD_REG_OFFSET + 16 * i;
}

/** Tables of n fault recording registers, made once per n (a register file built from one shares its shape). */
const frcdTables = new Map<number, RegisterTable<FrcdRegMap>>();

/** Fault recording registers 0 .. n-1, each as its two 64-bit halves FRCDi_LO and FRCDi_HI. */
export function frcdRegisters(n: number): RegisterTable<FrcdRegMap> {
  let t = frcdTables.get(n);
  if (t === undefined) frcdTables.set(n, (t = buildFrcdRegisters(n)));
  return t;
}

function buildFrcdRegisters(n: number): RegisterTable<FrcdRegMap> {
  const specs = [];
  for (let i = 0; i < n; i++) {
    specs.push({ name: `FRCD${i}_LO`, offset: frcdOffset(i), size: 8, fields: FRCD_LO_FIELDS } as const);
    specs.push({ name: `FRCD${i}_HI`, offset: frcdOffset(i) + 8, size: 8, fields: FRCD_HI_FIELDS } as const);
  }
  return new RegisterTable<FrcdRegMap>('vtd-frcd', specs);
}

/** Every register name of a unit, field names typed per register. */
export type VtdRegMap = TableRegMap<typeof VTD_REGS> & FrcdRegMap;
export type VtdRegName = RegName<VtdRegMap>;

/** Byte offset of a fixed register by name. */
export const VTD_REG = VTD_REGS.offsets();

/* GCMD / GSTS bits (§10.4.4, §10.4.5): software sets one command bit at a time, hardware mirrors it in GSTS. */
export const GCMD_TE = VTD_REGS.mask('GCMD', 'TE');
export const GCMD_SRTP = VTD_REGS.mask('GCMD', 'SRTP');
export const GCMD_SFL = VTD_REGS.mask('GCMD', 'SFL');
export const GCMD_EAFL = VTD_REGS.mask('GCMD', 'EAFL');
export const GCMD_WBF = VTD_REGS.mask('GCMD', 'WBF');
export const GCMD_QIE = VTD_REGS.mask('GCMD', 'QIE');
export const GCMD_IRE = VTD_REGS.mask('GCMD', 'IRE');
export const GCMD_SIRTP = VTD_REGS.mask('GCMD', 'SIRTP');
export const GCMD_CFI = VTD_REGS.mask('GCMD', 'CFI');
export const GSTS_TES = VTD_REGS.mask('GSTS', 'TES');
export const GSTS_RTPS = VTD_REGS.mask('GSTS', 'RTPS');
export const GSTS_QIES = VTD_REGS.mask('GSTS', 'QIES');
/** GSTS one-shot status bits (RTPS, FLS, WBFS, IRTPS): software masks them out of the value it writes back to GCMD (§10.4.4). */
export const GSTS_ONE_SHOT = (GSTS_RTPS | VTD_REGS.mask('GSTS', 'FLS') | VTD_REGS.mask('GSTS', 'WBFS') | VTD_REGS.mask('GSTS', 'IRTPS')) >>> 0;
export const FSTS_PFO = VTD_REGS.mask('FSTS', 'PFO');
export const FSTS_PPF = VTD_REGS.mask('FSTS', 'PPF');
export const FSTS_IQE = VTD_REGS.mask('FSTS', 'IQE');
export const FSTS_ICE = VTD_REGS.mask('FSTS', 'ICE');
export const FSTS_ITE = VTD_REGS.mask('FSTS', 'ITE');
/** PRS (§10.4.34): Pending Page Request, Page Request Overflow (both RW1C). */
export const PRS_PPR = VTD_REGS.mask('PRS', 'PPR');
export const PRS_PRO = VTD_REGS.mask('PRS', 'PRO');
export const CTL_IM = VTD_REGS.mask('FECTL', 'IM');
export const CTL_IP = VTD_REGS.mask('FECTL', 'IP');
/** FRCD high dword (offset +12): F is bit 31 there (bit 127 of the record). */
export const FRCD_F_DWORD = VTD_FRCD.fields.F.mask;

/** RTADDR.TTM values (§10.4.6). */
export const TTM_LEGACY = 0;
export const TTM_SCALABLE = 1;
export const TTM_ABORT_DMA = 2;

/** IQERCD.IQEI values (§10.4.29): why IQE was set. */
export const IQEI = {
  INFO_NOT_AVAILABLE: 0,
  INVALID_TAIL: 1,
  FETCH_ERROR: 2,
  INVALID_TYPE: 3,
  RESERVED_FIELD: 4,
  INVALID_WIDTH: 5,
  TAIL_MISALIGNED: 6,
  INVALID_TTM: 7,
} as const;

/** What the model implements; CAP/ECAP are encoded from it (see vtdCapRegisters). */
export interface VtdCaps {
  /** Host address width: table pointers and outputs at or above 2^haw are reserved / faulting. */
  haw: number;
  /** 5-level tables (SAGAW bit 3, FL5LP). */
  fiveLevel: boolean;
  nfr: number;
  /** CAP.MAMV: largest address mask of page-selective invalidation. */
  mamv: number;
  /** ECAP.PSS + 1: PASID width in bits. */
  pasidBits: number;
  /** ECAP.DT: device-TLBs (ATS translation requests, translated requests, device-TLB invalidation). */
  deviceTlb: boolean;
  /** ECAP.PRS: the page request queue; also ECAP.PDS (page requests reach the queue at once, so drain is trivial). */
  pageRequests: boolean;
  /** ECAP.SC: snoop control (SNP in legacy second-stage leaves; what Linux's enforce_cache_coherency needs). */
  snoopControl: boolean;
}

/** SAGAW bits: 1 = 39-bit 3-level, 2 = 48-bit 4-level, 3 = 57-bit 5-level. */
export function sagawOf(caps: VtdCaps): number {
  return caps.fiveLevel ? 0b01110 : 0b00110;
}

/** Does SAGAW (one bit per AW encoding) include `aw`? */
export function sagawHas(sagaw: number, aw: number): boolean {
  return aw >= 0 && aw < 5 && Math.floor(sagaw / 2 ** aw) % 2 === 1;
}

/** AW/SAGAW encoding → levels, or 0 when the encoding is not supported by this unit. */
export function levelsForAw(caps: VtdCaps, aw: number): number {
  if (aw < 1 || aw > 3 || !sagawHas(sagawOf(caps), aw)) return 0;
  return aw + 2;
}

/** CAP.SLLPS bits: second-stage 2 MiB and 1 GiB pages. */
export const SLLPS_2M = 0b01;
export const SLLPS_1G = 0b10;
/** The AW encoding of 48-bit (4-level) tables. */
export const AW_48 = 2;

/** CAP and ECAP values as [lo, hi] words (what the unit advertises; §10.4.2, §10.4.3). */
export function vtdCapRegisters(caps: VtdCaps): { cap: [number, number]; ecap: [number, number] } {
  const cap = VTD_REGS.encode('CAP', {
    ND: 6, // 64K domain IDs
    SAGAW: sagawOf(caps),
    MGAW: (caps.fiveLevel ? 57 : 48) - 1,
    FRO: FRCD_REG_OFFSET / 16,
    SLLPS: SLLPS_2M | SLLPS_1G,
    PSI: 1,
    NFR: caps.nfr - 1,
    MAMV: caps.mamv,
    DWD: 1,
    DRD: 1,
    FL1GP: 1,
    FL5LP: caps.fiveLevel ? 1 : 0,
  });
  const ecap = VTD_REGS.encode('ECAP', {
    C: 1, // page walks are coherent
    QI: 1,
    DT: caps.deviceTlb ? 1 : 0,
    PT: 1,
    SC: caps.snoopControl ? 1 : 0,
    IRO: IOTLB_REG_OFFSET / 16,
    NEST: 1,
    PRS: caps.pageRequests ? 1 : 0,
    ERS: 1,
    SRS: 1,
    EAFS: 1,
    PSS: caps.pasidBits - 1,
    PASID: 1,
    PDS: caps.pageRequests ? 1 : 0,
    SMTS: 1,
    SLADS: 1,
    SLTS: 1,
    FLTS: 1,
    SMPWCS: 1,
    RPS: 1,
    RPRIVS: 1,
  });
  return { cap: [cap[0]!, cap[1]!], ecap: [ecap[0]!, ecap[1]!] };
}

/** Every register of a unit with `caps`: the fixed ones with CAP/ECAP filled in, and its fault recording registers. */
export function vtdRegisters(caps: VtdCaps): RegisterTable<VtdRegMap> {
  const { cap, ecap } = vtdCapRegisters(caps);
  return VTD_REGS.withResets({ CAP: cap, ECAP: ecap }).with(frcdRegisters(caps.nfr));
}
