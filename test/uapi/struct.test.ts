import t from 'tap';
import { defineStruct, encodeStruct, decodeStruct, StructView, u64ToNumber } from '../../src/uapi/struct.ts';
import { IO } from '../../src/uapi/ioctl.ts';

t.test('struct layout follows C natural alignment and padding', async (t) => {
  // struct vfio_iommu_type1_dma_map { __u32 argsz; __u32 flags; __u64 vaddr; __u64 iova; __u64 size; } = 32 bytes
  const map = defineStruct('vfio_iommu_type1_dma_map', [['argsz', 'u32'], ['flags', 'u32'], ['vaddr', 'u64'], ['iova', 'u64'], ['size', 'u64']]);
  t.equal(map.size, 32);
  t.equal(map.fields.iova.offset, 16);
  const padded = defineStruct('p', [['a', 'u32'], ['b', 'u64'], ['c', 'u16']]);
  t.same([padded.fields.b.offset, padded.fields.c.offset, padded.size], [8, 16, 24]);
  const arr = defineStruct('q', [['n', 'u32'], ['r', 'u8[3]'], ['x', 'u32']]);
  t.same([arr.fields.x.offset, arr.size], [8, 12]);
});

t.test('encode, decode and views are little-endian and exact for u64', async (t) => {
  const s = defineStruct('s', [['a', 'u32'], ['b', 'u64'], ['c', 's32']]);
  const bytes = encodeStruct(s, { a: 0x11223344, b: 0xffff_ffff_ffff_fff0n, c: -5 });
  t.same([...bytes.subarray(0, 4)], [0x44, 0x33, 0x22, 0x11]);
  t.same(decodeStruct(s, bytes), { a: 0x11223344, b: 0xffff_ffff_ffff_fff0n, c: -5 });
  const v = new StructView(s, bytes.subarray(0, 8));
  t.equal(v.has('b'), false, 'a short buffer does not hold b');
  t.equal(v.big('b'), 0n);
  t.equal(u64ToNumber(2n ** 53n), undefined);
  t.equal(u64ToNumber(2n ** 53n - 1n), Number.MAX_SAFE_INTEGER);
});

t.test('ioctl numbers: VFIO_GET_API_VERSION is _IO(";", 100) and IOMMU_IOAS_ALLOC 0x3b81', async (t) => {
  t.equal(IO(';', 100), 0x3b64);
  t.equal(IO(';', 0x81), 0x3b81);
});
