import type { CapabilityList } from '../capability-list.ts';
import type { ConfigSpace } from '../config-space.ts';
import { fieldGet } from '../../hw/layout.ts';
import { defineRegisters } from '../../hw/registers.ts';
import { valueBefore } from './bits.ts';

/** PASID Extended Capability registers (PCIe Base 7.8.8), offsets from the capability. */
export const PASID_REGS = defineRegisters('pasid', [
  /** 7.8.8.2 PASID Capability: Execute / Privileged Mode Supported, Max PASID Width (PASIDs 0 .. 2^width - 1). */
  { name: 'CAP', offset: 0x04, size: 2, access: 'ro', fields: [['EXEC', 1], ['PRIV', 2], ['WIDTH', 12, 8]] },
  /** 7.8.8.3 PASID Control; the Execute and Privileged enables are RW only when supported (RO 0 otherwise). */
  { name: 'CTRL', offset: 0x06, size: 2, fields: [['ENABLE', 0], ['EXEC', 1], ['PRIV', 2]] },
]);

/** PASID Extended Capability (PCIe Base 7.8.8): ID, version, register offsets, size. */
export const PASID = {
  CAP_ID: 0x001b,
  VERSION: 1,
  ...PASID_REGS.offsets(),
  SIZEOF: 8,
  /** PASIDs are 20 bits wide at most. */
  MAX_WIDTH: 20,
} as const;

/** PASID Capability / Control field masks (from the table). */
export const PASID_CAP = PASID_REGS.masks('CAP');
export const PASID_CTRL = PASID_REGS.masks('CTRL');
const WIDTH = PASID_REGS.field('CAP', 'WIDTH');
/** 2^w for every value of the 5-bit WIDTH field: the first PASID a width does not reach. */
const PASID_LIMIT: readonly number[] = Array.from({ length: 32 }, (_, w) => 2 ** w);

export interface PasidOptions {
  /** Max PASID Width, 1 to 20 bits. */
  maxPasidWidth: number;
  /** Execute Permission Supported (default false). */
  exec?: boolean;
  /** Privileged Mode Supported (default false). */
  priv?: boolean;
  /** Software changed the control register. */
  onChange?: (cap: PasidCapability) => void;
}

export class PasidCapability {
  readonly offset: number;
  private readonly cfg: ConfigSpace;
  private readonly opts: PasidOptions;

  constructor(cfg: ConfigSpace, list: CapabilityList, options: PasidOptions) {
    const w = options.maxPasidWidth;
    if (!Number.isInteger(w) || w < 1 || w > PASID.MAX_WIDTH) throw new RangeError(`bad Max PASID Width ${w}`);
    this.cfg = cfg;
    this.opts = options;
    this.offset = list.addExt(PASID.CAP_ID, PASID.VERSION, PASID.SIZEOF);
    const b = this.offset;
    cfg.set16(
      b + PASID.CAP,
      PASID_REGS.pack('CAP', { EXEC: options.exec ? 1 : 0, PRIV: options.priv ? 1 : 0, WIDTH: w }),
    );
    cfg.setWritable(
      b + PASID.CTRL,
      2,
      PASID_CTRL.ENABLE | (options.exec ? PASID_CTRL.EXEC : 0) | (options.priv ? PASID_CTRL.PRIV : 0),
    );
    cfg.onWrite(b + PASID.CTRL, 2, (off, _n, old) => {
      if (valueBefore(cfg, b + PASID.CTRL, 2, off, old) !== this.ctrl) this.opts.onChange?.(this);
    });
    this.reset();
  }

  /** Everything disabled. */
  reset(): void {
    this.cfg.set16(this.offset + PASID.CTRL, 0);
  }

  private get ctrl(): number {
    return this.cfg.get16(this.offset + PASID.CTRL);
  }

  private get cap(): number {
    return this.cfg.get16(this.offset + PASID.CAP);
  }

  get enabled(): boolean {
    return (this.ctrl & PASID_CTRL.ENABLE) !== 0;
  }

  get execEnabled(): boolean {
    return (this.ctrl & PASID_CTRL.EXEC) !== 0;
  }

  get privEnabled(): boolean {
    return (this.ctrl & PASID_CTRL.PRIV) !== 0;
  }

  get execSupported(): boolean {
    return (this.cap & PASID_CAP.EXEC) !== 0;
  }

  get privSupported(): boolean {
    return (this.cap & PASID_CAP.PRIV) !== 0;
  }

  get maxPasidWidth(): number {
    return fieldGet(WIDTH, this.cap);
  }

  /**
   * Whether the function may emit a request with this PASID and these
   * attribute bits: PASID enabled, the PASID within Max PASID Width, and the
   * Privileged / Execute bits only when their enables are set.
   */
  pasidAllowed(pasid: number, priv = false, exec = false): boolean {
    // Runs per request of a PASID-tagged DMA: each register read once, the width bound as an integer compare.
    const ctrl = this.ctrl;
    if ((ctrl & PASID_CTRL.ENABLE) === 0) return false;
    if (!Number.isInteger(pasid) || pasid < 0 || pasid >= PASID_LIMIT[this.maxPasidWidth]!) return false;
    if (priv && (ctrl & PASID_CTRL.PRIV) === 0) return false;
    if (exec && (ctrl & PASID_CTRL.EXEC) === 0) return false;
    return true;
  }
}
