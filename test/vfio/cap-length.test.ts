/**
 * vfio-pci's lengths of capabilities (pci_cap_length, pci_ext_cap_length,
 * vfio_ext_cap_len, vfio_vc_cap_len in Linux 7.3's vfio_pci_config.c),
 * read from a config space given as bytes.
 */
import t from 'tap';
import { ecapLength, stdCapLength } from '../../src/vfio/cap-length.ts';
import type { HwConfig } from '../../src/vfio/pci-config-virt.ts';

/** A config space of 4 KiB whose dwords at `pos + off` are `dwords[off]`. */
function hw(pos: number, dwords: Record<number, number>): HwConfig {
  const b = new Uint8Array(4096);
  const v = new DataView(b.buffer);
  for (const [off, d] of Object.entries(dwords)) v.setUint32(pos + Number(off), d >>> 0, true);
  return {
    read: (off, size) => (size === 4 ? v.getUint32(off, true) : size === 2 ? v.getUint16(off, true) : v.getUint8(off)),
    write: () => {},
  };
}

t.test('fixed lengths, and 0 for the capabilities vfio-pci hides', async (t) => {
  const none = hw(0x100, {});
  const fixed: [string, number, number][] = [
    ['ERR', 0x01, 0x2c], ['DSN', 0x03, 12], ['PWR', 0x04, 0x10], ['ARI', 0x0e, 8], ['ATS', 0x0f, 8],
    ['SRIOV', 0x10, 0x40], ['MCAST', 0x12, 40], ['PRI', 0x13, 16], ['LTR', 0x18, 8],
    ['RCLD', 0x05, 0], ['RCRB', 0x0a, 0], ['CAC', 0x0c, 0], ['MRIOV', 0x11, 0], ['SECPCI', 0x19, 0],
    ['PASID', 0x1b, 0], ['DPC', 0x1d, 0], ['PTM', 0x1f, 0], ['DOE', 0x2e, 0], ['an unknown ID', 0x7ff, 0],
  ];
  for (const [name, id, len] of fixed) t.equal(ecapLength(none, id, 0x100), len, name);
});

t.test('variable lengths read from the capability', async (t) => {
  t.equal(ecapLength(hw(0x100, { 4: (0x24 << 20) | 7 }), 0x0b, 0x100), 0x24, 'VNDR: the VSEC header length');
  t.equal(ecapLength(hw(0x100, { 4: (0x30 << 20) | 1 }), 0x23, 0x100), 0x30, 'DVSEC: header 1 length');
  t.equal(ecapLength(hw(0x100, { 4: 0x001f }), 0x0d, 0x100), 8, 'ACS without egress control');
  t.equal(ecapLength(hw(0x100, { 4: 0x0020 }), 0x0d, 0x100), 8 + 32, 'ACS with egress control, size 0: 256 bits');
  t.equal(ecapLength(hw(0x100, { 4: 0x2120 }), 0x0d, 0x100), 8 + 8, 'ACS, 0x21 bits rounded up to 64');
  t.equal(ecapLength(hw(0x100, { 8: 3 << 5 }), 0x15, 0x100), 4 + 24, 'REBAR: three BARs');
  t.equal(ecapLength(hw(0x100, { 4: 0x3 }), 0x16, 0x100), 16 + 4, 'DPA: four substates');
  t.equal(ecapLength(hw(0x100, { 4: 0x400 }), 0x17, 0x100), 0xc, 'TPH, ST table not in the capability');
  t.equal(ecapLength(hw(0x100, { 4: 0x200 | (5 << 16) }), 0x17, 0x100), 0xc + 10 + 2, 'TPH, a 6-entry ST table in it');
  t.equal(ecapLength(hw(0x100, { 4: 0, 8: 0 }), 0x02, 0x100), 0x10 + 0x0c, 'VC: one VC, no arbitration table');
  t.equal(ecapLength(hw(0x100, { 4: 2, 8: 0x4 }), 0x09, 0x100), 0x40 + 32, 'VC9: three VCs, 64 phases (rounded to 16, then 32 bytes)');
  t.equal(ecapLength(hw(0x100, { 4: 1, 8: 0x8 }), 0x08, 0x100), 0x30 + 64, 'MFVC: two VCs, 128 phases');
});

t.test('standard capabilities: fixed, variable and hidden lengths (pci_cap_length, vfio_cap_len)', async (t) => {
  const none = hw(0x40, {});
  const fixed: [string, number, number][] = [
    ['PM', 0x01, 8], ['AGP', 0x02, 12], ['VPD', 0x03, 8], ['MSIX', 0x11, 12], ['AF', 0x13, 6],
    ['SLOTID', 0x04, 0], ['CHSWP', 0x06, 0], ['DBG', 0x0a, 0], ['SSVID', 0x0d, 0], ['SECDEV', 0x0f, 0], ['EA', 0x14, 0], ['an unknown ID', 0x42, 0],
  ];
  for (const [name, id, len] of fixed) t.equal(stdCapLength(none, id, 0x40), len, name);
  t.equal(stdCapLength(hw(0x40, { 0: 0x0000 << 16 }), 0x05, 0x40), 10, 'MSI, 32-bit');
  t.equal(stdCapLength(hw(0x40, { 0: 0x0080 << 16 }), 0x05, 0x40), 14, 'MSI, 64-bit');
  t.equal(stdCapLength(hw(0x40, { 0: 0x0180 << 16 }), 0x05, 0x40), 24, 'MSI, 64-bit with per-vector masking');
  t.equal(stdCapLength(hw(0x40, { 0: 0x1000 << 16 }), 0x07, 0x40), 24, 'PCI-X version 1');
  t.equal(stdCapLength(hw(0x40, { 0: 0 }), 0x07, 0x40), 8, 'PCI-X version 0');
  t.equal(stdCapLength(hw(0x40, { 0: 0x20 << 24 }), 0x08, 0x40), 24, 'HyperTransport, a 3-bit type');
  t.equal(stdCapLength(hw(0x40, { 0: 0x10 << 24 }), 0x08, 0x40), 28, 'HyperTransport, slave or primary');
  t.equal(stdCapLength(hw(0x40, { 0: 0x18 << 16 }), 0x09, 0x40), 0x18, 'vendor-specific: its length byte');
  t.equal(stdCapLength(hw(0x40, { 0: 0x0002 << 16 }), 0x10, 0x40), 0x34, 'PCI Express v2 endpoint');
  t.equal(stdCapLength(hw(0x40, { 0: 0x0092 << 16 }), 0x10, 0x40), 0x2c, 'PCI Express v2 RC integrated endpoint');
  t.equal(stdCapLength(hw(0x40, { 0: 0x0001 << 16 }), 0x10, 0x40), 20, 'PCI Express v1 endpoint');
  t.equal(stdCapLength(hw(0x40, { 0: 0x0091 << 16 }), 0x10, 0x40), 0xc, 'PCI Express v1 RC integrated endpoint');
  t.equal(stdCapLength(hw(0x40, { 4: 0xf }), 0x12, 0x40), 16, 'SATA, registers inline');
  t.equal(stdCapLength(hw(0x40, { 4: 0x4 }), 0x12, 0x40), 8, 'SATA, registers in a BAR');
});
