/**
 * Invalidation queue descriptors (VT-d spec §6.5.2), declared as layouts.
 * A descriptor is 128 bits (IQA.DW = 0) or 256 bits (IQA.DW = 1, required
 * in scalable mode); the type is bits 3:0 with bits 11:9 as its high part.
 * Layouts are 256 bits; bits 255:128 are reserved in every descriptor but
 * the page group response (private data), and read as zero with DW = 0.
 */
import { defineLayout, readField, type Layout } from '../../src/hw/layout.ts';

const TYPE = [['TYPE_LO', 3, 0], ['TYPE_HI', 11, 9]] as const;
/** What every descriptor starts with: its 7-bit type, bits 3:0 with bits 11:9 as the high part. */
const DESC_HEADER = defineLayout('INV_DESC', 32, TYPE);

/** §6.5.2.1 Context-cache Invalidate: G 01 global, 10 domain-selective, 11 device-selective (SID/FM). */
export const CC_INV_DESC = defineLayout('CC_INV_DESC', 32, [
  ...TYPE, ['G', 5, 4], ['DID', 31, 16], ['SID', 47, 32], ['FM', 49, 48],
] as const);

/** §6.5.2.2 PASID-cache Invalidate: G 00 domain-selective, 01 PASID-selective, 11 global (10 reserved). */
export const PC_INV_DESC = defineLayout('PC_INV_DESC', 32, [
  ...TYPE, ['G', 5, 4], ['DID', 31, 16], ['PASID', 51, 32],
] as const);

/** §6.5.2.3 IOTLB Invalidate: G 01 global, 10 domain-selective, 11 page-selective-within-domain (ADDR/AM/IH). */
export const IOTLB_INV_DESC = defineLayout('IOTLB_INV_DESC', 32, [
  ...TYPE, ['G', 5, 4], ['DW', 6], ['DR', 7], ['DID', 31, 16], ['AM', 69, 64], ['IH', 70], ['ADDR', 127, 76],
] as const);

/** §6.5.2.4 PASID-based-IOTLB Invalidate: G 10 PASID-selective (non-globals), 11 page-selective-within-PASID. */
export const P_IOTLB_INV_DESC = defineLayout('P_IOTLB_INV_DESC', 32, [
  ...TYPE, ['G', 5, 4], ['DID', 31, 16], ['PASID', 51, 32], ['AM', 69, 64], ['IH', 70], ['ADDR', 127, 76],
] as const);

/**
 * §6.5.2.5 Device-TLB Invalidate (needs ECAP.DT): an ATS invalidation of the
 * device SID (PFSID: its physical function, for VFs), MIP its Max
 * Invalidations Pending (0 = 32). S: the size is encoded in ADDR's low bits
 * (see devTlbRange).
 */
export const DEV_TLB_INV_DESC = defineLayout('DEV_TLB_INV_DESC', 32, [
  ...TYPE, ['PFSID_LO', 15, 12], ['MIP', 20, 16], ['SID', 47, 32], ['PFSID_HI', 63, 52], ['S', 64], ['ADDR', 127, 76],
] as const);

/** §6.5.2.6 PASID-based-Device-TLB Invalidate (needs ECAP.DT). G: global mappings of every PASID. */
export const P_DEV_TLB_INV_DESC = defineLayout('P_DEV_TLB_INV_DESC', 32, [
  ...TYPE, ['MIP', 8, 4], ['PFSID_LO', 15, 12], ['SID', 31, 16], ['PASID', 51, 32], ['PFSID_HI', 63, 52],
  ['G', 64], ['S', 75], ['ADDR', 127, 76],
] as const);

/** §6.5.2.7 Interrupt Entry Cache Invalidate (interrupt remapping: not implemented, always invalid here). */
export const IEC_INV_DESC = defineLayout('IEC_INV_DESC', 32, [
  ...TYPE, ['G', 4], ['IM', 31, 27], ['IIDX', 47, 32],
] as const);

/**
 * §6.5.2.8 Invalidation Wait: SW writes STDATA to the dword at STADDR
 * (address bits 63:2 = STADDR_HI:STADDR_LO), IF sets ICS.IWC and signals the
 * invalidation completion event, FN fences later descriptors, PD drains page
 * requests (needs ECAP.PDS).
 */
export const INV_WAIT_DESC = defineLayout('INV_WAIT_DESC', 32, [
  ...TYPE, ['IF', 4], ['SW', 5], ['FN', 6], ['PD', 7], ['STDATA', 63, 32], ['STADDR_LO', 95, 66], ['STADDR_HI', 127, 96],
] as const);

/** Page group response codes (RC; PCIe PRG Response Code): 0 Success, 1 Invalid Request, 0xF Response Failure. */
export const PGRP_RC_SUCCESS = 0;
export const PGRP_RC_INVALID = 1;
export const PGRP_RC_FAILURE = 0xf;

/**
 * Page Group Response (§7.7, page request handling; needs ECAP.PRS): response code RC
 * to requester RID for page request group PRGI (PASID if PP), private data
 * in bits 255:128 when PDP.
 */
export const PGRP_RESP_DESC = defineLayout('PGRP_RESP_DESC', 32, [
  ...TYPE, ['PP', 4], ['PDP', 5], ['RC', 15, 12], ['RID', 31, 16], ['PASID', 51, 32], ['LPIG', 66], ['PRGI', 75, 67],
  ['PRIV_DATA0', 159, 128], ['PRIV_DATA1', 191, 160], ['PRIV_DATA2', 223, 192], ['PRIV_DATA3', 255, 224],
] as const);

/** Descriptor type codes (§6.5.2). */
export const DESC_CC = 1;
export const DESC_IOTLB = 2;
export const DESC_DEV_TLB = 3;
export const DESC_IEC = 4;
export const DESC_INV_WAIT = 5;
export const DESC_P_IOTLB = 6;
export const DESC_PC = 7;
export const DESC_P_DEV_TLB = 8;
export const DESC_PGRP_RESP = 9;

/** Layout and name of each descriptor type. */
export const DESC_LAYOUTS: Readonly<Record<number, Layout>> = Object.freeze({
  [DESC_CC]: CC_INV_DESC,
  [DESC_IOTLB]: IOTLB_INV_DESC,
  [DESC_DEV_TLB]: DEV_TLB_INV_DESC,
  [DESC_IEC]: IEC_INV_DESC,
  [DESC_INV_WAIT]: INV_WAIT_DESC,
  [DESC_P_IOTLB]: P_IOTLB_INV_DESC,
  [DESC_PC]: PC_INV_DESC,
  [DESC_P_DEV_TLB]: P_DEV_TLB_INV_DESC,
  [DESC_PGRP_RESP]: PGRP_RESP_DESC,
});

/** The same by type in an array (per descriptor executed: a frozen record's integer keys are a dictionary lookup). */
export const DESC_LAYOUT_OF: readonly (Layout | undefined)[] = Array.from({ length: 128 }, (_, t) => DESC_LAYOUTS[t]);

/** The 7-bit type of a descriptor held as u32 words. */
export function descType(words: ArrayLike<number>): number {
  return readField(DESC_HEADER, words, 'TYPE_LO') + readField(DESC_HEADER, words, 'TYPE_HI') * 16;
}

/** The TYPE_LO/TYPE_HI field values of descriptor type `type`. */
export function descTypeFields(type: number): { TYPE_LO: number; TYPE_HI: number } {
  return { TYPE_LO: type % 16, TYPE_HI: Math.floor(type / 16) };
}

/** STADDR of an invalidation wait descriptor as a byte address (bits 63:2; above 2^53 not representable). */
export function waitStatusAddr(words: ArrayLike<number>): number {
  return readField(INV_WAIT_DESC, words, 'STADDR_HI') * 0x1_0000_0000 + readField(INV_WAIT_DESC, words, 'STADDR_LO') * 4;
}

/** Bytes of "everything" in a device-TLB invalidation (every address). */
export const DEVTLB_ALL = 2 ** 64;

/**
 * The range of a device-TLB invalidation (§6.5.2.5, PCIe ATS §10.3.1): with
 * S = 0 the one 4 KiB page ADDR; with S = 1 the size is 4 KiB * 2^(n+1) where
 * n is the number of ones in ADDR from bit 12 up (bit 12 = 0: 8 KiB), the
 * address aligned down to it; ones up to bit 62 mean every address.
 */
export function devTlbRange(page: number, s: boolean): { addr: number; size: number } {
  if (!s) return { addr: page * 4096, size: 4096 };
  let ones = 0;
  let v = page;
  while (v % 2 === 1 && ones < 52) {
    ones++;
    v = (v - 1) / 2;
  }
  if (ones >= 51) return { addr: 0, size: DEVTLB_ALL };
  const span = 2 ** (ones + 1);
  return { addr: (page - (page % span)) * 4096, size: 4096 * span };
}

/** ADDR page number and S for invalidating `size` bytes (4 KiB * 2^n, or DEVTLB_ALL) at `addr` (aligned down). */
export function devTlbAddr(addr: number, size: number): { page: number; s: 0 | 1 } {
  if (size >= DEVTLB_ALL) return { page: 2 ** 51 - 1, s: 1 };
  const pages = Math.max(1, size / 4096);
  const page = Math.floor(addr / 4096);
  if (pages <= 1) return { page, s: 0 };
  return { page: page - (page % pages) + (pages / 2 - 1), s: 1 };
}
