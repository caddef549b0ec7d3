/**
 * Invariants checkable on a machine at any point (issue 9, DESIGN.md §5):
 * what the front ends believe (VFIO type1 DMA lists, iommufd IO page tables)
 * against what the host and the IOMMUs actually hold.
 *
 * State read, and how stable it is:
 * - public API: host.allocator.pagesInUse, host.pages.count()/liveRuns,
 *   host.processes, Process.file(fd), Mm.areas()/headOf()/lockedVm/pinnedVm/alive,
 *   host.iommu.groups (IommuGroup.domain/defaultDomain/owner),
 *   IommuDomain.iovaToPhys(), host.sva.handles(), host.iommu.domainForPasid(),
 *   device.dmaRead() and board.sysmem;
 * - internal but stable front-end state (the kernel's own structures):
 *   vfioModule(host).groups -> VfioGroup.container.iommu (VfioIommu: dmas,
 *   domains, released; VfioDma: iova, size, prot, runs, pins, lockedPages,
 *   owner, pinMm), IommufdFile.ctx / boundDevice(file).ctx -> IommufdCtx.objects
 *   (Ioas.iopt: areas, domains; Area/Pages: iova, length, pages, startByte,
 *   pas, heads, pinned, accountMode, proc; IommufdDevice.attached).
 *
 * The checker never throws: an exception while checking is itself reported.
 * DMA probes (option `dma`, default on) issue real DMAs from a device of the
 * container or HWPT: they fill IOTLBs/ATCs and a probe of an unmapped IOVA
 * records an IOMMU fault, as any DMA would. They are how a stale IOTLB or ATC
 * entry is caught without reading cache internals: a DMA to an IOVA unmapped
 * since must fault.
 */
import type { Machine } from '../../machines/machine.ts';
import { IOMMU_READ } from '../../src/iommu-core/io-pgtable.ts';
import type { Process } from '../../src/host/process.ts';
import type { IommuDomain } from '../../src/iommu-core/domain.ts';
import { boundDevice, IommufdFile } from '../../src/iommufd/main.ts';
import { Ioas, IommufdDevice, type IommufdCtx } from '../../src/iommufd/objects.ts';
import type { Pages } from '../../src/iommufd/pages.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import type { PciFunction } from '../../src/pci/pci-function.ts';
import { VfioDeviceFile } from '../../src/vfio/device-file.ts';
import { vfioModule } from '../../src/vfio/module.ts';
import type { VfioIommu } from '../../src/vfio/type1.ts';
import { Attachment } from '../../src/lib/attachment.ts';

const PAGE = 4096;
const MAX_FD = 1024;

export type ViolationKind =
  | 'page-leak'
  | 'page-refs'
  | 'locked-vm'
  | 'pinned-vm'
  | 'translation'
  | 'unmapped-translates'
  | 'stale-iotlb'
  | 'group-state'
  | 'sva'
  | 'exception';

export interface Violation {
  kind: ViolationKind;
  message: string;
}

export interface InvariantOptions {
  /** Pages in use on the idle machine; default: what recordBaseline() saw, else the leak check is skipped. */
  baseline?: number;
  /** Probe translations with DMAs (default true). */
  dma?: boolean;
  /** Pages sampled per mapped run (first, last and evenly between; default 8). */
  samples?: number;
}

// --- baseline, exceptions and unmap history, per machine -------------------------------

interface MachineState {
  baseline?: number;
  exceptions: string[];
  /** IOVA ranges VFIO unmapped since the monitor started: they must fault unless mapped again. */
  unmapped: { iova: number; size: number }[];
  monitoring: boolean;
}

const states = new Attachment<Machine, MachineState>('invariant state');

function state(m: Machine): MachineState {
  return states.get(m) ?? states.set(m, { exceptions: [], unmapped: [], monitoring: false });
}

/**
 * Remember the machine's idle page count (call on a fresh machine, before any
 * process); `extra` pages are allowed on top (driver state allocated lazily on
 * first use and kept for the machine's life, such as SMMUv3 SVA structures).
 */
export function recordBaseline(m: Machine, extra = 0): number {
  const n = m.host.allocator.pagesInUse + extra;
  state(m).baseline = n;
  return n;
}

/** Start remembering VFIO unmaps, so a later check probes that their IOVAs fault (no stale IOTLB/ATC). */
export function monitorUnmaps(m: Machine): void {
  const s = state(m);
  if (s.monitoring) return;
  s.monitoring = true;
  m.board.tracer.on('vfio.unmap', (r) => {
    if (s.unmapped.length < 256) s.unmapped.push({ iova: r.args.iova, size: r.args.size });
  });
}

/**
 * Run `fn` as a syscall into the emulated kernel: an exception escaping it
 * is a kernel oops, recorded for checkInvariants() and returned as
 * { exception } instead of thrown.
 */
export function guard<T>(m: Machine, fn: () => T): { value: T } | { exception: string } {
  try {
    return { value: fn() };
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack?.split('\n').slice(1, 6).join('\n') ?? ''}` : String(e);
    state(m).exceptions.push(msg);
    return { exception: msg };
  }
}

/** Exceptions guard() caught so far on this machine. */
export function exceptionsOf(m: Machine): readonly string[] {
  return state(m).exceptions;
}

// --- discovery --------------------------------------------------------------------------

function containers(m: Machine): VfioIommu[] {
  const out = new Set<VfioIommu>();
  for (const g of vfioModule(m.host).groups.values()) {
    const i = g.container?.iommu;
    if (i !== undefined && !i.released) out.add(i);
  }
  return [...out];
}

function iommufdContexts(m: Machine): IommufdCtx[] {
  const out = new Set<IommufdCtx>();
  for (const p of m.host.processes.values()) {
    for (let fd = 0; fd < MAX_FD; fd++) {
      const f = p.file(fd);
      if (f === undefined) continue;
      if (f instanceof IommufdFile) out.add(f.ctx);
      else if (f instanceof VfioDeviceFile) {
        const d = boundDevice(f);
        if (d !== undefined) out.add(d.ctx);
      }
    }
  }
  return [...out];
}

function ioasesOf(ctx: IommufdCtx): Ioas[] {
  return [...ctx.objects.values()].filter((o): o is Ioas => o instanceof Ioas);
}

function pagesOf(ioas: Ioas): Set<Pages> {
  const s = new Set<Pages>();
  for (const n of ioas.iopt.areas.all()) s.add(n.value.pages);
  return s;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function sampleOffsets(size: number, samples: number): number[] {
  const pages = Math.floor(size / PAGE);
  if (pages <= samples) return Array.from({ length: pages }, (_, i) => i * PAGE);
  const out = new Set<number>([0, (pages - 1) * PAGE]);
  for (let i = 1; i < samples - 1; i++) out.add(Math.floor((i * (pages - 1)) / (samples - 1)) * PAGE);
  return [...out].sort((a, b) => a - b);
}

/** A DMA read from `dev` with Bus Master Enable forced on for the probe (restored after). */
function probeRead(dev: PciFunction, iova: number, len: number): { ok: true; data: Uint8Array } | { ok: false; fault: string } {
  const cmd = dev.config.get16(CFG.COMMAND);
  const needBme = (cmd & COMMAND.MASTER) === 0;
  if (needBme) dev.config.write(CFG.COMMAND, 2, cmd | COMMAND.MASTER);
  try {
    const r = dev.dmaRead(BigInt(iova), len);
    return r.ok ? { ok: true, data: r.data ?? new Uint8Array(len) } : { ok: false, fault: r.fault };
  } finally {
    if (needBme) dev.config.write(CFG.COMMAND, 2, cmd);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// --- the checks -------------------------------------------------------------------------

/** Every invariant that holds on a healthy machine; [] when all hold. */
export function checkInvariants(m: Machine, opts: InvariantOptions = {}): Violation[] {
  const out: Violation[] = [];
  const st = state(m);
  for (const e of st.exceptions) out.push({ kind: 'exception', message: `an exception escaped the emulated kernel: ${e}` });
  const run = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      out.push({ kind: 'exception', message: `checking ${what} threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}` });
    }
  };
  run('page accounting', () => checkPages(m, opts.baseline ?? st.baseline, out));
  run('VFIO translations', () => checkVfio(m, opts, st, out));
  run('iommufd translations', () => checkIommufd(m, opts, out));
  run('groups', () => checkGroups(m, out));
  run('SVA', () => checkSva(m, out));
  return out;
}

function checkPages(m: Machine, baseline: number | undefined, out: Violation[]): void {
  const host = m.host;
  const expectRefs = new Map<number, number>();
  const add = (head: number, n = 1) => expectRefs.set(head, (expectRefs.get(head) ?? 0) + n);
  const locked = new Map<Process, number>();
  const pinned = new Map<unknown, number>();
  const bump = <K>(map: Map<K, number>, k: K, n: number) => map.set(k, (map.get(k) ?? 0) + n);

  for (const p of host.processes.values()) {
    if (!p.mm.alive) continue;
    for (const v of p.mm.areas()) {
      for (let a = v.start; a < v.end; a += v.pageSize) {
        const h = p.mm.headOf(a);
        if (h !== undefined) add(h);
      }
    }
  }
  // A memfd's page cache holds one reference on each of its pages.
  for (const f of host.memfds) for (const head of f.cachedPages()) add(head);
  for (const c of containers(m)) {
    for (const d of c.dmas) {
      let pins = 0;
      for (const pin of d.pins) {
        for (let i = 0; i < pin.count; i++) add(pin.heads[i]!);
        bump(pinned, d.pinMm, pin.count);
        pins += pin.count;
      }
      bump(locked, d.owner, d.lockedPages);
      // RAM runs are pinned and charged page for page; device-memory runs (reserved pfns) neither.
      let ram = 0;
      for (const r of d.runs) if (r.mmio !== true) ram += r.size / PAGE;
      if (pins !== ram || d.lockedPages !== ram) {
        out.push({ kind: 'pinned-vm', message: `VFIO DMA at ${hex(d.iova)}: ${ram} RAM pages mapped, but ${pins} pinned and ${d.lockedPages} charged` });
      }
    }
  }
  const allPages = new Set<Pages>();
  for (const ctx of iommufdContexts(m)) for (const ioas of ioasesOf(ctx)) for (const p of pagesOf(ioas)) allPages.add(p);
  // iommufd pins page by page; user-mode pages charge the uid's user_struct, mm-mode pages the mm.
  const userLocked = new Map<unknown, number>();
  for (const p of allPages) {
    if (!p.pinned) continue;
    p.forEachPinned((_i, _pa, head) => add(head));
    bump(pinned, p.proc.mm, p.npinned);
    if (p.accountMode === 'mm') bump(locked, p.proc, p.npinned);
    else if (p.accountMode === 'user') bump(userLocked, p.proc.user, p.npinned);
  }
  for (const u of host.users.all()) {
    const l = userLocked.get(u) ?? 0;
    if (u.lockedVm !== l) out.push({ kind: 'locked-vm', message: `uid ${u.uid}: user locked_vm is ${u.lockedVm} pages; iommufd mappings charge ${l}` });
  }

  let bad = 0;
  for (const [head, n] of expectRefs) {
    const got = host.pages.count(head);
    if (got !== n && bad++ < 8) out.push({ kind: 'page-refs', message: `page run ${hex(head)} has ${got} references; mappings and pins account for ${n}` });
  }
  if (host.pages.liveRuns !== expectRefs.size) {
    out.push({
      kind: 'page-refs',
      message: `${host.pages.liveRuns} page runs hold references but mappings and pins account for ${expectRefs.size} (a pin or mapping reference leaked, or was dropped twice)`,
    });
  }
  for (const p of host.processes.values()) {
    if (!p.mm.alive) continue;
    const l = locked.get(p) ?? 0;
    if (p.mm.lockedVm !== l) out.push({ kind: 'locked-vm', message: `pid ${p.pid}: locked_vm is ${p.mm.lockedVm} pages; VFIO and iommufd mappings charge ${l}` });
    const n = pinned.get(p.mm) ?? 0;
    if (p.mm.pinnedVm !== n) out.push({ kind: 'pinned-vm', message: `pid ${p.pid}: pinned_vm is ${p.mm.pinnedVm} pages; VFIO and iommufd pins hold ${n}` });
  }
  if (baseline !== undefined && host.processes.size === 0) {
    const now = host.allocator.pagesInUse;
    if (now > baseline) out.push({ kind: 'page-leak', message: `every process exited but ${now} pages are in use; the idle machine used ${baseline} (${now - baseline} leaked)` });
  }
}

/** Check one mapped page range through a domain: iovaToPhys, then (optionally) a DMA read compared with memory. */
function checkMapped(
  m: Machine,
  what: string,
  domain: IommuDomain,
  dev: PciFunction | undefined,
  iova: number,
  pa: number,
  size: number,
  readable: boolean,
  opts: InvariantOptions,
  out: Violation[],
): void {
  for (const off of sampleOffsets(size, opts.samples ?? 8)) {
    const got = domain.iovaToPhys(iova + off);
    if (got !== pa + off) {
      out.push({ kind: 'translation', message: `${what}: IOVA ${hex(iova + off)} should translate to ${hex(pa + off)}; the domain gives ${got < 0 ? 'nothing' : hex(got)}` });
      return;
    }
    if (opts.dma !== false && dev !== undefined && readable) {
      const r = probeRead(dev, iova + off, 8);
      const expect = new Uint8Array(8);
      m.board.sysmem.readInto(pa + off, expect);
      if (!r.ok) {
        out.push({ kind: 'translation', message: `${what}: a DMA from ${dev.bdf} to mapped IOVA ${hex(iova + off)} faulted (${r.fault})` });
        return;
      }
      if (!sameBytes(r.data, expect)) {
        out.push({ kind: 'translation', message: `${what}: a DMA from ${dev.bdf} to IOVA ${hex(iova + off)} read other bytes than page ${hex(pa + off)} holds` });
        return;
      }
    }
  }
}

function checkUnmapped(what: string, domain: IommuDomain, dev: PciFunction | undefined, iova: number, opts: InvariantOptions, out: Violation[], stale: boolean): void {
  const got = domain.iovaToPhys(iova);
  if (got >= 0) {
    out.push({ kind: 'unmapped-translates', message: `${what}: IOVA ${hex(iova)} is not mapped but the domain translates it to ${hex(got)}` });
    return;
  }
  if (opts.dma !== false && dev !== undefined) {
    const r = probeRead(dev, iova, 8);
    if (r.ok) {
      out.push({
        kind: stale ? 'stale-iotlb' : 'unmapped-translates',
        message: `${what}: a DMA from ${dev.bdf} to unmapped IOVA ${hex(iova)} succeeded${stale ? ' after its unmap returned (a stale IOTLB or ATC entry)' : ''}`,
      });
    }
  }
}

function checkVfio(m: Machine, opts: InvariantOptions, st: MachineState, out: Violation[]): void {
  for (const c of containers(m)) {
    for (const vd of c.domains) {
      const dev = vd.groups[0]?.iommuGroup.devices[0];
      const what = `VFIO container (group ${vd.groups.map((g) => g.iommuGroup.id).join(',')})`;
      for (const dma of c.dmas) {
        let covered = 0;
        for (const run of dma.runs) {
          // A device-memory run (a BAR mmap) is checked in the domain only: a probe read of registers may have side effects.
          checkMapped(m, what, vd.domain, dev, run.iova, run.pa, run.size, (dma.prot & IOMMU_READ) !== 0 && run.mmio !== true, opts, out);
          covered += run.size;
        }
        if (covered !== dma.size) out.push({ kind: 'translation', message: `${what}: DMA at ${hex(dma.iova)} is ${dma.size} bytes but its runs cover ${covered}` });
        const after = dma.iova + dma.size;
        if (c.dmas.find(after, PAGE) === undefined) checkUnmapped(what, vd.domain, dev, after, opts, out, false);
      }
      for (const u of st.unmapped) {
        for (const off of sampleOffsets(u.size, 2)) {
          const iova = u.iova + off;
          if (c.dmas.find(iova, PAGE) === undefined) checkUnmapped(what, vd.domain, dev, iova, opts, out, true);
        }
      }
    }
  }
}

function checkIommufd(m: Machine, opts: InvariantOptions, out: Violation[]): void {
  for (const ctx of iommufdContexts(m)) {
    const devices = [...ctx.objects.values()].filter((o): o is IommufdDevice => o instanceof IommufdDevice);
    for (const ioas of ioasesOf(ctx)) {
      const iopt = ioas.iopt;
      for (const p of pagesOf(ioas)) {
        if (p.pinned !== iopt.domains.length > 0 && p.areaRefs > 0) {
          // Pages shared with another IOAS may be pinned for it: only flag an unpinned page object under a domain.
          if (!p.pinned) out.push({ kind: 'translation', message: `iommufd IOAS ${ioas.id}: a mapping's pages are not pinned although the IOAS has ${iopt.domains.length} domain(s)` });
        }
      }
      for (const d of iopt.domains) {
        const dev = devices.find((x) => x.attached?.domain === d)?.fn;
        const what = `iommufd IOAS ${ioas.id}`;
        for (const n of iopt.areas.all()) {
          const a = n.value;
          if (!a.pages.pinned) continue;
          const first = a.firstPage;
          const base = a.iova - (a.startByte % PAGE);
          // Check each physically contiguous run of the area's pages (an unpinned page among them throws: a finding).
          for (const [i, n] of a.pages.contiguousRuns(first, a.npages)) {
            checkMapped(m, what, d, dev, base + (i - first) * PAGE, a.pages.pa(i), n * PAGE, (a.prot & IOMMU_READ) !== 0, opts, out);
          }
          const after = base + a.npages * PAGE;
          if (iopt.areas.firstOverlap(after, after + PAGE - 1) === undefined) checkUnmapped(what, d, dev, after, opts, out, false);
        }
      }
    }
  }
}

function checkGroups(m: Machine, out: Violation[]): void {
  for (const g of m.host.iommu.groups) {
    if (g.domain === undefined) out.push({ kind: 'group-state', message: `IOMMU group ${g.id} has no domain` });
    else if (g.domain.isFreed) out.push({ kind: 'group-state', message: `IOMMU group ${g.id} is attached to a freed domain` });
    if (g.owner === undefined && g.domain !== g.defaultDomain) {
      out.push({ kind: 'group-state', message: `IOMMU group ${g.id} has no owner but is not back on its default domain` });
    }
  }
}

function checkSva(m: Machine, out: Violation[]): void {
  for (const h of m.host.sva.handles()) {
    // A bond may outlive its process (Linux keeps it until unbind), but its PASID must stop translating.
    if (!h.mm.alive && !h.domain.mmReleased) out.push({ kind: 'sva', message: `SVA bond of ${h.dev.bdf} PASID ${h.pasid} still translates after its process (pid ${h.pid}) exited` });
    if (m.host.iommu.domainForPasid(h.dev, h.pasid) !== h.domain) {
      out.push({ kind: 'sva', message: `SVA bond of ${h.dev.bdf} PASID ${h.pasid}: the PASID is not attached to the bond's domain` });
    }
    if (h.domain.isFreed) out.push({ kind: 'sva', message: `SVA bond of ${h.dev.bdf} PASID ${h.pasid} uses a freed domain` });
  }
}

/** Violations as text, one per line (for test messages and reports). */
export function formatViolations(v: readonly Violation[]): string {
  return v.map((x) => `[${x.kind}] ${x.message}`).join('\n');
}
