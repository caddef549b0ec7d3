/**
 * Cache invalidation as the driver issues it (Linux intel/cache.c
 * cache_tag_flush_range / intel_pasid_tear_down_entry), one batch of
 * descriptors closed by a wait:
 *
 * - a second-stage domain: page-selective-within-domain IOTLB invalidation
 *   (domain-selective when the range needs AM above CAP.MAMV);
 * - a first-stage (or SVA) domain: PASID-based IOTLB invalidation for every
 *   PASID it is attached at (page-selective, or PASID-selective);
 * - every attachment whose device has ATS: a device-TLB invalidation of the
 *   same range (PASID-based for PASIDs other than RID_PASID);
 * - a nest parent: also the device-TLBs of the attachments of nested
 *   domains over it (their IOTLB entries carry the parent's DID, and
 *   page-selective IOTLB invalidation drops every nested entry of a DID);
 * - a changed or removed PASID entry: PASID-cache invalidation of its old
 *   DID, then the IOTLB of what it translated, then the device-TLB.
 */
import { DEVTLB_ALL } from '../inv-desc.ts';
import { readField } from '../../../src/hw/layout.ts';
import { PASID_ENTRY, PGTT_NESTED, PGTT_SECOND_STAGE } from '../pasid-entry.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import { qd, psiRange } from './descs.ts';
import type { DevInfo } from './device.ts';
import type { VtdDomain } from './domains.ts';
import type { InvalidationQueue } from './qi.ts';

export class Flusher {
  constructor(
    private readonly qi: InvalidationQueue,
    /** CAP.MAMV: the largest AM of page-selective invalidation. */
    private readonly mamv: number,
    private readonly info: (dev: PciFunction) => DevInfo | undefined,
  ) {}

  /** Invalidate [start, end) of `domain` wherever it is attached. */
  range(domain: VtdDomain, start: number, end: number, leafOnly: boolean): void {
    const nested = nestedUsers(domain);
    if (domain.users.size === 0 && nested.length === 0) return;
    const { addr, am } = psiRange(start, end);
    const whole = am > this.mamv;
    const size = 4096 * 2 ** am;
    const descs: Uint32Array[] = [];
    if (domain.kind === 'ss') descs.push(whole ? qd.iotlbDomain(domain.did) : qd.iotlbPages(domain.did, addr, am, leafOnly));
    for (const { dev, pasid } of domain.users.values()) {
      if (domain.kind === 'fs') descs.push(whole ? qd.piotlbPasid(domain.did, pasid) : qd.piotlbPages(domain.did, pasid, addr, am, leafOnly));
      const info = this.info(dev);
      if (info !== undefined) descs.push(...this.devTlb(info, pasid, addr, size));
    }
    for (const { dev, pasid } of nested) {
      const info = this.info(dev);
      if (info !== undefined) descs.push(...this.devTlb(info, pasid, addr, size));
    }
    this.qi.submit(descs);
  }

  /** Invalidate everything `domain` translates. */
  all(domain: VtdDomain): void {
    const nested = nestedUsers(domain);
    if (domain.users.size === 0 && nested.length === 0) return;
    const descs: Uint32Array[] = [];
    if (domain.kind === 'ss') descs.push(qd.iotlbDomain(domain.did));
    for (const { dev, pasid } of domain.users.values()) {
      if (domain.kind !== 'ss') descs.push(qd.piotlbPasid(domain.did, pasid));
      const info = this.info(dev);
      if (info !== undefined) descs.push(...this.devTlb(info, pasid, 0, DEVTLB_ALL));
    }
    for (const { dev, pasid } of nested) {
      const info = this.info(dev);
      if (info !== undefined) descs.push(...this.devTlb(info, pasid, 0, DEVTLB_ALL));
    }
    this.qi.submit(descs);
  }

  /** The PASID entry `old` (present) was replaced or removed. */
  entry(info: DevInfo, pasid: number, old: Uint32Array): void {
    const did = readField(PASID_ENTRY, old, 'DID');
    const pgtt = readField(PASID_ENTRY, old, 'PGTT');
    const ss = pgtt === PGTT_SECOND_STAGE || pgtt === PGTT_NESTED;
    this.qi.submit([
      qd.pasidSelective(did, pasid),
      ss ? qd.iotlbDomain(did) : qd.piotlbPasid(did, pasid),
      ...this.devTlb(info, pasid, 0, DEVTLB_ALL),
    ]);
  }

  /** Device-TLB descriptors for one attachment (none without ATS). */
  devTlb(info: DevInfo, pasid: number, addr: number, size: number): Uint32Array[] {
    if (!info.ats) return [];
    const qdep = info.atsQdep;
    return [pasid === 0 ? qd.devTlb(info.sid, qdep, addr, size) : qd.pasidDevTlb(info.sid, qdep, pasid, addr, size)];
  }
}

/** Attachments of the nested domains over a nest parent (none for other domains). */
function nestedUsers(domain: VtdDomain): { dev: PciFunction; pasid: number }[] {
  const n = (domain as { nested?: Set<VtdDomain> }).nested;
  if (n === undefined || n.size === 0) return [];
  const out: { dev: PciFunction; pasid: number }[] = [];
  for (const d of n) out.push(...d.users.values());
  return out;
}
