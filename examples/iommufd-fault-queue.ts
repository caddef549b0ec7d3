/**
 * iommufd with a fault queue handled in user space (q35-vtd): the VMM binds
 * the DMA engine to iommufd, allocates an IOAS and a fault queue, allocates
 * an IOPF-capable HWPT with the queue and attaches the device to it. It maps
 * nothing up front: when the device writes to an IOVA, the page request
 * reaches the queue; the VMM's fault thread (polling every microsecond of
 * virtual time) reads the `iommu_hwpt_pgfault` record, maps a page there
 * with IOMMU_IOAS_MAP and writes an `iommu_hwpt_page_response`; the device
 * retries and the DMA completes.
 * Run: npx tsx examples/iommufd-fault-queue.ts
 */
import {
  createMachine,
  CFG,
  COMMAND,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  iommu_fault_alloc,
  iommu_hwpt_alloc,
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
  vfio_device_attach_iommufd_pt,
  encodeStruct,
  StructView,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  ioasMap,
  iommufdSetup,
} from '../src/index.ts';

const PAGE = 4096;

export function runFaultQueueExample(say: (s: string) => void = console.log): { ok: boolean; faults: number } {
  const m = createMachine('q35-vtd', { ramBytes: 256 * 2 ** 20 });
  const dev = m.device('0000:00:01.0');
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const backing = p.mmap(4 * PAGE, { populate: true }); // what the fault handler maps in
  const { iommufd: fd, device: cdev, devId, ioas } = iommufdSetup(m, p, dev.bdf);

  const fa = encodeStruct(iommu_fault_alloc, { size: iommu_fault_alloc.size });
  if (p.ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, fa) !== 0) throw new Error('IOMMU_FAULT_QUEUE_ALLOC failed');
  const faultId = new StructView(iommu_fault_alloc, fa).num('out_fault_id');
  const ffd = new StructView(iommu_fault_alloc, fa).num('out_fault_fd');
  const ha = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags: IOMMU_HWPT_FAULT_ID_VALID, dev_id: devId, pt_id: ioas, fault_id: faultId });
  if (p.ioctl(fd, IOMMU_HWPT_ALLOC, ha) !== 0) throw new Error('IOMMU_HWPT_ALLOC failed');
  const hwpt = new StructView(iommu_hwpt_alloc, ha).num('out_hwpt_id');
  const at = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: hwpt });
  if (p.ioctl(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, at) !== 0) throw new Error('attach to the IOPF-capable HWPT failed');
  say(`device ${dev.bdf} (dev_id ${devId}) attached to HWPT ${hwpt} with fault queue ${faultId} (fd ${ffd}); nothing mapped yet`);
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);

  // The VMM's fault thread.
  let faults = 0;
  let running = true;
  const poll = (): void => {
    if (!running) return;
    const d = p.read(ffd, 4 * iommu_hwpt_pgfault.size);
    if (d instanceof Uint8Array) {
      for (let off = 0; off < d.length; off += iommu_hwpt_pgfault.size) {
        const rec = new StructView(iommu_hwpt_pgfault, d.slice(off, off + iommu_hwpt_pgfault.size));
        const iova = rec.big('addr') & ~BigInt(PAGE - 1);
        ioasMap(p, fd, ioas, backing + BigInt(faults * PAGE), iova, PAGE);
        p.write(ffd, encodeStruct(iommu_hwpt_page_response, { cookie: rec.num('cookie'), code: IOMMUFD_PAGE_RESP_SUCCESS }));
        say(`  fault thread at t=${m.now()} ns: page request from dev_id ${rec.num('dev_id')} for IOVA 0x${iova.toString(16)}; mapped it, answered SUCCESS`);
        faults++;
      }
    }
    m.board.scheduler.schedule(1000, poll, 'vmm-fault-thread');
  };
  m.board.scheduler.schedule(1000, poll, 'vmm-fault-thread');

  const t0 = m.now();
  const w = dev.dmaWrite(0x7700_0010n, new TextEncoder().encode('written after a user-space fault'));
  say(`device write to IOVA 0x77000010: ${w.ok ? 'ok' : w.fault} after ${m.now() - t0} ns of virtual time`);
  const seen = p.memRead(backing + 0x10n, 32);
  const ok = w.ok && seen instanceof Uint8Array && new TextDecoder().decode(seen) === 'written after a user-space fault';
  say(`the process reads its memory: "${seen instanceof Uint8Array ? new TextDecoder().decode(seen) : seen}"`);
  running = false;
  m.run();
  p.exit();
  return { ok, faults };
}

if (import.meta.url === `file://${process.argv[1]}`) runFaultQueueExample();
