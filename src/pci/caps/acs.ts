import type { CapabilityList } from '../capability-list.ts';
import type { ConfigSpace } from '../config-space.ts';

/** Access Control Services Extended Capability (PCIe Base 7.7.8): register offsets. */
export const ACS = {
  CAP_ID: 0x000d,
  VERSION: 1,
  /** ACS Capability register (16 bits). */
  CAP: 0x04,
  /** ACS Control register (16 bits): the same bit positions as CAP. */
  CTRL: 0x06,
  SIZEOF: 8,
} as const;

/** ACS Capability / Control bits (7.7.8.2, 7.7.8.3; Linux PCI_ACS_*). */
export const ACS_BITS = {
  /** Source Validation. */
  SV: 0x0001,
  /** Translation Blocking. */
  TB: 0x0002,
  /** P2P Request Redirect. */
  RR: 0x0004,
  /** P2P Completion Redirect. */
  CR: 0x0008,
  /** Upstream Forwarding. */
  UF: 0x0010,
  /** P2P Egress Control. */
  EC: 0x0020,
  /** Direct Translated P2P. */
  DT: 0x0040,
} as const;

/**
 * The controls Linux requires before it trusts a port or a multi-function
 * device to isolate its functions (drivers/iommu/iommu.c REQ_ACS_FLAGS).
 */
export const REQ_ACS_FLAGS = ACS_BITS.SV | ACS_BITS.RR | ACS_BITS.CR | ACS_BITS.UF;

/**
 * An ACS capability: which controls the function implements (read-only
 * capability bits) and software's enables (Control, writable only where
 * implemented, 0 at reset).
 */
export class AcsCapability {
  readonly offset: number;

  constructor(cfg: ConfigSpace, list: CapabilityList, implemented: number = REQ_ACS_FLAGS) {
    const valid = Object.values(ACS_BITS).reduce((a, b) => a | b, 0);
    if ((implemented & ~valid) !== 0) throw new RangeError(`unknown ACS bits 0x${implemented.toString(16)}`);
    this.offset = list.addExt(ACS.CAP_ID, ACS.VERSION, ACS.SIZEOF);
    cfg.set16(this.offset + ACS.CAP, implemented);
    cfg.setWritable(this.offset + ACS.CTRL, 2, implemented);
  }
}

/**
 * pci_acs_flags_enabled(): the function has an ACS capability and every
 * control of `flags` that it implements is enabled (EC is only required
 * where implemented; controls it lacks are not asked of it).
 */
export function acsFlagsEnabled(cfg: ConfigSpace, list: CapabilityList, flags: number): boolean {
  const off = list.findExt(ACS.CAP_ID);
  if (off === undefined) return false;
  const cap = cfg.get16(off + ACS.CAP);
  const ctrl = cfg.get16(off + ACS.CTRL);
  const need = flags & (cap | ACS_BITS.EC);
  return (ctrl & need) === need;
}
