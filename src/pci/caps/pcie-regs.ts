/**
 * Register layout of the PCI Express Capability (PCIe Base 7.5.3), declared once
 * for the capability model, drivers and tests. Section numbers per field group.
 */
/** PCI Express Capability structure, version 2 (PCIe Base 7.5.3): register offsets. */
export const PCIE = {
  CAP_ID: 0x10,
  FLAGS: 0x02,
  DEVCAP: 0x04,
  DEVCTL: 0x08,
  DEVSTA: 0x0a,
  LNKCAP: 0x0c,
  LNKCTL: 0x10,
  LNKSTA: 0x12,
  SLTCAP: 0x14,
  SLTCTL: 0x18,
  SLTSTA: 0x1a,
  RTCTL: 0x1c,
  RTCAP: 0x1e,
  RTSTA: 0x20,
  DEVCAP2: 0x24,
  DEVCTL2: 0x28,
  DEVSTA2: 0x2a,
  LNKCAP2: 0x2c,
  LNKCTL2: 0x30,
  LNKSTA2: 0x32,
  SLTCAP2: 0x34,
  SLTCTL2: 0x38,
  SLTSTA2: 0x3a,
  SIZEOF_V2: 0x3c,
} as const;

/** PCI Express Capabilities register (7.5.3.2). */
export const PCIE_FLAGS = { VERSION: 0x000f, TYPE: 0x00f0, SLOT: 0x0100, IRQ: 0x3e00 } as const;

/** Device/Port Type encodings (7.5.3.2). */
export const PCIE_TYPE = {
  ENDPOINT: 0x0,
  ROOT_PORT: 0x4,
  UPSTREAM: 0x5,
  DOWNSTREAM: 0x6,
  /** PCI Express to PCI/PCI-X Bridge (Linux PCI_EXP_TYPE_PCI_BRIDGE). */
  PCI_BRIDGE: 0x7,
  RC_ENDPOINT: 0x9,
} as const;

/** Device Capabilities (7.5.3.3). */
export const PCIE_DEVCAP = { MPS: 0x00000007, EXT_TAG: 0x00000020, RBER: 0x00008000, FLR: 0x10000000 } as const;

/** Device Control (7.5.3.4). FLR is Initiate Function Level Reset on endpoints. */
export const PCIE_DEVCTL = {
  CERE: 0x0001,
  NFERE: 0x0002,
  FERE: 0x0004,
  URRE: 0x0008,
  RELAX_EN: 0x0010,
  MPS: 0x00e0,
  EXT_TAG: 0x0100,
  NOSNOOP_EN: 0x0800,
  MRRS: 0x7000,
  FLR: 0x8000,
} as const;

/** Device Status (7.5.3.5): error bits [3:0] are RW1C. */
export const PCIE_DEVSTA = { CED: 0x01, NFED: 0x02, FED: 0x04, URD: 0x08, AUXPD: 0x10, TRPND: 0x20 } as const;

/** Link Capabilities / Control / Status (7.5.3.6 - 7.5.3.8). */
export const PCIE_LNKCAP = { SLS: 0x0000000f, MLW: 0x000003f0, DLLLARC: 0x00100000, LBNC: 0x00200000, PN: 0xff000000 } as const;
export const PCIE_LNKCTL = { ASPMC: 0x0003, RCB: 0x0008, LD: 0x0010, RL: 0x0020, CCC: 0x0040, ES: 0x0080, LBMIE: 0x0400, LABIE: 0x0800 } as const;
export const PCIE_LNKSTA = { CLS: 0x000f, NLW: 0x03f0, LT: 0x0800, SLC: 0x1000, DLLLA: 0x2000, LBMS: 0x4000, LABS: 0x8000 } as const;

/** Root Control / Status (7.5.3.12, 7.5.3.14). */
export const PCIE_RTCTL = { SECEE: 0x01, SENFEE: 0x02, SEFEE: 0x04, PMEIE: 0x08 } as const;
export const PCIE_RTSTA = { PME_STATUS: 0x00010000, PME_PENDING: 0x00020000 } as const;

/** Device Capabilities 2 / Control 2 (7.5.3.15, 7.5.3.16). */
export const PCIE_DEVCAP2 = { COMP_TMOUT_RANGES: 0x0000000f, COMP_TMOUT_DIS: 0x00000010, ARI: 0x00000020, LTR: 0x00000800 } as const;
export const PCIE_DEVCTL2 = { COMP_TIMEOUT: 0x000f, COMP_TMOUT_DIS: 0x0010, ARI: 0x0020, LTR_EN: 0x0400 } as const;

/** Link Capabilities 2 / Control 2 (7.5.3.18, 7.5.3.19). */
export const PCIE_LNKCAP2 = { SLS_VECTOR: 0x000000fe } as const;
export const PCIE_LNKCTL2 = { TLS: 0x000f } as const;
