/**
 * Shared Virtual Addressing with PRI: a process binds the DMA engine to its
 * own address space (VFIO_IOMMU_BIND on its type1 container gives a PASID),
 * points a work queue at that PASID and hands the device plain pointers from
 * its own heap: no MAP_DMA, no pinning. The destination has never been
 * touched, so it has no pages yet: each first write makes the engine's ATS
 * translation fail, the engine sends a page request (PRI), the IOMMU queues
 * it (SMMUv3 PRI queue / VT-d page request queue), the host's I/O page-fault
 * handler faults the page into the process and answers, and the engine
 * retries. The process then reads what the device wrote.
 * On virt-smmuv3 this takes the posted (unmerged) SMMUv3 PRI series
 * (`smmuPri: 'posted-series'`): mainline Linux 7.3's arm-smmu-v3 services no
 * page request, and the engine would report PAGE_FAULT instead.
 * Run: npx tsx examples/sva-pri.ts [pages]
 */
import {
  createMachine,
  type MachineKind,
  type DmaEngine,
  DESC_STATUS,
  EngineUser,
  vfioType1Setup,
} from '../src/index.ts';

const PAGE = 4096;

export interface SvaPriResult {
  pasid: number;
  status: string;
  verified: boolean;
  pageRequests: number;
  groupsAnswered: number;
  meanServiceNs: number;
  ns: number;
}

export function runSvaPri(kind: MachineKind, pages = 8, say: (s: string) => void = console.log): SvaPriResult {
  const m = createMachine(kind, { smmuPri: 'posted-series' });
  const p = m.host.spawn();
  const { v, container, device } = vfioType1Setup(m, p, '0000:00:01.0');
  const pasid = v.bindProcess(container);
  if (pasid < 0) throw new Error(`VFIO_IOMMU_BIND failed (${pasid})`);
  const engine = m.device('0000:00:01.0') as DmaEngine;
  say(`${kind}: VFIO_IOMMU_BIND: PASID ${pasid}; the IOMMU driver enabled ATS ${engine.ats.enabled ? 'on' : 'off'}, PRI ${engine.pri.enabled ? 'on' : 'off'}, PASID ${engine.pasid.enabled ? 'on' : 'off'}`);
  const user = new EngineUser(p, v, device);
  user.enable();
  user.configWq(0, { pasid });

  const src = p.mmap(pages * PAGE);
  const dst = p.mmap(pages * PAGE); // never touched: no pages behind it yet
  const rec = p.mmap(PAGE); // nor here
  const data = new Uint8Array(pages * PAGE).map((_, i) => (i * 31 + 7) & 0xff);
  p.memWrite(src, data); // the CPU faults the source in
  const c = m.board.counters;
  const req0 = c.get('iopf.requests');
  const grp0 = c.get('iopf.groups_answered');
  const lat = m.host.iopf.latencies;
  const [lat0, sum0] = [lat.count, lat.sum];
  const t0 = m.now();
  // Process virtual addresses, given straight to the device.
  user.memmove(0, { src, dst, length: pages * PAGE, record: rec });
  m.run();
  const ns = m.now() - t0;
  const r = user.record(rec);
  const status = r.status === DESC_STATUS.SUCCESS ? 'SUCCESS' : r.statusName;
  const out = p.memRead(dst, pages * PAGE);
  const verified = out instanceof Uint8Array && out.every((b, i) => b === data[i]);
  const meanServiceNs = lat.count > lat0 ? (lat.sum - sum0) / (lat.count - lat0) : 0;
  const pageRequests = c.get('iopf.requests') - req0;
  const groupsAnswered = c.get('iopf.groups_answered') - grp0;
  say(`${kind}: MEMMOVE of ${pages} pages to untouched memory: ${status}, ${verified ? 'the process reads what the device wrote' : 'data WRONG'}; ` +
    `${pageRequests} page requests (the destination's pages and the completion record's), ${groupsAnswered} groups answered by the host (mean service ${meanServiceNs} ns); ${ns} ns of virtual time`);
  v.unbindProcess(container);
  p.exit();
  return { pasid, status, verified, pageRequests, groupsAnswered, meanServiceNs, ns };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const pages = Number(process.argv[2] ?? 8);
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) runSvaPri(kind, pages);
}
