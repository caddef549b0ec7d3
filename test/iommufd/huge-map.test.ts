/**
 * IOMMU_IOAS_MAP of a range far larger than the machine's memory. Linux takes
 * up to SIZE_MAX - PAGE_SIZE bytes and keeps nothing per page until a domain
 * needs the pages (iopt_alloc_user_pages, and the pfns in an xarray as they
 * are pinned), so without a domain such a map succeeds; with one, pinning
 * stops at the first page the process does not have (-EFAULT) and nothing
 * stays pinned or charged. Found by fuzzing (seed 7022): the emulator made
 * per-page arrays for the whole range first, and threw.
 */
import t from 'tap';
import { EFAULT, ENOENT } from '../../src/uapi/errno.ts';
import type { MachineKind } from '../../machines/layout.ts';
import { attach, bind, ioasAlloc, map, PAGE, setup, unmap } from './fixture.ts';

const HUGE = 2 ** 46;
/** Above every reserved region and inside a 48-bit aperture. */
const IOVA = 2 ** 41;

for (const kind of ['q35-vtd', 'virt-smmuv3'] as MachineKind[]) {
  t.test(`${kind}: a 64 TiB map without a domain pins nothing and succeeds; an attach then fails -EFAULT and changes nothing`, async (t) => {
    const f = setup({ kind });
    const p = f.spawn({ memlockLimit: 2 ** 30 });
    const fd = p.open('/dev/iommu');
    const ioas = ioasAlloc(p, fd);
    const va = p.mmap(4 * PAGE);
    p.memWrite(va, new Uint8Array(4 * PAGE).fill(7));
    t.equal(map(p, fd, ioas, va, HUGE, IOVA)[0], 0, 'the map takes the range as it is');
    t.equal(p.mm.pinnedVm, 0, 'nothing pinned');
    const [cdev] = bind(p, fd, f.vdma.minor);
    t.equal(attach(p, cdev, ioas)[0], -EFAULT, 'filling the domain reaches pages the process does not have');
    t.equal(p.mm.pinnedVm, 0, 'the pages pinned before that are let go');
    t.equal(p.user.lockedVm, 0, 'and nothing charged');
    t.same(unmap(p, fd, ioas, IOVA, HUGE), [0, BigInt(HUGE)], 'the mapping is still there, whole');
    t.equal(attach(p, cdev, ioas)[0], 0, 'with it gone the device attaches');
  });

  t.test(`${kind}: with a domain, a 64 TiB map fails -EFAULT at the first missing page, and nothing stays`, async (t) => {
    const f = setup({ kind });
    const p = f.spawn({ memlockLimit: 2 ** 30 });
    const fd = p.open('/dev/iommu');
    const ioas = ioasAlloc(p, fd);
    const [cdev] = bind(p, fd, f.vdma.minor);
    t.equal(attach(p, cdev, ioas)[0], 0, 'attached: maps pin at once');
    const va = p.mmap(4 * PAGE);
    t.equal(map(p, fd, ioas, va, HUGE, IOVA)[0], -EFAULT, 'the pin stops past the 4 pages the process has');
    t.equal(p.mm.pinnedVm, 0, 'nothing pinned');
    t.equal(p.user.lockedVm, 0, 'nothing charged');
    t.equal(unmap(p, fd, ioas, IOVA, HUGE)[0], -ENOENT, 'no mapping was made');
    t.equal(map(p, fd, ioas, va, 4 * PAGE, IOVA)[0], 0, 'the process\'s 4 pages map');
    t.equal(p.mm.pinnedVm, 4, 'and pin');
  });
}
