/**
 * Cache invalidation (VT-d spec §6.5): the operations behind both
 * interfaces, the register-based one (CCMD §10.4.7 and IOTLB_REG §10.4.8,
 * legacy) and the queued one (inv-queue.ts). What each scope removes:
 *
 * - context-cache: global; domain-selective (legacy entries of DID;
 *   scalable-mode context entries have no DID, so all of them);
 *   device-selective (source-id with function mask FM).
 * - PASID-cache: global; domain-selective (DID); PASID-selective (DID+PASID).
 * - IOTLB (descriptor type 2 / IOTLB_REG): global; domain-selective (every
 *   entry of DID, any PASID and PGTT); page-selective-within-domain (entries
 *   of DID from second-stage-only translations overlapping the 2^AM pages at
 *   ADDR, and, conservatively, every nested entry of DID since a
 *   second-stage page may back any of them).
 * - PASID-based IOTLB (type 6): first-stage and nested entries of
 *   DID+PASID: PASID-selective drops non-global ones, page-selective those
 *   overlapping the range, global ones included.
 *
 * IH (leaf-only hint) is accepted and ignored: no paging-structure cache is
 * modelled, so there is nothing non-leaf to preserve.
 */
import type { RegisterFile } from '../../src/hw/register-file.ts';
import type { SimContext } from '../../src/sim/context.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { ContextCache, PasidCache } from './caches.ts';
import { KIND_FS, KIND_NESTED, KIND_SS, type Iotlb } from './iotlb.ts';
import type { VtdCaps, VtdRegMap } from './regs.ts';

export type InvCache = 'context' | 'pasid' | 'iotlb' | 'piotlb';
export type InvScope = 'global' | 'domain' | 'device' | 'pasid' | 'page';

const ALL_KINDS = KIND_SS | KIND_FS | KIND_NESTED;

export class Invalidator {
  private readonly cOps: Counter;

  constructor(
    private readonly cc: ContextCache,
    private readonly pc: PasidCache,
    private readonly iotlb: Iotlb,
    private readonly ctx: SimContext,
    private readonly name: string,
  ) {
    this.cOps = ctx.counters.counter(`${name}.invalidations`);
  }

  contextGlobal(): void {
    this.done('context', 'global', 0, 0, 0, 0, 0, this.cc.invalidateAll());
  }
  contextDomain(did: number): void {
    this.done('context', 'domain', did, 0, 0, 0, 0, this.cc.invalidateDomain(did));
  }
  contextDevice(did: number, sid: number, fm: number): void {
    this.done('context', 'device', did, sid, 0, 0, 0, this.cc.invalidateDevice(sid, fm));
  }

  pasidGlobal(): void {
    this.done('pasid', 'global', 0, 0, 0, 0, 0, this.pc.invalidateAll());
  }
  pasidDomain(did: number): void {
    this.done('pasid', 'domain', did, 0, 0, 0, 0, this.pc.invalidateDomain(did));
  }
  pasidSelective(did: number, pasid: number): void {
    this.done('pasid', 'pasid', did, 0, pasid, 0, 0, this.pc.invalidatePasid(did, pasid));
  }

  iotlbGlobal(): void {
    this.done('iotlb', 'global', 0, 0, 0, 0, 0, this.iotlb.invalidateAll());
  }
  iotlbDomain(did: number): void {
    this.done('iotlb', 'domain', did, 0, 0, 0, 0, this.iotlb.invalidateDomain(did, ALL_KINDS));
  }
  /** Page-selective-within-domain: 2^am pages from `addr` (aligned down to the range size). */
  iotlbPages(did: number, addr: number, am: number): void {
    const bytes = 4096 * 2 ** am;
    const base = addr - (addr % bytes);
    const n = this.iotlb.invalidateDomainRange(did, KIND_SS, base, bytes) + this.iotlb.invalidateDomain(did, KIND_NESTED);
    this.done('iotlb', 'page', did, 0, 0, base, am, n);
  }

  piotlbPasid(did: number, pasid: number): void {
    const n = this.iotlb.invalidatePasid(did, pasid, KIND_FS | KIND_NESTED, 0, Infinity, false);
    this.done('piotlb', 'pasid', did, 0, pasid, 0, 0, n);
  }
  piotlbPages(did: number, pasid: number, addr: number, am: number): void {
    const bytes = 4096 * 2 ** am;
    const base = addr - (addr % bytes);
    const n = this.iotlb.invalidatePasid(did, pasid, KIND_FS | KIND_NESTED, base, bytes, true);
    this.done('piotlb', 'page', did, 0, pasid, base, am, n);
  }

  private done(cache: InvCache, scope: InvScope, did: number, sid: number, pasid: number, addr: number, am: number, removed: number): void {
    this.cOps.value++;
    if (this.ctx.tracer.wants('vtd.invalidate')) {
      this.ctx.tracer.trace('vtd.invalidate', this.name, { cache, scope, did, sid, pasid, addr, am, removed });
    }
  }
}

/** CCMD granularities (CIRG/CAIG) and IOTLB_REG granularities (IIRG/IAIG): 1 global, 2 domain, 3 device/page. */
const G_GLOBAL = 1;
const G_DOMAIN = 2;
const G_SELECTIVE = 3;

/**
 * CCMD written (§10.4.7): with ICC set, invalidate at CIRG granularity, report
 * the granularity performed in CAIG and clear ICC. With queued invalidation
 * enabled (or CIRG = 00) the request is ignored and CAIG reads 00.
 */
export function contextCommand(rf: RegisterFile<VtdRegMap>, inv: Invalidator, qiEnabled: boolean): void {
  if (rf.getField('CCMD', 'ICC') === 0) return;
  const cirg = rf.getField('CCMD', 'CIRG');
  let caig = 0;
  if (!qiEnabled && cirg !== 0) {
    const did = rf.getField('CCMD', 'DID');
    if (cirg === G_GLOBAL) inv.contextGlobal();
    else if (cirg === G_DOMAIN) inv.contextDomain(did);
    else inv.contextDevice(did, rf.getField('CCMD', 'SID'), rf.getField('CCMD', 'FM'));
    caig = cirg;
  }
  rf.setField('CCMD', 'CAIG', caig);
  rf.setField('CCMD', 'ICC', 0);
}

/**
 * IOTLB_REG written (§10.4.8.1): with IVT set, invalidate at IIRG
 * granularity (page-selective takes ADDR/AM from IVA_REG), report IAIG, clear
 * IVT. Ignored (IAIG = 00) with queued invalidation enabled, IIRG = 00, or
 * AM above CAP.MAMV.
 */
export function iotlbCommand(rf: RegisterFile<VtdRegMap>, inv: Invalidator, qiEnabled: boolean, caps: VtdCaps): void {
  if (rf.getField('IOTLB', 'IVT') === 0) return;
  const iirg = rf.getField('IOTLB', 'IIRG');
  const did = rf.getField('IOTLB', 'DID');
  let iaig = 0;
  if (!qiEnabled && iirg !== 0) {
    const am = rf.getField('IVA', 'AM');
    if (iirg === G_GLOBAL) {
      inv.iotlbGlobal();
      iaig = iirg;
    } else if (iirg === G_DOMAIN) {
      inv.iotlbDomain(did);
      iaig = iirg;
    } else if (iirg === G_SELECTIVE && am <= caps.mamv) {
      inv.iotlbPages(did, rf.getField('IVA', 'ADDR') * 4096, am);
      iaig = iirg;
    }
  }
  rf.setField('IOTLB', 'IAIG', iaig);
  rf.setField('IOTLB', 'IVT', 0);
}
