/**
 * What a user sees of a device's extended capabilities and of the gaps in
 * its config space through vfio-pci's config region (vfio_ecap_init,
 * vfio_direct_config_read, unassigned_perms; Linux 7.3):
 * - each capability vfio-pci knows, over its length, with a virtual header;
 * - the ones it does not know (PASID is "not yet" in pci_ext_cap_length)
 *   unlinked from the chain, or, the first, kept as a placeholder holding
 *   only the next pointer;
 * - vendor-specific capabilities written raw, the others read-only;
 * - bytes outside the header and every capability read and written raw.
 */
import t from 'tap';
import { createMachine, DEFAULT_DEVICES } from '../../machines/machine.ts';
import { PciFunction } from '../../src/pci/pci-function.ts';
import { PcieCapability } from '../../src/pci/caps/pcie.ts';
import { VFIO_PCI_CONFIG_REGION_INDEX, vfioPciIndexToOffset } from '../../src/uapi/vfio.ts';
import { vfioType1Setup } from '../../tools/scenario/vmm.ts';

const BDF = '0000:00:05.0';
const ID = { ERR: 0x01, DSN: 0x03, VNDR: 0x0b, PASID: 0x1b } as const;

/** An endpoint with extended capabilities in the given order, and writable registers in two gaps. */
class EcapDevice extends PciFunction {
  readonly ecap: Record<string, number> = {};
  constructor(name: string, order: (keyof typeof ID)[]) {
    super(name, { vendorId: 0x1b36, deviceId: 0x10f0, classCode: 0xff0000 }, 0);
    new PcieCapability(this.config, this.caps, { type: 'rc-endpoint' });
    for (const cap of order) {
      const len = cap === 'DSN' ? 12 : cap === 'VNDR' ? 0x10 : cap === 'ERR' ? 0x48 : 8;
      const at = this.caps.addExt(ID[cap], 1, len);
      this.ecap[cap] = at;
      // Something the hardware lets software write in every capability's body.
      this.config.setWritable(cap === 'PASID' ? at + 4 : at + 8, 4, 0xffffffff);
      if (cap === 'VNDR') this.config.set32(at + 4, (0x10 << 20) | 0x0001); // VSEC length 0x10, ID 1
      if (cap === 'DSN') this.config.set32(at + 4, 0x12345678);
      if (cap === 'ERR') for (let r = 0x04; r <= 0x1c; r += 4) this.config.setWritable(at + r, 4, 0xffffffff);
    }
    // Registers in gaps: past the standard capabilities, and past the extended ones.
    this.config.setWritable(0xf0, 4, 0xffffffff);
    this.config.setWritable(0x800, 4, 0xffffffff);
  }
}

function open(order: (keyof typeof ID)[]) {
  let dev: EcapDevice | undefined;
  const m = createMachine('q35-vtd', {
    devices: [...DEFAULT_DEVICES, { bdf: BDF, name: 'ecaps', kind: (_ctx, name) => (dev = new EcapDevice(name, order)) }],
  });
  const p = m.host.spawn();
  const { device } = vfioType1Setup(m, p, BDF);
  const at = vfioPciIndexToOffset(VFIO_PCI_CONFIG_REGION_INDEX);
  const read32 = (off: number): number => {
    const b = p.pread(device, 4, at + BigInt(off));
    if (typeof b === 'number') throw new Error(`pread ${off}: ${b}`);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  };
  const write32 = (off: number, v: number): void => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    const r = p.pwrite(device, b, at + BigInt(off));
    if (r !== 4) throw new Error(`pwrite ${off}: ${r}`);
  };
  /** The chain as the user walks it: [offset, ID] from 0x100. */
  const chain = (): [number, number][] => {
    const out: [number, number][] = [];
    for (let off = 0x100, n = 0; off >= 0x100 && n < 64; n++) {
      const h = read32(off);
      if (h === 0) break;
      out.push([off, h & 0xffff]);
      off = (h >>> 20) & 0xffc;
    }
    return out;
  };
  return { dev: dev!, read32, write32, chain };
}

t.test('a capability vfio-pci does not know is unlinked from the chain; the hardware keeps it', async (t) => {
  const { dev, chain, read32, write32 } = open(['VNDR', 'PASID', 'DSN']);
  t.same(chain(), [[dev.ecap.VNDR, ID.VNDR], [dev.ecap.DSN, ID.DSN]], 'PASID is left out of the user\'s chain');
  t.equal(dev.caps.findExt(ID.PASID), dev.ecap.PASID, 'and is still in the device');
  t.equal(read32(dev.ecap.DSN! + 4), 0x12345678, 'a capability\'s body reads the hardware');
  write32(dev.ecap.DSN! + 8, 0xdead);
  t.equal(dev.config.get32(dev.ecap.DSN! + 8), 0, 'a write to a capability vfio-pci has no write rules for is dropped');
  write32(dev.ecap.VNDR! + 8, 0xbeef);
  t.equal(dev.config.get32(dev.ecap.VNDR! + 8), 0xbeef, 'a vendor-specific capability is written raw');
  t.equal(read32(dev.ecap.VNDR! + 8), 0xbeef);
  // The hidden capability's bytes are unassigned: raw, like any gap.
  write32(dev.ecap.PASID! + 4, 0x1111);
  t.equal(dev.config.get32(dev.ecap.PASID! + 4), 0x1111, 'the hidden capability\'s bytes are unassigned: written raw');
});

t.test('the first capability, when vfio-pci does not know it, stays as a placeholder holding only the next pointer', async (t) => {
  const { dev, chain, read32 } = open(['PASID', 'DSN']);
  t.equal(dev.ecap.PASID, 0x100);
  const h = read32(0x100);
  t.equal(h & 0xfffff, 0, 'ID and version read 0');
  t.equal((h >>> 20) & 0xffc, dev.ecap.DSN, 'the next pointer leads on');
  t.same(chain(), [[0x100, 0], [dev.ecap.DSN, ID.DSN]], 'a walk passes the placeholder and finds the next one');
  t.equal(read32(dev.ecap.DSN!), (dev.config.get32(dev.ecap.DSN!) >>> 0), 'the next capability\'s header as the hardware has it');
});

t.test('bytes outside the header and every capability are the hardware\'s, read and written raw', async (t) => {
  const { dev, read32, write32 } = open(['DSN']);
  write32(0xf0, 0xa5a5a5a5);
  t.equal(dev.config.get32(0xf0), 0xa5a5a5a5, 'a gap in the standard space is written raw');
  t.equal(read32(0xf0), 0xa5a5a5a5, 'and read raw');
  write32(0x800, 0x5a5a5a5a);
  t.equal(dev.config.get32(0x800), 0x5a5a5a5a, 'past the last extended capability too');
  t.equal(read32(0x800), 0x5a5a5a5a);
  dev.config.set32(0xf4, 0x77);
  t.equal(read32(0xf4), 0x77, 'a gap reads what the hardware holds now, not a copy');
});

t.test('the DMA engine: PASID is out of the chain a VFIO user walks, ATS and PRI are in it', async (t) => {
  const m = createMachine('q35-vtd');
  const p = m.host.spawn();
  const { device } = vfioType1Setup(m, p, '0000:00:01.0');
  const at = vfioPciIndexToOffset(VFIO_PCI_CONFIG_REGION_INDEX);
  const ids: number[] = [];
  for (let off = 0x100, n = 0; off >= 0x100 && n < 64; n++) {
    const b = p.pread(device, 4, at + BigInt(off)) as Uint8Array;
    const h = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
    if (h === 0) break;
    ids.push(h & 0xffff);
    off = (h >>> 20) & 0xffc;
  }
  const hw = m.device('0000:00:01.0').caps.extCaps().map((c) => c.id);
  t.ok(hw.includes(ID.PASID), 'the engine has PASID');
  t.same(ids, hw.filter((id) => id !== ID.PASID), 'the user sees every other one, in order');
});

t.test('AER: only the error bits vfio-pci lets a user write reach the hardware (init_pci_ext_cap_err_perm)', async (t) => {
  const { dev, chain, write32 } = open(['ERR', 'DSN']);
  t.same(chain(), [[0x100, ID.ERR], [dev.ecap.DSN, ID.DSN]]);
  const b = dev.ecap.ERR!;
  write32(b + 0x08, 0xffffffff);
  t.equal(dev.config.get32(b + 0x08), 0x03fff031, 'Uncorrectable Error Mask: the named error bits only');
  write32(b + 0x14, 0xffffffff);
  t.equal(dev.config.get32(b + 0x14), 0xf1c1, 'Correctable Error Mask');
  write32(b + 0x18, 0xffffffff);
  t.equal(dev.config.get32(b + 0x18), 0x140, 'Capabilities and Control: the ECRC enables');
  write32(b + 0x1c, 0xffffffff);
  t.equal(dev.config.get32(b + 0x1c), 0, 'the header log: writable in the hardware, read-only to the user');
});

/** A conventional or PCIe endpoint with the standard capabilities given, in order, and a writable byte after each. */
class StdCapDevice extends PciFunction {
  readonly at: Record<string, number> = {};
  constructor(name: string, caps: [string, number, number][], pcie: boolean) {
    super(name, { vendorId: 0x1b36, deviceId: 0x10f1, classCode: 0xff0000 }, 0);
    if (pcie) {
      this.at.EXP = new PcieCapability(this.config, this.caps, { type: 'rc-endpoint' }).offset;
      this.config.setWritable(this.at.EXP + 0x30, 1, 0xff); // past what vfio-pci shows of an RC endpoint's capability
    }
    for (const [label, id, len] of caps) {
      const at = this.caps.addStd(id, len);
      this.at[label] = at;
      if (id === 0x09) this.config.set8(at + 2, len); // a vendor-specific capability's length byte
      this.config.setWritable(at + 4, 1, 0xff);
    }
  }
}

function openStd(caps: [string, number, number][], pcie = true) {
  let dev: StdCapDevice | undefined;
  const m = createMachine('q35-vtd', {
    devices: [...DEFAULT_DEVICES, { bdf: BDF, name: 'stdcaps', kind: (_ctx, name) => (dev = new StdCapDevice(name, caps, pcie)) }],
  });
  const p = m.host.spawn();
  const { device } = vfioType1Setup(m, p, BDF);
  const at = vfioPciIndexToOffset(VFIO_PCI_CONFIG_REGION_INDEX);
  const read = (off: number, n: 1 | 2 | 4): number => {
    const b = p.pread(device, n, at + BigInt(off)) as Uint8Array;
    return n === 4 ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true) : n === 2 ? b[0]! | (b[1]! << 8) : b[0]!;
  };
  const write8 = (off: number, v: number): void => {
    if (p.pwrite(device, Uint8Array.of(v), at + BigInt(off)) !== 1) throw new Error(`pwrite ${off}`);
  };
  const chain = (): number[] => {
    const ids: number[] = [];
    if ((read(0x06, 2) & 0x10) === 0) return ids;
    for (let pos = read(0x34, 1), n = 0; pos !== 0 && n < 48; n++) {
      ids.push(read(pos, 1));
      pos = read(pos + 1, 1);
    }
    return ids;
  };
  return { dev: dev!, read, write8, chain };
}

t.test('standard capabilities vfio-pci does not know are left out of the chain (vfio_cap_init)', async (t) => {
  const { dev, chain, read, write8 } = openStd([['SSVID', 0x0d, 8], ['VNDR', 0x09, 12], ['EA', 0x14, 8]]);
  t.same(chain(), [0x10, 0x09], 'PCI Express and the vendor-specific one; the bridge subsystem ID and Enhanced Allocation are hidden');
  t.equal(read(0x34, 1), dev.at.EXP, 'the chain starts at PCI Express');
  write8(dev.at.VNDR! + 4, 0x5a);
  t.equal(dev.config.get8(dev.at.VNDR! + 4), 0x5a, 'a vendor-specific capability is written raw');
  write8(dev.at.SSVID! + 4, 0x6b);
  t.equal(dev.config.get8(dev.at.SSVID! + 4), 0x6b, 'a hidden capability\'s bytes are unassigned: written raw');
  // A Root Complex Integrated Endpoint's PCI Express capability ends at 0x2c for vfio-pci (no link registers).
  t.equal((dev.config.get16(dev.at.EXP! + 2) >>> 4) & 0xf, 0x9, 'an RC integrated endpoint');
  write8(dev.at.EXP! + 0x30, 0x42);
  t.equal(dev.config.get8(dev.at.EXP! + 0x30), 0x42, 'its bytes from 0x2c on are unassigned: written raw');
});

t.test('with the first standard capability hidden the pointer skips it; with all hidden Status loses Capabilities List', async (t) => {
  const first = openStd([['SSVID', 0x0d, 8], ['VNDR', 0x09, 8]], false);
  t.same(first.chain(), [0x09]);
  t.equal(first.read(0x34, 1), first.dev.at.VNDR, 'the Capabilities Pointer skips the hidden one');
  const none = openStd([['SSVID', 0x0d, 8]], false);
  t.equal(none.dev.config.get16(0x06) & 0x10, 0x10, 'the device lists a capability');
  t.equal(none.read(0x06, 2) & 0x10, 0, 'the user sees no Capabilities List');
  t.same(none.chain(), []);
});
