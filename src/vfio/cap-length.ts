/**
 * How many bytes of a capability vfio-pci shows a user
 * (drivers/vfio/pci/vfio_pci_config.c, Linux 7.3): pci_cap_length[] and
 * pci_ext_cap_length[] for the fixed ones, vfio_cap_len(),
 * vfio_ext_cap_len() and vfio_vc_cap_len() for the variable ones (0xFF in
 * the tables). 0 means vfio-pci hides the capability (unknown to it,
 * bridge or root-complex only, or "not yet": PASID and Enhanced Allocation
 * among them).
 */
import type { HwConfig } from './pci-config-virt.ts';

const VARIABLE = 0xff;

/** The capability IDs (include/uapi/linux/pci_regs.h) vfio-pci also gives write rules of their own. */
export const CAP_ID_VNDR = 0x09;
export const ECAP_ID = { ERR: 0x01, PWR: 0x04, VNDR: 0x0b, DVSEC: 0x23 } as const;

/** pci_ext_cap_length[], indexed by extended capability ID (include/uapi/linux/pci_regs.h names). */
const EXT_FIXED: Readonly<Record<number, number>> = {
  0x01: 0x2c, // ERR: PCI_ERR_ROOT_COMMAND
  0x02: VARIABLE, // VC
  0x03: 12, // DSN: PCI_EXT_CAP_DSN_SIZEOF
  0x04: 0x10, // PWR: PCI_EXT_CAP_PWR_SIZEOF
  0x08: VARIABLE, // MFVC
  0x09: VARIABLE, // VC9
  0x0b: VARIABLE, // VNDR
  0x0d: VARIABLE, // ACS
  0x0e: 8, // ARI: PCI_EXT_CAP_ARI_SIZEOF
  0x0f: 8, // ATS: PCI_EXT_CAP_ATS_SIZEOF
  0x10: 0x40, // SRIOV: PCI_EXT_CAP_SRIOV_SIZEOF
  0x12: 40, // MCAST: PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF
  0x13: 16, // PRI: PCI_EXT_CAP_PRI_SIZEOF
  0x15: VARIABLE, // REBAR
  0x16: VARIABLE, // DPA
  0x17: VARIABLE, // TPH
  0x18: 8, // LTR: PCI_EXT_CAP_LTR_SIZEOF
  0x23: VARIABLE, // DVSEC
  // RCLD, RCILC, RCEC, RCRB (root only), CAC (obsolete), MRIOV, AMD_XXX, SECPCI, PMUX, PASID ("not yet")
  // and every ID the table does not name are 0: hidden.
};

/** pci_cap_length[], indexed by capability ID. */
const STD_FIXED: Readonly<Record<number, number>> = {
  0x01: 8, // PM: PCI_PM_SIZEOF
  0x02: 12, // AGP: PCI_AGP_SIZEOF
  0x03: 8, // VPD: PCI_CAP_VPD_SIZEOF
  0x05: VARIABLE, // MSI
  0x07: VARIABLE, // PCIX
  0x08: VARIABLE, // HT
  0x09: VARIABLE, // VNDR
  0x10: VARIABLE, // EXP
  0x11: 12, // MSIX: PCI_CAP_MSIX_SIZEOF
  0x12: VARIABLE, // SATA
  0x13: 6, // AF: PCI_CAP_AF_SIZEOF
  // SLOTID, SSVID (bridge), CHSWP, CCRC, SHPC, AGP3, SECDEV ("not yet"), DBG, EA, ID 0 and unknown IDs: hidden.
};

/** Bytes of the standard capability with ID `id` at `pos`, as vfio_cap_init() takes them; 0 hides it. */
export function stdCapLength(hw: HwConfig, id: number, pos: number): number {
  const len = STD_FIXED[id] ?? 0;
  if (len !== VARIABLE) return len;
  switch (id) {
    case 0x05: {
      // vfio_msi_cap_len(): 10, +4 with 64-bit addresses, +10 with per-vector masking.
      const flags = hw.read(pos + 2, 2);
      return 10 + ((flags & 0x80) !== 0 ? 4 : 0) + ((flags & 0x100) !== 0 ? 10 : 0);
    }
    case 0x07: // PCIX: PCI_CAP_PCIX_SIZEOF_V2 when PCI_X_CMD has a version, else _V0
      return ((hw.read(pos + 2, 2) >>> 12) & 3) !== 0 ? 24 : 8;
    case 0x08: // HT: HT_CAP_SIZEOF_SHORT for the 3-bit types (HT_3BIT_CAP_MASK), else _LONG
      return (hw.read(pos + 3, 1) & 0xe0) !== 0 ? 24 : 28;
    case CAP_ID_VNDR: // its length byte follows the next pointer
      return hw.read(pos + 2, 1);
    case 0x10: {
      // EXP: by version and type (PCI_EXP_FLAGS); a Root Complex Integrated Endpoint has no link registers.
      const flags = hw.read(pos + 2, 2);
      const rcEnd = ((flags >>> 4) & 0xf) === 0x9;
      if ((flags & 0xf) === 1) return rcEnd ? 0xc : 20;
      return rcEnd ? 0x2c : 0x34;
    }
    default: // SATA: PCI_SATA_SIZEOF_LONG when the registers are inline (PCI_SATA_REGS_INLINE)
      return (hw.read(pos + 4, 1) & 0xf) === 0xf ? 16 : 8;
  }
}

/** Bytes of the capability with ID `id` whose header is at `pos`, as vfio_ecap_init() takes them; 0 hides it. */
export function ecapLength(hw: HwConfig, id: number, pos: number): number {
  const len = EXT_FIXED[id] ?? 0;
  if (len !== VARIABLE) return len;
  switch (id) {
    case ECAP_ID.VNDR: // PCI_VNDR_HEADER_LEN of the vendor-specific header
    case ECAP_ID.DVSEC: // PCI_DVSEC_HEADER1_LEN: the same bits of DVSEC header 1
      return (hw.read(pos + 4, 4) >>> 20) & 0xfff;
    case 0x0d: {
      // ACS: 8, and the egress control vector when the capability has one (PCI_ACS_EC).
      if ((hw.read(pos + 4, 1) & 0x20) === 0) return 8;
      const byte = hw.read(pos + 5, 1);
      const bits = byte !== 0 ? Math.ceil(byte / 32) * 32 : 256;
      return 8 + bits / 8;
    }
    case 0x15: // REBAR: 4 + 8 per resizable BAR (PCI_REBAR_CTRL_NBAR)
      return 4 + ((hw.read(pos + 8, 1) & 0xe0) >>> 5) * 8;
    case 0x16: // DPA: PCI_DPA_BASE_SIZEOF + substates
      return 16 + (hw.read(pos + 4, 1) & 0x1f) + 1;
    case 0x17: {
      // TPH: PCI_TPH_BASE_SIZEOF, and the ST table when it is in the capability.
      const cap = hw.read(pos + 4, 4);
      if ((cap & 0x600) !== 0x200) return 0xc;
      return 0xc + ((cap & 0x07ff0000) >>> 16) * 2 + 2;
    }
    default:
      return vcLength(hw, pos); // VC, VC9, MFVC
  }
}

/** vfio_vc_cap_len(): the base, each VC's registers, and the VC arbitration table when one is supported. */
function vcLength(hw: HwConfig, pos: number): number {
  const evcc = hw.read(pos + 4, 4) & 0x7;
  const cap2 = hw.read(pos + 8, 4);
  const phases = (cap2 & 0x8) !== 0 ? 128 : (cap2 & 0x4) !== 0 ? 64 : (cap2 & 0x2) !== 0 ? 32 : 0;
  let len = 0x10 + (1 + evcc) * 0x0c;
  if (phases !== 0) len = Math.ceil(len / 16) * 16 + (phases * 4) / 8;
  return len;
}
