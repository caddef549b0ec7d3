/**
 * iommufd's locked-memory accounting (drivers/iommu/iommufd/pages.c,
 * iommufd_option_rlimit_mode in main.c): by default (RLIMIT_MODE 0,
 * IOPT_PAGES_ACCOUNT_USER) pinned pages are charged to the uid's
 * user->locked_vm, shared by every process of that uid, against the pinning
 * task's RLIMIT_MEMLOCK; mode 1 (IOPT_PAGES_ACCOUNT_MM, needs
 * CAP_SYS_RESOURCE and an empty context) charges mm->locked_vm as VFIO does;
 * CAP_IPC_LOCK charges nothing. mm->pinned_vm counts the pins in every mode.
 */
import t from 'tap';
import { EBUSY, ENOMEM, EPERM } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { IOMMU_IOAS_COPY, IOMMU_OPTION, IOMMU_OPTION_OP_GET, IOMMU_OPTION_OP_SET, IOMMU_OPTION_RLIMIT_MODE, iommu_ioas_copy, iommu_option } from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { attach, bind, ioasAlloc, map, PAGE, setup, unmap } from './fixture.ts';

function rlimitMode(p: Process, fd: number, op: number, val = 0n): [number, bigint] {
  const b = encodeStruct(iommu_option, { size: iommu_option.size, option_id: IOMMU_OPTION_RLIMIT_MODE, op, val64: val });
  const r = p.ioctl(fd, IOMMU_OPTION, b);
  return [r, new StructView(iommu_option, b).big('val64')];
}

/** A context of `p` with an IOAS the DMA device is attached to (so maps pin at once). */
function attached(f: ReturnType<typeof setup>, p: Process, minor: number): { fd: number; ioas: number; cdev: number } {
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [cdev] = bind(p, fd, minor);
  if (attach(p, cdev, ioas)[0] < 0) throw new Error('attach');
  return { fd, ioas, cdev };
}

t.test('two processes of one uid share user->locked_vm and its limit; another uid has its own', async (t) => {
  const f = setup();
  const limit = 8 * PAGE;
  const a = f.spawn({ uid: 1234, memlockLimit: limit });
  const b = f.spawn({ uid: 1234, memlockLimit: limit });
  const c = f.spawn({ uid: 4321, memlockLimit: limit });
  t.equal(a.user, b.user, 'one user_struct per uid');
  t.not(a.user, c.user);
  const ca = attached(f, a, f.vdma.minor);
  const cb = attached(f, b, f.vbare.minor);
  const va = a.mmap(6 * PAGE);
  const vb = b.mmap(6 * PAGE);
  t.equal(map(a, ca.fd, ca.ioas, va, 6 * PAGE, 0x40_0000)[0], 0);
  t.equal(a.user.lockedVm, 6, 'charged to the uid');
  t.equal(a.mm.lockedVm, 0, 'not to the mm');
  t.equal(a.mm.pinnedVm, 6, 'pinned_vm counts the pins');
  t.equal(map(b, cb.fd, cb.ioas, vb, 6 * PAGE, 0x40_0000)[0], -ENOMEM, 'the second process of the uid passes the shared limit');
  t.equal(b.user.lockedVm, 6, 'nothing more charged');
  t.equal(b.mm.pinnedVm, 0, 'nothing pinned');
  t.equal(map(b, cb.fd, cb.ioas, vb, 2 * PAGE, 0x40_0000)[0], 0, 'what is left of the limit still fits');
  t.equal(a.user.lockedVm, 8);
  // Another uid has its own count (it takes over the device a lets go).
  t.equal(unmap(a, ca.fd, ca.ioas, 0x40_0000, 6 * PAGE)[0], 0);
  t.equal(a.user.lockedVm, 2, 'unmap uncharges');
  t.equal(a.close(ca.cdev), 0);
  const cc = attached(f, c, f.vdma.minor);
  const vc = c.mmap(8 * PAGE);
  t.equal(map(c, cc.fd, cc.ioas, vc, 8 * PAGE, 0x40_0000)[0], 0, 'uid 4321 has its own 8 pages');
  t.equal(c.user.lockedVm, 8);
  t.equal(b.user.lockedVm, 2, 'uid 1234 unchanged');
  b.exit();
  t.equal(b.user.lockedVm, 0, 'exit releases the context and uncharges');
  c.exit();
  t.equal(c.user.lockedVm, 0);
});

t.test('RLIMIT_MODE: GET works for anyone; SET needs CAP_SYS_RESOURCE and an empty context; mode 1 charges the mm', async (t) => {
  const f = setup();
  t.same(rlimitMode(f.p, f.fd, IOMMU_OPTION_OP_GET), [0, 0n], 'default: user accounting');
  t.equal(rlimitMode(f.p, f.fd, IOMMU_OPTION_OP_SET, 1n)[0], -EPERM, 'an unprivileged user cannot change it');
  const root = f.spawn({ uid: 0, memlockLimit: 4 * PAGE });
  const fd = root.open('/dev/iommu');
  t.equal(rlimitMode(root, fd, IOMMU_OPTION_OP_SET, 1n)[0], 0);
  t.same(rlimitMode(root, fd, IOMMU_OPTION_OP_GET), [0, 1n]);
  const ioas = ioasAlloc(root, fd);
  t.equal(rlimitMode(root, fd, IOMMU_OPTION_OP_SET, 0n)[0], -EBUSY, 'an object exists');
  const [cdev] = bind(root, fd, f.vdma.minor);
  t.equal(attach(root, cdev, ioas)[0], 0);
  const va = root.mmap(8 * PAGE);
  t.equal(map(root, fd, ioas, va, 8 * PAGE, 0x40_0000)[0], -ENOMEM, 'mm mode: RLIMIT_MEMLOCK against mm->locked_vm');
  t.equal(map(root, fd, ioas, va, 4 * PAGE, 0x40_0000)[0], 0);
  t.equal(root.mm.lockedVm, 4, 'charged to the mm');
  t.equal(root.user.lockedVm, 0, 'not to the user');
  t.equal(root.mm.pinnedVm, 4);
  root.exit();
  t.equal(root.user.lockedVm, 0);
});

t.test('CAP_IPC_LOCK: pinned but charged to nobody, whatever the limit', async (t) => {
  const f = setup();
  const p = f.spawn({ capIpcLock: true, memlockLimit: 0 });
  const c = attached(f, p, f.vdma.minor);
  const va = p.mmap(16 * PAGE);
  t.equal(map(p, c.fd, c.ioas, va, 16 * PAGE, 0x40_0000)[0], 0);
  t.equal(p.mm.pinnedVm, 16);
  t.equal(p.mm.lockedVm, 0);
  t.equal(p.user.lockedVm, 0);
});

t.test('a COPY of part of a mapping pins and charges only the pages it covers', async (t) => {
  const f = setup();
  const p = f.spawn({ memlockLimit: 2 ** 30 });
  const fd = p.open('/dev/iommu');
  const src = ioasAlloc(p, fd);
  const va = p.mmap(16 * PAGE);
  t.equal(map(p, fd, src, va, 16 * PAGE, 0x40_0000)[0], 0, 'no domain: nothing pinned');
  t.equal(p.mm.pinnedVm, 0);
  const dst = ioasAlloc(p, fd);
  const [cdev] = bind(p, fd, f.vdma.minor);
  t.equal(attach(p, cdev, dst)[0], 0);
  const b = encodeStruct(iommu_ioas_copy, {
    size: iommu_ioas_copy.size,
    flags: 7, // FIXED_IOVA | WRITEABLE | READABLE
    dst_ioas_id: dst,
    src_ioas_id: src,
    length: 4 * PAGE,
    dst_iova: 0x80_0000,
    src_iova: 0x40_0000 + 4 * PAGE,
  });
  t.equal(p.ioctl(fd, IOMMU_IOAS_COPY, b), 0);
  t.equal(p.mm.pinnedVm, 4, 'the 4 copied pages, not the whole source mapping');
  t.equal(p.user.lockedVm, 4);
  t.equal(p.close(cdev), 0);
  t.equal(p.mm.pinnedVm, 0);
  t.equal(p.user.lockedVm, 0);
});
