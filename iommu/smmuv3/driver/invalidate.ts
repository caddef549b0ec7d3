/**
 * Building invalidation commands (Linux arm_smmu_tlb_inv_range_cmd,
 * arm_smmu_atc_inv_to_cmd): TLBI by address as range commands (§4.4.1.1,
 * with RIL) or one per page, and CMD_ATC_INV covering a range (§4.5.1).
 */
import { encodeCommand, type CmdValues } from '../cmd.ts';
import { ATC_INV_SIZE_ALL } from '../regs.ts';

/** Linux CMDQ_MAX_TLBI_OPS: beyond this many pages without range invalidation, invalidate the whole ASID/VMID. */
const MAX_TLBI_OPS = 512;
const PAGE = 4096;

/** The tag of an address-based TLBI: ASID (TLBI_NH_VA) or VMID (TLBI_S2_IPA), and the leaf hint. */
export interface TlbiTag {
  readonly ASID?: number;
  readonly VMID?: number;
  readonly Leaf: number;
}

/**
 * One address-based TLBI's fields. Built as one fixed-shape literal: an
 * object spread here cost ~4 us per command (a dictionary object per
 * unmapped page), most of VFIO UNMAP_DMA's time at 100k single-page mappings.
 */
function tlbiFields(tag: TlbiTag, page: number, tg: number, scale: number, num: number, ttl: number): CmdValues<'TLBI_NH_VA'> & CmdValues<'TLBI_S2_IPA'> {
  // The tag field the command lacks stays undefined, which encodeLayout skips.
  return { ASID: tag.ASID, VMID: tag.VMID, Leaf: tag.Leaf, Address: page, TG: tg, SCALE: scale, NUM: num, TTL: ttl };
}

/**
 * TLBI_NH_VA / TLBI_S2_IPA commands over [iova, iova+size), or null when the
 * whole ASID/VMID should be invalidated instead.
 */
export function tlbiRangeCommands(
  op: 'TLBI_NH_VA' | 'TLBI_S2_IPA',
  base: TlbiTag,
  iova: number,
  size: number,
  granule: number,
  leaf: boolean,
  ril: boolean,
): Uint32Array[] | null {
  let pages = Math.ceil(size / PAGE);
  const cmds: Uint32Array[] = [];
  if (pages <= 0) return cmds;
  if (!ril) {
    if (pages > MAX_TLBI_OPS) return null;
    for (let i = 0; i < pages; i++) cmds.push(encodeCommand(op, tlbiFields(base, iova / PAGE + i, 0, 0, 0, 0)));
    return cmds;
  }
  // §4.4.1.1: TG=4K with NUM = SCALE = TTL = 0 is reserved. Leaf invalidations carry the
  // level of the leaves as TTL (4K: 3, 2M: 2, 1G: 1); otherwise round a lone page up to two.
  const ttl = leaf ? 4 - Math.round((Math.log2(Math.max(granule, PAGE)) - 3) / 9) : 0;
  if (ttl === 0 && pages % 32 === 1) pages++;
  // Each command covers NUM+1 blocks of 2^SCALE pages; the odd part of the count goes first.
  let left = pages;
  let addr = iova;
  while (left > 0) {
    const scale = ctz(left);
    const num = Math.floor(left / 2 ** scale) % 32;
    cmds.push(encodeCommand(op, tlbiFields(base, addr / PAGE, 1, scale, num - 1, ttl)));
    addr += num * 2 ** scale * PAGE;
    left -= num * 2 ** scale;
  }
  return cmds;
}

/**
 * CMD_ATC_INV for StreamID `sid`, PASID `ssid` (-1: none, every PASID's
 * entries) over [iova, iova+size); size 0 means everything. An ATS
 * Invalidation Request covers a power-of-two number of pages aligned to its
 * size, so the range is rounded out to the smallest such span (one command,
 * over-invalidating, as Linux does).
 */
export function atcInvCommand(sid: number, ssid: number, iova: number, size: number): Uint32Array {
  const ssv = ssid >= 0 ? 1 : 0;
  const substream = Math.max(0, ssid);
  if (size <= 0) return encodeCommand('ATC_INV', { StreamID: sid, SSV: ssv, SubstreamID: substream, Size: ATC_INV_SIZE_ALL });
  let start = Math.floor(iova / PAGE);
  const end = Math.floor((iova + size - 1) / PAGE);
  // fls(start ^ end): the page-number bits from the highest one that differs down (exact beyond 32 bits).
  let log2 = 0;
  while (Math.floor(start / 2 ** log2) !== Math.floor(end / 2 ** log2)) log2++;
  start -= start % 2 ** log2;
  return encodeCommand('ATC_INV', { StreamID: sid, SSV: ssv, SubstreamID: substream, Address: start, Size: log2 });
}

/** Trailing zero bits of a positive integer (exact beyond 32 bits). */
function ctz(n: number): number {
  let c = 0;
  while (n > 0 && n % 2 === 0) {
    n /= 2;
    c++;
  }
  return c;
}
