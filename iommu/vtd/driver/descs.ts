/**
 * Invalidation-queue descriptors as the driver builds them (VT-d spec
 * §6.5.2, layouts in ../inv-desc.ts; the field choices follow Linux
 * intel/dmar.c qi_flush_* helpers). All are 256-bit (scalable mode).
 */
import { encodeLayout, setBits, writeField, type Layout } from '../../../src/hw/layout.ts';
import {
  CC_INV_DESC, DESC_CC, DESC_DEV_TLB, DESC_INV_WAIT, DESC_IOTLB, DESC_PC, DESC_PGRP_RESP, DESC_P_DEV_TLB, DESC_P_IOTLB,
  DEV_TLB_INV_DESC, INV_WAIT_DESC, IOTLB_INV_DESC, PC_INV_DESC, PGRP_RESP_DESC, P_DEV_TLB_INV_DESC, P_IOTLB_INV_DESC, descTypeFields, devTlbAddr,
} from '../inv-desc.ts';

/** A descriptor of `layout` with its type and `fields` (a field the descriptor lacks does not compile): the generic encoder. */
export function desc<F extends string>(layout: Layout<F | 'TYPE_LO' | 'TYPE_HI'>, type: number, fields: Partial<Record<F, number>>): Uint32Array {
  const w = encodeLayout<string>(layout, fields);
  const t = descTypeFields(type);
  writeField(layout, w, 'TYPE_LO', t.TYPE_LO);
  writeField(layout, w, 'TYPE_HI', t.TYPE_HI);
  return w;
}

const PGRP = PGRP_RESP_DESC.fields;
const WAIT = INV_WAIT_DESC.fields;

/**
 * The page group response descriptor `qd.pageGroupResponse` gives, field by
 * field into `into` (eight words) without desc()'s literal and name lookups:
 * the driver answers every PRI fault with one.
 */
export function pageGroupResponseDesc(rid: number, pasid: number, prgi: number, lpig: boolean, rc: number, into = new Uint32Array(8)): Uint32Array {
  into.fill(0);
  setBits(into, PGRP.TYPE_LO, DESC_PGRP_RESP % 16);
  setBits(into, PGRP.TYPE_HI, Math.floor(DESC_PGRP_RESP / 16));
  setBits(into, PGRP.RID, rid);
  setBits(into, PGRP.PP, pasid >= 0 ? 1 : 0);
  setBits(into, PGRP.PASID, Math.max(0, pasid));
  setBits(into, PGRP.PRGI, prgi);
  setBits(into, PGRP.LPIG, lpig ? 1 : 0);
  setBits(into, PGRP.RC, rc);
  return into;
}

/** The invalidation wait descriptor `qd.wait` gives, into `into` (eight words): one closes every batch. */
export function waitDesc(data: number, addr: number, pd: boolean, into = new Uint32Array(8)): Uint32Array {
  into.fill(0);
  setBits(into, WAIT.TYPE_LO, DESC_INV_WAIT % 16);
  setBits(into, WAIT.TYPE_HI, Math.floor(DESC_INV_WAIT / 16));
  setBits(into, WAIT.SW, 1);
  setBits(into, WAIT.PD, pd ? 1 : 0);
  setBits(into, WAIT.STDATA, data);
  setBits(into, WAIT.STADDR_LO, (addr % 2 ** 32) / 4);
  setBits(into, WAIT.STADDR_HI, Math.floor(addr / 2 ** 32));
  return into;
}

/** Granularities (the G field) of context-cache and IOTLB descriptors; P_IOTLB uses 2 (PASID) and 3 (page). */
const G_GLOBAL = 1;
const G_DOMAIN = 2;
const G_PAGE = 3;
const G_DEVICE = 3;
/** PASID-cache G: domain-selective, PASID-selective, global (§6.5.2.2). */
const PC_G_DOMAIN = 0;
const PC_G_PASID = 1;
const PC_G_GLOBAL = 3;

export const qd = {
  contextGlobal: () => desc(CC_INV_DESC, DESC_CC, { G: G_GLOBAL }),
  contextDevice: (did: number, sid: number) => desc(CC_INV_DESC, DESC_CC, { G: G_DEVICE, DID: did, SID: sid }),
  pasidGlobal: () => desc(PC_INV_DESC, DESC_PC, { G: PC_G_GLOBAL }),
  pasidDomain: (did: number) => desc(PC_INV_DESC, DESC_PC, { G: PC_G_DOMAIN, DID: did }),
  pasidSelective: (did: number, pasid: number) => desc(PC_INV_DESC, DESC_PC, { G: PC_G_PASID, DID: did, PASID: pasid }),
  iotlbGlobal: () => desc(IOTLB_INV_DESC, DESC_IOTLB, { G: G_GLOBAL, DR: 1, DW: 1 }),
  iotlbDomain: (did: number) => desc(IOTLB_INV_DESC, DESC_IOTLB, { G: G_DOMAIN, DID: did, DR: 1, DW: 1 }),
  /** 2^am pages at `addr` (aligned to the range); IH: only leaves changed. */
  iotlbPages: (did: number, addr: number, am: number, ih: boolean) =>
    desc(IOTLB_INV_DESC, DESC_IOTLB, { G: G_PAGE, DID: did, DR: 1, DW: 1, ADDR: addr / 4096, AM: am, IH: ih ? 1 : 0 }),
  piotlbPasid: (did: number, pasid: number) => desc(P_IOTLB_INV_DESC, DESC_P_IOTLB, { G: G_DOMAIN, DID: did, PASID: pasid }),
  piotlbPages: (did: number, pasid: number, addr: number, am: number, ih: boolean) =>
    desc(P_IOTLB_INV_DESC, DESC_P_IOTLB, { G: G_PAGE, DID: did, PASID: pasid, ADDR: addr / 4096, AM: am, IH: ih ? 1 : 0 }),
  /** Device-TLB of `sid` (no PASID): `size` bytes at `addr` (4 KiB * 2^n, or DEVTLB_ALL). qdep: ATS queue depth (32 encodes as 0). */
  devTlb: (sid: number, qdep: number, addr: number, size: number) => {
    const a = devTlbAddr(addr, size);
    return desc(DEV_TLB_INV_DESC, DESC_DEV_TLB, { SID: sid, MIP: qdep & 0x1f, S: a.s, ADDR: a.page });
  },
  pasidDevTlb: (sid: number, qdep: number, pasid: number, addr: number, size: number) => {
    const a = devTlbAddr(addr, size);
    return desc(P_DEV_TLB_INV_DESC, DESC_P_DEV_TLB, { SID: sid, MIP: qdep & 0x1f, PASID: pasid, S: a.s, ADDR: a.page });
  },
  pageGroupResponse: (rid: number, pasid: number, prgi: number, lpig: boolean, rc: number) => pageGroupResponseDesc(rid, pasid, prgi, lpig, rc),
  /** Status write of `data` to the dword at `addr`; `pd`: page-request drain (§6.5.2.8, Linux QI_OPT_WAIT_DRAIN). */
  wait: (data: number, addr: number, pd = false) => waitDesc(data, addr, pd),
  /**
   * A fencing wait with no status write (intel_iommu_drain_pasid_prq's first descriptor:
   * QI_IWD_STATUS_DATA(QI_DONE) | QI_IWD_FENCE; QI_DONE is 2 in enum qi_status).
   */
  fence: () => desc(INV_WAIT_DESC, DESC_INV_WAIT, { FN: 1, STDATA: 2 }),
  /** A wait that does nothing (replaces a refused descriptor after IQE). */
  nop: () => desc(INV_WAIT_DESC, DESC_INV_WAIT, {}),
} as const;

/**
 * The smallest size-aligned power-of-two run of pages covering
 * [start, end): its first address and AM (log2 pages) (Linux
 * calculate_psi_aligned_address).
 */
export function psiRange(start: number, end: number): { addr: number; am: number } {
  const first = Math.floor(start / 4096);
  const last = Math.max(first, Math.ceil(end / 4096) - 1);
  let am = 0;
  while (Math.floor(first / 2 ** am) !== Math.floor(last / 2 ** am)) am++;
  return { addr: (first - (first % 2 ** am)) * 4096, am };
}
