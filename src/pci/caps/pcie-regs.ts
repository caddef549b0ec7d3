/**
 * Register layout of the PCI Express Capability (PCIe Base 7.5.3), declared
 * once as a register table for the capability model, drivers and tests.
 * Offsets are from the capability; section numbers per register. The access
 * column is the architected one for an endpoint; the model narrows what is
 * writable where a feature is absent (FLR, extended tags, link controls of
 * ports).
 */
import { defineRegisters } from '../../hw/registers.ts';

export const PCIE_REGS = defineRegisters('pcie', [
  /** 7.5.3.2 PCI Express Capabilities register. */
  { name: 'FLAGS', offset: 0x02, size: 2, access: 'ro', fields: [['VERSION', 3, 0], ['TYPE', 7, 4], ['SLOT', 8], ['IRQ', 13, 9]] },
  /** 7.5.3.3 Device Capabilities: Max_Payload_Size Supported, Extended Tag, Role-Based Error Reporting, FLR capable. */
  { name: 'DEVCAP', offset: 0x04, size: 4, access: 'ro', fields: [['MPS', 2, 0], ['EXT_TAG', 5], ['RBER', 15], ['FLR', 28]] },
  /** 7.5.3.4 Device Control. FLR is Initiate Function Level Reset on endpoints (it always reads 0). */
  {
    name: 'DEVCTL', offset: 0x08, size: 2,
    fields: [
      ['CERE', 0], ['NFERE', 1], ['FERE', 2], ['URRE', 3], ['RELAX_EN', 4], ['MPS', 7, 5], ['EXT_TAG', 8], ['NOSNOOP_EN', 11],
      ['MRRS', 14, 12], ['FLR', 15],
    ],
  },
  /** 7.5.3.5 Device Status: the error bits [3:0] are RW1C. */
  {
    name: 'DEVSTA', offset: 0x0a, size: 2,
    fields: [['CED', 0, 0, 'w1c'], ['NFED', 1, 1, 'w1c'], ['FED', 2, 2, 'w1c'], ['URD', 3, 3, 'w1c'], ['AUXPD', 4, 4, 'ro'], ['TRPND', 5, 5, 'ro']],
  },
  /** 7.5.3.6 Link Capabilities: speeds, width, DLL Link Active Reporting, Link Bandwidth Notification, Port Number. */
  {
    name: 'LNKCAP', offset: 0x0c, size: 4, access: 'ro',
    fields: [['SLS', 3, 0], ['MLW', 9, 4], ['DLLLARC', 20], ['LBNC', 21], ['PN', 31, 24]],
  },
  /** 7.5.3.7 Link Control. */
  {
    name: 'LNKCTL', offset: 0x10, size: 2,
    fields: [['ASPMC', 1, 0], ['RCB', 3], ['LD', 4], ['RL', 5], ['CCC', 6], ['ES', 7], ['LBMIE', 10], ['LABIE', 11]],
  },
  /** 7.5.3.8 Link Status: the bandwidth-change bits are RW1C. */
  {
    name: 'LNKSTA', offset: 0x12, size: 2,
    fields: [
      ['CLS', 3, 0, 'ro'], ['NLW', 9, 4, 'ro'], ['LT', 11, 11, 'ro'], ['SLC', 12, 12, 'ro'], ['DLLLA', 13, 13, 'ro'],
      ['LBMS', 14, 14, 'w1c'], ['LABS', 15, 15, 'w1c'],
    ],
  },
  { name: 'SLTCAP', offset: 0x14, size: 4, access: 'ro' },
  { name: 'SLTCTL', offset: 0x18, size: 2, access: 'ro' },
  { name: 'SLTSTA', offset: 0x1a, size: 2, access: 'ro' },
  /** 7.5.3.12 Root Control. */
  { name: 'RTCTL', offset: 0x1c, size: 2, fields: [['SECEE', 0], ['SENFEE', 1], ['SEFEE', 2], ['PMEIE', 3]] },
  { name: 'RTCAP', offset: 0x1e, size: 2, access: 'ro' },
  /** 7.5.3.14 Root Status. */
  {
    name: 'RTSTA', offset: 0x20, size: 4,
    fields: [['PME_REQUESTER_ID', 15, 0, 'ro'], ['PME_STATUS', 16, 16, 'w1c'], ['PME_PENDING', 17, 17, 'ro']],
  },
  /** 7.5.3.15 Device Capabilities 2. */
  {
    name: 'DEVCAP2', offset: 0x24, size: 4, access: 'ro',
    fields: [['COMP_TMOUT_RANGES', 3, 0], ['COMP_TMOUT_DIS', 4], ['ARI', 5], ['LTR', 11]],
  },
  /** 7.5.3.16 Device Control 2. */
  { name: 'DEVCTL2', offset: 0x28, size: 2, fields: [['COMP_TIMEOUT', 3, 0], ['COMP_TMOUT_DIS', 4], ['ARI', 5], ['LTR_EN', 10]] },
  { name: 'DEVSTA2', offset: 0x2a, size: 2, access: 'ro' },
  /** 7.5.3.18 Link Capabilities 2: Supported Link Speeds Vector. */
  { name: 'LNKCAP2', offset: 0x2c, size: 4, access: 'ro', fields: [['SLS_VECTOR', 7, 1]] },
  /** 7.5.3.19 Link Control 2: Target Link Speed. */
  { name: 'LNKCTL2', offset: 0x30, size: 2, fields: [['TLS', 3, 0]] },
  { name: 'LNKSTA2', offset: 0x32, size: 2, access: 'ro' },
  { name: 'SLTCAP2', offset: 0x34, size: 4, access: 'ro' },
  { name: 'SLTCTL2', offset: 0x38, size: 2, access: 'ro' },
  { name: 'SLTSTA2', offset: 0x3a, size: 2, access: 'ro' },
]);

/** PCI Express Capability structure, version 2 (PCIe Base 7.5.3): ID, register offsets, size. */
export const PCIE = { CAP_ID: 0x10, ...PCIE_REGS.offsets(), SIZEOF_V2: 0x3c } as const;

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

/* Field masks of each register (from the table), as drivers OR them together. */
export const PCIE_FLAGS = PCIE_REGS.masks('FLAGS');
export const PCIE_DEVCAP = PCIE_REGS.masks('DEVCAP');
export const PCIE_DEVCTL = PCIE_REGS.masks('DEVCTL');
export const PCIE_DEVSTA = PCIE_REGS.masks('DEVSTA');
export const PCIE_LNKCAP = PCIE_REGS.masks('LNKCAP');
export const PCIE_LNKCTL = PCIE_REGS.masks('LNKCTL');
export const PCIE_LNKSTA = PCIE_REGS.masks('LNKSTA');
export const PCIE_RTCTL = PCIE_REGS.masks('RTCTL');
export const PCIE_RTSTA = PCIE_REGS.masks('RTSTA');
export const PCIE_DEVCAP2 = PCIE_REGS.masks('DEVCAP2');
export const PCIE_DEVCTL2 = PCIE_REGS.masks('DEVCTL2');
export const PCIE_LNKCAP2 = PCIE_REGS.masks('LNKCAP2');
export const PCIE_LNKCTL2 = PCIE_REGS.masks('LNKCTL2');
