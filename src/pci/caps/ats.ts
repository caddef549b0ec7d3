import type { CapabilityList } from '../capability-list.ts';
import type { ConfigSpace } from '../config-space.ts';
import { fieldGet } from '../../hw/layout.ts';
import { defineRegisters } from '../../hw/registers.ts';
import { valueBefore } from './bits.ts';

/** ATS Extended Capability registers (PCIe Base 10.5.1), offsets from the capability. */
export const ATS_REGS = defineRegisters('ats', [
  /** 10.5.1.2 ATS Capability. Invalidate Queue Depth: 0 encodes 32. */
  {
    name: 'CAP', offset: 0x04, size: 2, access: 'ro',
    fields: [['QDEP', 4, 0], ['PAGE_ALIGNED', 5], ['GLOBAL_INVALIDATE', 6], ['RELAXED_ORDERING', 7]],
  },
  /** 10.5.1.3 ATS Control. Smallest Translation Unit: 2^(12 + STU) bytes. */
  { name: 'CTRL', offset: 0x06, size: 2, fields: [['STU', 4, 0], ['ENABLE', 15]] },
]);

/** ATS Extended Capability (PCIe Base 10.5.1): ID, version, register offsets, size. */
export const ATS = { CAP_ID: 0x000f, VERSION: 1, ...ATS_REGS.offsets(), SIZEOF: 8 } as const;

/** ATS Capability / Control field masks (from the table). */
export const ATS_CAP = ATS_REGS.masks('CAP');
export const ATS_CTRL = ATS_REGS.masks('CTRL');
const QDEP = ATS_REGS.field('CAP', 'QDEP');
const STU = ATS_REGS.field('CTRL', 'STU');

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
      ATS_REGS.pack('CAP', {
        QDEP: qdep % ATS_MAX_QDEP,
        PAGE_ALIGNED: (options.pageAlignedRequest ?? true) ? 1 : 0,
        GLOBAL_INVALIDATE: options.globalInvalidate ? 1 : 0,
        RELAXED_ORDERING: options.relaxedOrdering ? 1 : 0,
      }),
    );
    cfg.setWritable(b + ATS.CTRL, 2, ATS_REGS.writableMask('CTRL'));
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

  private get cap(): number {
    return this.cfg.get16(this.offset + ATS.CAP);
  }

  get enabled(): boolean {
    return (this.ctrl & ATS_CTRL.ENABLE) !== 0;
  }

  /** The STU field as programmed. */
  get stu(): number {
    return fieldGet(STU, this.ctrl);
  }

  /** Smallest Translation Unit in bytes: 4096 << STU. */
  get smallestTranslationUnit(): number {
    return PAGE_4K * 2 ** this.stu;
  }

  /** Invalidations the function can hold at once (the 0 encoding means 32). */
  get invalidateQueueDepth(): number {
    return fieldGet(QDEP, this.cap) || ATS_MAX_QDEP;
  }

  get pageAlignedRequest(): boolean {
    return (this.cap & ATS_CAP.PAGE_ALIGNED) !== 0;
  }

  get globalInvalidateSupported(): boolean {
    return (this.cap & ATS_CAP.GLOBAL_INVALIDATE) !== 0;
  }
}
