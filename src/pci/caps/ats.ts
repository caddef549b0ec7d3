import type { CapabilityList } from '../capability-list.ts';
import type { ConfigSpace } from '../config-space.ts';
import { fieldGet, fieldPrep, valueBefore } from './bits.ts';

/** ATS Extended Capability (PCIe Base 10.5.1): register offsets. */
export const ATS = {
  CAP_ID: 0x000f,
  VERSION: 1,
  CAP: 0x04,
  CTRL: 0x06,
  SIZEOF: 8,
} as const;

/** ATS Capability register (10.5.1.2). */
export const ATS_CAP = {
  /** Invalidate Queue Depth; 0 encodes 32. */
  QDEP: 0x001f,
  PAGE_ALIGNED: 0x0020,
  GLOBAL_INVALIDATE: 0x0040,
  RELAXED_ORDERING: 0x0080,
} as const;

/** ATS Control register (10.5.1.3). */
export const ATS_CTRL = {
  /** Smallest Translation Unit: 2^(12 + STU) bytes. */
  STU: 0x001f,
  ENABLE: 0x8000,
} as const;

export const ATS_MAX_QDEP = 32;
const PAGE_4K = 4096;

export interface AtsOptions {
  /** Invalidate Queue Depth, 1 to 32 (default 32). */
  invalidateQueueDepth?: number;
  /** Translation requests are always 4096-byte aligned (default true). */
  pageAlignedRequest?: boolean;
  globalInvalidate?: boolean;
  relaxedOrdering?: boolean;
  /** Software changed Enable or STU. */
  onChange?: (cap: AtsCapability) => void;
}

export class AtsCapability {
  readonly offset: number;
  private readonly cfg: ConfigSpace;
  private readonly opts: AtsOptions;

  constructor(cfg: ConfigSpace, list: CapabilityList, options: AtsOptions = {}) {
    const qdep = options.invalidateQueueDepth ?? ATS_MAX_QDEP;
    if (!Number.isInteger(qdep) || qdep < 1 || qdep > ATS_MAX_QDEP) throw new RangeError(`bad ATS queue depth ${qdep}`);
    this.cfg = cfg;
    this.opts = options;
    this.offset = list.addExt(ATS.CAP_ID, ATS.VERSION, ATS.SIZEOF);
    const b = this.offset;
    cfg.set16(
      b + ATS.CAP,
      fieldPrep(ATS_CAP.QDEP, qdep % ATS_MAX_QDEP) |
        ((options.pageAlignedRequest ?? true) ? ATS_CAP.PAGE_ALIGNED : 0) |
        (options.globalInvalidate ? ATS_CAP.GLOBAL_INVALIDATE : 0) |
        (options.relaxedOrdering ? ATS_CAP.RELAXED_ORDERING : 0),
    );
    cfg.setWritable(b + ATS.CTRL, 2, ATS_CTRL.STU | ATS_CTRL.ENABLE);
    cfg.onWrite(b + ATS.CTRL, 2, (off, _n, old) => {
      if (valueBefore(cfg, b + ATS.CTRL, 2, off, old) !== this.ctrl) this.opts.onChange?.(this);
    });
    this.reset();
  }

  /** Disabled, STU 0. */
  reset(): void {
    this.cfg.set16(this.offset + ATS.CTRL, 0);
  }

  private get ctrl(): number {
    return this.cfg.get16(this.offset + ATS.CTRL);
  }

  get enabled(): boolean {
    return (this.ctrl & ATS_CTRL.ENABLE) !== 0;
  }

  /** The STU field as programmed. */
  get stu(): number {
    return fieldGet(ATS_CTRL.STU, this.ctrl);
  }

  /** Smallest Translation Unit in bytes: 4096 << STU. */
  get smallestTranslationUnit(): number {
    return PAGE_4K * 2 ** this.stu;
  }

  /** Invalidations the function can hold at once (the 0 encoding means 32). */
  get invalidateQueueDepth(): number {
    return fieldGet(ATS_CAP.QDEP, this.cfg.get16(this.offset + ATS.CAP)) || ATS_MAX_QDEP;
  }

  get pageAlignedRequest(): boolean {
    return (this.cfg.get16(this.offset + ATS.CAP) & ATS_CAP.PAGE_ALIGNED) !== 0;
  }

  get globalInvalidateSupported(): boolean {
    return (this.cfg.get16(this.offset + ATS.CAP) & ATS_CAP.GLOBAL_INVALIDATE) !== 0;
  }
}
