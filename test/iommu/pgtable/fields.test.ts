import t from 'tap';
import fc from 'fast-check';
import { formatLayout, getBits64, setBits64, type Layout } from '../../../src/hw/layout.ts';
import { VMSA_DESC, VMSA_S2_DESC, vmsaDescAddr, vmsaSetDescAddr } from '../../../iommu/pgtable/vmsa-layout.ts';
import { E_PAT_LARGE, IA32E_ENTRY, IA32E_LARGE_ENTRY } from '../../../iommu/pgtable/ia32e-layout.ts';
import { VTD_SS_ENTRY } from '../../../iommu/pgtable/vtd-ss-layout.ts';

const LAYOUTS: [string, Layout][] = [
  ['VMSA', VMSA_DESC],
  ['VMSA S2', VMSA_S2_DESC],
  ['IA-32e', IA32E_ENTRY],
  ['VT-d SS', VTD_SS_ENTRY],
];

t.test('every declared field round-trips through setBits64/getBits64 without touching its neighbours', async (t) => {
  for (const [name, layout] of LAYOUTS) {
    fc.assert(
      fc.property(fc.constantFrom(...layout.order), fc.nat(0xffffffff), fc.nat(0xffffffff), fc.double({ min: 0, max: 1, noNaN: true }), (f, lo, hi, frac) => {
        const value = Math.floor(frac * (2 ** f.width - 1));
        const d = { lo, hi };
        setBits64(d, f, value);
        if (getBits64(d.lo, d.hi, f) !== value) return false;
        // Bits outside the field are unchanged: clear the field in both and compare.
        const a = { lo, hi };
        setBits64(a, f, 0);
        const b = { lo: d.lo, hi: d.hi };
        setBits64(b, f, 0);
        return a.lo === b.lo && a.hi === b.hi;
      }),
      { numRuns: 100 },
    );
    t.pass(`${name} fields round-trip`);
  }
});

t.test('formatLayout names the set fields of an entry held as halves', async (t) => {
  t.equal(formatLayout(VMSA_DESC, [0x403, 0x0040_0000]), 'VMSA_DESC{VALID=1 TYPE=1 AF=1 UXN=1}');
});

t.test('a large IA-32e page has its PAT at bit 12 and its address above it', async (t) => {
  t.equal(IA32E_LARGE_ENTRY.fields.PAT.lsb, 12);
  t.equal(IA32E_LARGE_ENTRY.fields.ADDR.lsb, 13);
  t.equal(E_PAT_LARGE, 0x1000);
});

t.test('VMSA output-address encodings round-trip (48-bit, LPA2, 64K with 52-bit OA)', async (t) => {
  const formats = [
    { pageShift: 12, ds: false, oa52Lpa64k: false, bits: 48 },
    { pageShift: 12, ds: true, oa52Lpa64k: false, bits: 52 },
    { pageShift: 14, ds: true, oa52Lpa64k: false, bits: 52 },
    { pageShift: 16, ds: false, oa52Lpa64k: true, bits: 52 },
  ];
  for (const f of formats) {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), (frac) => {
        const pa = Math.floor((frac * 2 ** f.bits) / 2 ** f.pageShift) * 2 ** f.pageShift;
        const d = { lo: 3, hi: 0 };
        vmsaSetDescAddr(d, Math.min(pa, 2 ** f.bits - 2 ** f.pageShift), f);
        return vmsaDescAddr(d.lo, d.hi, f) === Math.min(pa, 2 ** f.bits - 2 ** f.pageShift) && (d.lo & 3) === 3;
      }),
      { numRuns: 100 },
    );
  }
  t.pass('addresses round-trip');
});
