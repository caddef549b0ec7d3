/**
 * iommufd across fork(2), as the kernel's selftests iommufd_ioas.fork_gone
 * and fork_present (tools/testing/selftests/iommu/iommufd.c) check it, with
 * a real device standing in for the mock domain: a child maps its copy of a
 * buffer into the parent's IOAS through the inherited fd. The pages object
 * belongs to the child's mm (pages->source_mm): pinned at once if the IOAS
 * has a domain (they then outlive the child), pinned from the child's mm
 * when a domain comes later while the child lives (a remote pin), and
 * impossible to pin once it is gone (-EFAULT).
 */
import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { EFAULT } from '../../src/uapi/errno.ts';
import { IOMMU_HWPT_ALLOC, iommu_hwpt_alloc } from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { attach, bind, ioasAlloc, map, PAGE } from './fixture.ts';

const IOVA = 0x40_0000;
const LEN = 4 * PAGE;

function forked(p: Process): Process {
  const c = p.fork();
  return c;
}

function setup(kind: 'virt-smmuv3' | 'q35-vtd') {
  const m = createMachine(kind, { ramBytes: 256 * 2 ** 20 });
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const buffer = p.mmap(LEN, { populate: true });
  p.memWrite(buffer, new TextEncoder().encode('before fork'));
  for (const bdf of ['0000:00:01.0', '0000:00:02.0']) m.device(bdf).config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  const read = (bdf: string) => {
    const r = m.device(bdf).dmaRead(BigInt(IOVA), 11);
    return r.ok ? new TextDecoder().decode(r.data) : r.fault;
  };
  return { m, p, fd, ioas, buffer, read };
}

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: fork_gone without a domain: the child mapped and exited; pinning from its mm is now impossible (-EFAULT)`, async (t) => {
    const { p, fd, ioas, buffer } = setup(kind);
    const c = forked(p);
    t.equal(map(c, fd, ioas, buffer, LEN, IOVA)[0], 0, 'the child maps through the inherited iommufd');
    t.equal(c.mm.pinnedVm, 0, 'nothing pinned without a domain');
    c.exit();
    const [cdev] = bind(p, fd, 0);
    t.equal(attach(p, cdev, ioas)[0], -EFAULT, 'the domain cannot pin the gone mm\'s pages');
    t.equal(p.mm.pinnedVm, 0);
  });

  t.test(`${kind}: fork_gone with a domain: the child's pins outlive it; a new domain is filled from them; the parent's later writes do not reach the device`, async (t) => {
    const { m, p, fd, ioas, buffer, read } = setup(kind);
    const [cdev] = bind(p, fd, 0);
    t.equal(attach(p, cdev, ioas)[0], 0);
    const c = forked(p);
    c.memWrite(buffer, new TextEncoder().encode('child wrote'));
    t.equal(map(c, fd, ioas, buffer, LEN, IOVA)[0], 0);
    t.equal(c.mm.pinnedVm, 4, 'pinned in the child\'s mm');
    t.equal(p.mm.pinnedVm, 0, 'not in the parent\'s');
    t.equal(c.user.lockedVm, 4, 'charged to the uid (the same user_struct as the parent\'s)');
    c.exit();
    t.equal(read('0000:00:01.0'), 'child wrote', 'the pinned pages stay mapped');
    // A second device with a HWPT of its own: a new domain on the IOAS, filled from the existing pins.
    const [cdev2, dev2] = bind(p, fd, 1);
    const hb = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, dev_id: dev2, pt_id: ioas });
    t.equal(p.ioctl(fd, IOMMU_HWPT_ALLOC, hb), 0);
    const hwpt2 = new StructView(iommu_hwpt_alloc, hb).num('out_hwpt_id');
    t.equal(attach(p, cdev2, hwpt2)[0], 0);
    t.equal(read('0000:00:02.0'), 'child wrote', 'the new domain maps the child\'s pinned pages');
    t.equal(p.mm.pinnedVm, 0, 'without pinning anything again');
    t.equal(read('0000:00:01.0'), 'child wrote');
    p.memWrite(buffer, new TextEncoder().encode('parent now '));
    t.equal(read('0000:00:01.0'), 'child wrote', 'the device keeps the child\'s pages');
    t.equal(m.host.users.get(p.uid).lockedVm, 4, 'still charged while mapped');
  });

  t.test(`${kind}: fork_present: a domain that comes while the child lives pins from the child's mm (a remote pin)`, async (t) => {
    const { p, fd, ioas, buffer, read } = setup(kind);
    const c = forked(p);
    c.memWrite(buffer, new TextEncoder().encode('child alive'));
    t.equal(map(c, fd, ioas, buffer, LEN, IOVA)[0], 0);
    const [cdev] = bind(p, fd, 0);
    t.equal(attach(p, cdev, ioas)[0], 0, 'pinned from the child\'s mm');
    t.equal(c.mm.pinnedVm, 4);
    t.equal(read('0000:00:01.0'), 'child alive');
    t.equal(p.mm.pinnedVm, 0);
    c.exit();
    t.equal(read('0000:00:01.0'), 'child alive', 'the pins outlive the child');
  });
}
