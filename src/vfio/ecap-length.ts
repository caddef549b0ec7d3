/**
 * How many bytes of an extended capability vfio-pci shows a user
 * (drivers/vfio/pci/vfio_pci_config.c, Linux 7.3): pci_ext_cap_length[]
 * for the fixed ones, vfio_ext_cap_len() and vfio_vc_cap_len() for the
 * variable ones (0xFF in the table). 0 means vfio-pci hides the capability
 * (unknown to it, root-complex only, or "not yet": PASID among them).
 */
import type { HwConfig } from './pci-config-virt.ts';

const VARIABLE = 0xff;

/** pci_ext_cap_length[], indexed by capability ID (include/uapi/linux/pci_regs.h names). */
const FIXED: Readonly<Record<number, number>> = {
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

/** Bytes of the capability with ID `id` whose header is at `pos`, as vfio_ecap_init() takes them; 0 hides it. */
export function ecapLength(hw: HwConfig, id: number, pos: number): number {
  const len = FIXED[id] ?? 0;
  if (len !== VARIABLE) return len;
  switch (id) {
    case 0x0b: // VNDR: PCI_VNDR_HEADER_LEN of the vendor-specific header
      return (hw.read(pos + 4, 4) >>> 20) & 0xfff;
    case 0x23: // DVSEC: PCI_DVSEC_HEADER1_LEN
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
