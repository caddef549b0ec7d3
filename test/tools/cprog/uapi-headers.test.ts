/**
 * The generated uapi headers agree with the tables they are written from
 * (a C program asserting every struct's size and offsets and every
 * constant, compiled for wasm32 by ioemu's toolchain), and the tables agree
 * with Linux (the same program compiled by gcc against Linux 7.3's headers
 * where the kernel tree is on the machine).
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layoutCheckSource, NOT_IN_LINUX, uapiHeaders, uapiStructs } from '../../../tools/cprog/uapi-headers.ts';
import { buildC } from '../../../cli/build-cache.ts';
import { hasGcc, hasLinuxUapi, LINUX_UAPI } from './native.ts';

t.setTimeout(20 * 60_000);


t.test('every table struct and constant is in the generated headers, with what Linux lacks marked', async (t) => {
  const h = uapiHeaders();
  const text = h['linux/vfio.h']! + h['linux/iommufd.h']!;
  for (const d of uapiStructs()) t.match(text, new RegExp(`struct ${d.name} \\{`), d.name);
  t.match(h['linux/vfio.h']!, /#define VFIO_IOMMU_MAP_DMA _IO\(VFIO_TYPE, VFIO_BASE \+ 13\)/);
  t.match(h['linux/iommufd.h']!, /IOMMUFD_CMD_IOAS_MAP = 0x85,/);
  t.match(h['linux/iommufd.h']!, /#define IOMMU_IOAS_MAP _IO\(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP\)/);
  t.match(h['linux/vfio.h']!, /struct vfio_region_info_cap_sparse_mmap \{\n\tstruct vfio_info_cap_header header;/, 'a flattened capability header is nested again');
  t.match(h['linux/vfio.h']!, /__u64 \*data;/, 'vfio_bitmap.data is a pointer, as in Linux');
  t.match(h['linux/vfio.h']!, /#define VFIO_IOMMU_BIND _IO\(VFIO_TYPE, VFIO_BASE \+ 22\) \/\* ioemu: not in Linux 7.3 \*\//);
  t.ok(NOT_IN_LINUX.has('vfio_iommu_type1_bind'));
});

t.test('wasm32: the generated headers give every struct the tables\' size and offsets', async (t) => {
  const r = await buildC({ 'check.c': layoutCheckSource({ linux: false }) }, ['-O2']);
  t.ok(r.wasm.length > 0, `the layout check compiled${r.ms > 0 ? ` (${r.ms} ms)` : ' (cached)'}`);
});

t.test('the check bites: one wrong offset and the program does not compile', async (t) => {
  const src = layoutCheckSource({ linux: false }).replace('offsetof(struct iommu_ioas_map, iova) == 32', 'offsetof(struct iommu_ioas_map, iova) == 24');
  t.not(src, layoutCheckSource({ linux: false }), 'the assertion was there to break');
  await t.rejects(buildC({ 'check.c': src }, ['-O2']), /offsetof\(iommu_ioas_map, iova\)[^\n]*\n[^]*evaluates to '32 == 24'/);
});

t.test('x86-64 gcc: the tables match Linux 7.3\'s headers, and the generated headers compile natively too', async (t) => {
  if (!hasGcc() || !hasLinuxUapi()) {
    t.comment('skipped: needs gcc and the Linux 7.3 source tree');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ioemu-uapi-check-'));
  mkdirSync(join(dir, 'k73', 'linux'), { recursive: true });
  for (const h of ['vfio.h', 'iommufd.h', 'pci_regs.h']) copyFileSync(join(LINUX_UAPI, h), join(dir, 'k73', 'linux', h));
  writeFileSync(join(dir, 'linux.c'), layoutCheckSource({ linux: true }));
  // The tree's uapi headers keep the annotations headers_install strips.
  execFileSync('gcc', ['-D__user=', '-D__counted_by(x)=', '-I', join(dir, 'k73'), '-fsyntax-only', join(dir, 'linux.c')], { stdio: 'pipe' });
  t.pass('every table struct and constant is Linux 7.3\'s');
  for (const [p, text] of Object.entries(uapiHeaders())) {
    mkdirSync(join(dir, 'gen', p, '..'), { recursive: true });
    writeFileSync(join(dir, 'gen', p), text);
  }
  writeFileSync(join(dir, 'ioemu.c'), layoutCheckSource({ linux: false }));
  execFileSync('gcc', ['-I', join(dir, 'gen'), '-fsyntax-only', join(dir, 'ioemu.c')], { stdio: 'pipe' });
  t.pass('the generated headers give the same layouts on x86-64');
});
