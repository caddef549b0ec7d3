/**
 * The context-cache and the PASID-cache (VT-d spec §6.2.2, §6.2.3): decoded
 * root/context and PASID-directory/PASID-table entries, filled on first use
 * and changed only by an invalidation (or never, for a driver that forgets:
 * it keeps seeing the old entry). Only valid entries are cached (CAP.CM = 0:
 * not-present and erroneous entries are never cached). An invalidated entry
 * is marked `valid = false` and removed, so holders of a reference see it.
 */
import type { Ia32eWalker, VtdSsWalker } from '../pgtable/index.ts';
import type { IotlbBucket } from './iotlb.ts';

/** A legacy-mode context entry (§9.3), decoded. */
export class LegacyCtx {
  readonly scalable = false;
  valid = true;
  sid = 0;
  did = 0;
  tt = 0;
  fpd = false;
  levels = 0;
  slptptr = 0;
  walker: VtdSsWalker | null = null;
  bucket: IotlbBucket | null = null;
}

/** A scalable-mode context entry (§9.4), decoded. */
export class SmCtx {
  readonly scalable = true;
  valid = true;
  sid = 0;
  fpd = false;
  dte = false;
  paside = false;
  pre = false;
  /** Number of PASID-directory entries (2^(PDTS+7)). */
  dirEntries = 0;
  dirPtr = 0;
  ridPasid = 0;
  ridPriv = false;
}

export type CtxEntry = LegacyCtx | SmCtx;

/** A PASID-table entry (§9.6) with its directory entry's FPD, decoded, with its walkers. */
export class PasidCtx {
  valid = true;
  sid = 0;
  pasid = 0;
  did = 0;
  pgtt = 0;
  /** FPD of the context, directory or PASID entry. */
  fpd = false;
  sre = false;
  ere = false;
  wpe = false;
  eafe = false;
  fsLevels = 4;
  fsptptr = 0;
  ssLevels = 0;
  slptptr = 0;
  slee = false;
  slade = false;
  bucket: IotlbBucket | null = null;
  fs: Ia32eWalker | null = null;
  ss: VtdSsWalker | null = null;
  /** Walkers without A/D updates, made on the first permission fault to classify it. */
  fsProbe: Ia32eWalker | null = null;
  ssProbe: VtdSsWalker | null = null;
}

/** The context-cache, keyed by source-id (bus:devfn). */
export class ContextCache {
  readonly map = new Map<number, CtxEntry>();
  /** Bumped on every change, so a translator may remember its last lookup until the cache changes. */
  gen = 0;

  get(sid: number): CtxEntry | undefined {
    return this.map.get(sid);
  }

  put(e: CtxEntry): void {
    this.gen++;
    this.map.set(e.sid, e);
  }

  invalidateAll(): number {
    return this.drop(() => true);
  }

  /**
   * Domain-selective: legacy entries of domain `did`. Scalable-mode context
   * entries carry no domain ID, so hardware ignores DID and drops them all.
   */
  invalidateDomain(did: number): number {
    return this.drop((e) => e.scalable || e.did === did);
  }

  /** Device-selective: source-id `sid` with FM (§6.5.2.1) masking function bits 2, 2:1 or 2:0. */
  invalidateDevice(sid: number, fm: number): number {
    const mask = [0, 0b100, 0b110, 0b111][fm & 3]!;
    return this.drop((e) => (e.sid | mask) === (sid | mask));
  }

  private drop(pred: (e: CtxEntry) => boolean): number {
    let n = 0;
    for (const [k, e] of [...this.map]) {
      if (!pred(e)) continue;
      e.valid = false;
      this.map.delete(k);
      n++;
    }
    if (n > 0) this.gen++;
    return n;
  }
}

/** The PASID-cache, keyed by source-id and PASID. */
export class PasidCache {
  readonly map = new Map<number, PasidCtx>();
  /** Bumped on every change (see ContextCache.gen). */
  gen = 0;

  static key(sid: number, pasid: number): number {
    return sid * 0x10_0000 + pasid;
  }

  get(sid: number, pasid: number): PasidCtx | undefined {
    return this.map.get(sid * 0x10_0000 + pasid);
  }

  put(e: PasidCtx): void {
    this.gen++;
    this.map.set(PasidCache.key(e.sid, e.pasid), e);
  }

  invalidateAll(): number {
    return this.drop(() => true);
  }

  invalidateDomain(did: number): number {
    return this.drop((e) => e.did === did);
  }

  invalidatePasid(did: number, pasid: number): number {
    return this.drop((e) => e.did === did && e.pasid === pasid);
  }

  private drop(pred: (e: PasidCtx) => boolean): number {
    let n = 0;
    for (const [k, e] of [...this.map]) {
      if (!pred(e)) continue;
      e.valid = false;
      this.map.delete(k);
      n++;
    }
    if (n > 0) this.gen++;
    return n;
  }
}
