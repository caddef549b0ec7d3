import type { CapabilityList } from '../capability-list.ts';
import type { ConfigSpace } from '../config-space.ts';
import { defineRegisters } from '../../hw/registers.ts';

/** ACS Capability / Control fields (7.7.8.2, 7.7.8.3; Linux PCI_ACS_*): Control has a bit for each capability bit. */
const ACS_FIELDS = [
  ['SV', 0], // Source Validation
  ['TB', 1], // Translation Blocking
  ['RR', 2], // P2P Request Redirect
  ['CR', 3], // P2P Completion Redirect
  ['UF', 4], // Upstream Forwarding
  ['EC', 5], // P2P Egress Control
  ['DT', 6], // Direct Translated P2P
] as const;

/** Access Control Services Extended Capability registers (PCIe Base 7.7.8), offsets from the capability. */
export const ACS_REGS = defineRegisters('acs', [
  { name: 'CAP', offset: 0x04, size: 2, access: 'ro', fields: ACS_FIELDS },
  /** Writable only where the capability implements the control (the model narrows it). */
  { name: 'CTRL', offset: 0x06, size: 2, fields: ACS_FIELDS },
]);

/** Access Control Services Extended Capability (PCIe Base 7.7.8): ID, version, register offsets, size. */
export const ACS = { CAP_ID: 0x000d, VERSION: 1, ...ACS_REGS.offsets(), SIZEOF: 8 } as const;

/** ACS Capability / Control bits (the same positions in both registers). */
export const ACS_BITS = ACS_REGS.masks('CAP');

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
    const valid = ACS_REGS.writableMask('CTRL');
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
