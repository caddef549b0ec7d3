/**
 * Model-based testing (issue 9, part 5): a sequence of commands — VFIO
 * map/unmap, SVA bind/unbind, iommufd IOAS map/copy/unmap, attach/detach,
 * DMA from devices, process writes, process exit — runs against a real
 * machine and, in lockstep, against a plain reference model of what each
 * device may reach: which IOVA (or, with a PASID, which process VA) reaches
 * which process page, readable or writable. Every command's result and every
 * DMA's outcome (fault or success, and the bytes moved) is compared with the
 * model; after the sequence the invariants are checked live, and again
 * after every process exited (no page leaked).
 *
 * Commands are plain data (JSON), so a failing sequence prints and replays
 * as it is; generators (fast-check in the tests, a seeded PRNG in the
 * campaign runner) build them.
 *
 * Two worlds share one machine:
 * - world V: process V, a VFIO type1v2 container holding the group of
 *   DMA engine 0000:00:01.0 (SVA binds go through the container);
 * - world F: process F, /dev/iommu with two IOASes, the cdev of DMA engine
 *   0000:00:02.0 bound to it.
 * Each process owns a 32-page buffer whose pages carry distinct bytes.
 */
import { createMachine, type Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import type { PciFunction } from '../../src/pci/pci-function.ts';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  iommu_ioas_alloc,
  iommu_ioas_copy,
  iommu_ioas_map,
  iommu_ioas_unmap,
  vfio_device_attach_iommufd_pt,
  vfio_device_bind_iommufd,
  vfio_device_detach_iommufd_pt,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_DETACH_IOMMUFD_PT, VFIO_TYPE1v2_IOMMU } from '../../src/uapi/vfio.ts';
import { VfioClient } from '../../src/vfio/client.ts';
import { checkInvariants, formatViolations, guard, monitorUnmaps, recordBaseline } from './invariants.ts';

export const MB_PAGE = 4096;
/** Pages in each process's buffer. */
export const MB_BUF_PAGES = 32;
/** IOVA slots (pages) commands address, from MB_IOVA_BASE. */
export const MB_SLOTS = 48;
export const MB_IOVA_BASE = 0x10_0000;
const DEV_V = '0000:00:01.0';
const DEV_F = '0000:00:02.0';
const PROBE_OFF = 0x10;

export type World = 'V' | 'F';
export type Command =
  | { op: 'vfioMap'; page: number; npages: number; slot: number; write: boolean }
  | { op: 'vfioUnmap'; slot: number; npages: number }
  | { op: 'vfioUnmapIndex'; index: number }
  | { op: 'svaBind' }
  | { op: 'svaUnbind' }
  | { op: 'ioasMap'; ioas: 0 | 1; page: number; npages: number; slot: number; write: boolean }
  | { op: 'ioasUnmap'; ioas: 0 | 1; slot: number; npages: number }
  | { op: 'ioasUnmapIndex'; ioas: 0 | 1; index: number }
  | { op: 'ioasUnmapAll'; ioas: 0 | 1 }
  | { op: 'ioasCopy'; src: 0 | 1; dst: 0 | 1; srcSlot: number; npages: number; dstSlot: number }
  | { op: 'attach'; ioas: 0 | 1 }
  | { op: 'detach' }
  | { op: 'dma'; world: World; slot: number; write: boolean; value: number }
  | { op: 'svaDma'; page: number; write: boolean; value: number }
  /** A PASID DMA to a page the process never touched: the device's PRI faults it in (SVA with I/O page faults). */
  | { op: 'svaFault'; write: boolean; value: number }
  | { op: 'cpuWrite'; world: World; page: number; value: number }
  | { op: 'exit'; world: World };

/** One mapping as the model sees it: IOVA pages [slot, slot+npages) -> buffer pages [page, ...). */
interface MArea {
  slot: number;
  npages: number;
  page: number;
  write: boolean;
}

export interface ModelState {
  v: { alive: boolean; areas: MArea[]; bound: boolean };
  f: { alive: boolean; ioas: [MArea[], MArea[]]; attached: 0 | 1 | undefined };
}

export function initialModel(): ModelState {
  return { v: { alive: true, areas: [], bound: false }, f: { alive: true, ioas: [[], []], attached: undefined } };
}

export interface SequenceResult {
  ok: boolean;
  /** The first mismatch with the model, exception or invariant violation. */
  failure?: string;
  /** Index of the failing command (-1: setup, length: final checks). */
  at?: number;
  commands: number;
  dmas: number;
}

function slotIova(slot: number): number {
  return MB_IOVA_BASE + slot * MB_PAGE;
}

function overlaps(areas: readonly MArea[], slot: number, npages: number): MArea[] {
  return areas.filter((a) => a.slot < slot + npages && slot < a.slot + a.npages);
}

function lookup(areas: readonly MArea[], slot: number): { page: number; write: boolean } | undefined {
  const a = areas.find((x) => slot >= x.slot && slot < x.slot + x.npages);
  return a === undefined ? undefined : { page: a.page + (slot - a.slot), write: a.write };
}

/** Clamp a generated command to the valid ranges (generators may be loose; shrinking keeps them in range). */
export function normalize(c: Command): Command {
  const clampPages = (page: number, n: number) => Math.max(1, Math.min(n, MB_BUF_PAGES - page));
  switch (c.op) {
    case 'vfioMap':
    case 'ioasMap':
      return { ...c, npages: clampPages(c.page, c.npages) };
    default:
      return c;
  }
}

/** Runs commands on one machine, keeping the reference model in step (runSequence drives it; campaigns reuse it). */
export class SequenceExecutor {
  readonly m: Machine;
  pv!: Process;
  pf!: Process;
  v!: VfioClient;
  container = -1;
  bufV = 0n;
  bufF = 0n;
  iommufd = -1;
  cdev = -1;
  ioas: [number, number] = [0, 0];
  pasid = -1;
  dmas = 0;
  readonly model = initialModel();

  constructor(kind: MachineKind | (() => Machine)) {
    // The reference model faults SVA pages in through PRI: on virt-smmuv3, the posted SMMUv3 PRI series.
    this.m = typeof kind === 'function' ? kind() : createMachine(kind, { smmuPri: 'posted-series' });
  }

  setup(): void {
    const m = this.m;
    const must = (what: string, r: number | bigint) => {
      if (r < 0) throw new Error(`setup: ${what} returned ${r}`);
    };
    this.pv = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
    this.v = new VfioClient(this.pv);
    this.container = this.pv.open('/dev/vfio/vfio');
    must('open container', this.container);
    const group = this.pv.open(`/dev/vfio/${m.host.iommu.groupOf(m.device(DEV_V))!.id}`);
    must('open group', group);
    must('SET_CONTAINER', this.v.setContainer(group, this.container));
    must('SET_IOMMU', this.v.setIommu(this.container, VFIO_TYPE1v2_IOMMU));
    this.bufV = this.pv.mmap(MB_BUF_PAGES * MB_PAGE);
    must('mmap V', this.bufV);

    this.pf = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
    this.iommufd = this.pf.open('/dev/iommu');
    must('open /dev/iommu', this.iommufd);
    for (const i of [0, 1] as const) {
      const a = encodeStruct(iommu_ioas_alloc, { size: iommu_ioas_alloc.size });
      must('IOAS_ALLOC', this.pf.ioctl(this.iommufd, IOMMU_IOAS_ALLOC, a));
      this.ioas[i] = new StructView(iommu_ioas_alloc, a).num('out_ioas_id');
    }
    const names = this.pf.readdir(`/sys/bus/pci/devices/${DEV_F}/vfio-dev`);
    if (typeof names === 'number' || names.length === 0) throw new Error('setup: no vfio-dev');
    this.cdev = this.pf.open(`/dev/vfio/devices/${names[0]}`);
    must('open cdev', this.cdev);
    const b = encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd: this.iommufd });
    must('BIND_IOMMUFD', this.pf.ioctl(this.cdev, VFIO_DEVICE_BIND_IOMMUFD, b));
    this.bufF = this.pf.mmap(MB_BUF_PAGES * MB_PAGE);
    must('mmap F', this.bufF);
    for (let i = 0; i < MB_BUF_PAGES; i++) {
      must('memWrite', this.pv.memWrite(this.bufV + BigInt(i * MB_PAGE), pattern(1, i)));
      must('memWrite', this.pf.memWrite(this.bufF + BigInt(i * MB_PAGE), pattern(2, i)));
    }
  }

  private dmaFrom(bdf: string, iova: bigint, write: boolean, value: number, pasid?: number): { ok: true; data?: Uint8Array } | { ok: false; fault: string } {
    const dev: PciFunction = this.m.device(bdf) as unknown as PciFunction;
    const cmd = dev.config.get16(CFG.COMMAND);
    if ((cmd & COMMAND.MASTER) === 0) dev.config.write(CFG.COMMAND, 2, cmd | COMMAND.MASTER);
    this.dmas++;
    const attrs = pasid === undefined ? undefined : { pasid };
    return write ? dev.dmaWrite(iova, new Uint8Array([value & 0xff]), attrs) : dev.dmaRead(iova, 8, attrs);
  }

  /** Run one command; a string describes a mismatch with the model. */
  step(c: Command): string | undefined {
    const md = this.model;
    switch (c.op) {
      case 'vfioMap': {
        if (!md.v.alive) return;
        const r = this.v.mapDma(this.container, { vaddr: this.bufV + BigInt(c.page * MB_PAGE), iova: BigInt(slotIova(c.slot)), size: c.npages * MB_PAGE, read: true, write: c.write });
        const expectOk = overlaps(md.v.areas, c.slot, c.npages).length === 0;
        if (expectOk !== r >= 0) return `MAP_DMA returned ${r}; the model expected ${expectOk ? 'success' : 'an errno (overlap)'}`;
        if (r >= 0) md.v.areas.push({ slot: c.slot, npages: c.npages, page: c.page, write: c.write });
        return;
      }
      case 'vfioUnmapIndex': {
        if (!md.v.alive || md.v.areas.length === 0) return;
        const a = md.v.areas[c.index % md.v.areas.length]!;
        return this.step({ op: 'vfioUnmap', slot: a.slot, npages: a.npages });
      }
      case 'vfioUnmap': {
        if (!md.v.alive) return;
        const r = this.v.unmapDma(this.container, { iova: BigInt(slotIova(c.slot)), size: c.npages * MB_PAGE });
        const hit = overlaps(md.v.areas, c.slot, c.npages);
        // type1v2: an unmap may not start or end inside a mapping.
        const split = hit.some((a) => (c.slot > a.slot && c.slot < a.slot + a.npages) || (c.slot + c.npages > a.slot && c.slot + c.npages < a.slot + a.npages));
        if (split) {
          if (typeof r !== 'number' || r >= 0) return `UNMAP_DMA splitting a mapping returned ${r}; the model expected -EINVAL`;
          return;
        }
        const bytes = BigInt(hit.reduce((s, a) => s + a.npages, 0) * MB_PAGE);
        if (r !== bytes) return `UNMAP_DMA returned ${r}; the model expected ${bytes} bytes unmapped`;
        md.v.areas = md.v.areas.filter((a) => !hit.includes(a));
        return;
      }
      case 'svaBind': {
        if (!md.v.alive) return;
        const r = this.v.bindProcess(this.container);
        if (md.v.bound) {
          // Binding again: the kernel returns the same PASID or an errno; either leaves one bond.
          if (r >= 0 && r !== this.pasid) return `a second VFIO_IOMMU_BIND returned PASID ${r}; the bond has ${this.pasid}`;
          return;
        }
        if (r < 0) return `VFIO_IOMMU_BIND returned ${r}`;
        this.pasid = r;
        md.v.bound = true;
        return;
      }
      case 'svaUnbind': {
        if (!md.v.alive) return;
        const r = this.v.unbindProcess(this.container);
        if (md.v.bound && r < 0) return `VFIO_IOMMU_UNBIND returned ${r}`;
        if (!md.v.bound && r >= 0) return `VFIO_IOMMU_UNBIND with no bond returned ${r}; the model expected an errno`;
        md.v.bound = false;
        return;
      }
      case 'ioasMap': {
        if (!md.f.alive) return;
        const b = encodeStruct(iommu_ioas_map, {
          size: iommu_ioas_map.size,
          flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | (c.write ? IOMMU_IOAS_MAP_WRITEABLE : 0),
          ioas_id: this.ioas[c.ioas],
          user_va: this.bufF + BigInt(c.page * MB_PAGE),
          length: c.npages * MB_PAGE,
          iova: slotIova(c.slot),
        });
        const r = this.pf.ioctl(this.iommufd, IOMMU_IOAS_MAP, b);
        const areas = md.f.ioas[c.ioas];
        const expectOk = overlaps(areas, c.slot, c.npages).length === 0;
        if (expectOk !== r >= 0) return `IOAS_MAP returned ${r}; the model expected ${expectOk ? 'success' : 'an errno (overlap)'}`;
        if (r >= 0) areas.push({ slot: c.slot, npages: c.npages, page: c.page, write: c.write });
        return;
      }
      case 'ioasUnmapIndex': {
        const areas = md.f.ioas[c.ioas];
        if (!md.f.alive || areas.length === 0) return;
        const a = areas[c.index % areas.length]!;
        return this.step({ op: 'ioasUnmap', ioas: c.ioas, slot: a.slot, npages: a.npages });
      }
      case 'ioasUnmapAll':
      case 'ioasUnmap': {
        if (!md.f.alive) return;
        const all = c.op === 'ioasUnmapAll';
        const iova = all ? 0n : BigInt(slotIova(c.slot));
        const length = all ? 0xffff_ffff_ffff_ffffn : BigInt(c.npages * MB_PAGE);
        const b = encodeStruct(iommu_ioas_unmap, { size: iommu_ioas_unmap.size, ioas_id: this.ioas[c.ioas], iova, length });
        const r = this.pf.ioctl(this.iommufd, IOMMU_IOAS_UNMAP, b);
        const got = new StructView(iommu_ioas_unmap, b).big('length');
        const areas = md.f.ioas[c.ioas];
        const hit = all ? [...areas] : overlaps(areas, c.slot, c.npages);
        const partial = !all && hit.some((a) => a.slot < c.slot || a.slot + a.npages > c.slot + c.npages);
        if (!all && (hit.length === 0 || partial)) {
          if (r >= 0) return `IOAS_UNMAP of ${hit.length === 0 ? 'nothing' : 'part of an area'} returned ${r}; the model expected -ENOENT`;
          return;
        }
        if (all && hit.length === 0) {
          // Unmapping everything from an empty IOAS: 0 bytes, or -ENOENT as the kernel does.
          if (r >= 0 && got !== 0n) return `IOAS_UNMAP (all) of an empty IOAS reported ${got} bytes`;
          return;
        }
        const bytes = BigInt(hit.reduce((s, a) => s + a.npages, 0) * MB_PAGE);
        if (r < 0 || got !== bytes) return `IOAS_UNMAP returned ${r} (length ${got}); the model expected ${bytes} bytes`;
        md.f.ioas[c.ioas] = areas.filter((a) => !hit.includes(a));
        return;
      }
      case 'ioasCopy': {
        if (!md.f.alive) return;
        const src = md.f.ioas[c.src];
        let covered = true;
        let allWritable = true;
        for (let s = c.srcSlot; s < c.srcSlot + c.npages; s++) {
          const l = lookup(src, s);
          if (l === undefined) covered = false;
          else if (!l.write) allWritable = false;
        }
        const dstFree = overlaps(md.f.ioas[c.dst], c.dstSlot, c.npages).length === 0;
        const b = encodeStruct(iommu_ioas_copy, {
          size: iommu_ioas_copy.size,
          flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | (allWritable ? IOMMU_IOAS_MAP_WRITEABLE : 0),
          dst_ioas_id: this.ioas[c.dst],
          src_ioas_id: this.ioas[c.src],
          length: c.npages * MB_PAGE,
          dst_iova: slotIova(c.dstSlot),
          src_iova: slotIova(c.srcSlot),
        });
        const r = this.pf.ioctl(this.iommufd, IOMMU_IOAS_COPY, b);
        const expectOk = covered && dstFree;
        if (expectOk !== r >= 0) return `IOAS_COPY returned ${r}; the model expected ${expectOk ? 'success' : `an errno (${covered ? 'destination busy' : 'hole in the source'})`}`;
        if (r < 0) return;
        // One destination area per source piece.
        const pieces: MArea[] = [];
        for (const a of overlaps(src, c.srcSlot, c.npages)) {
          const lo = Math.max(a.slot, c.srcSlot);
          const hi = Math.min(a.slot + a.npages, c.srcSlot + c.npages);
          pieces.push({ slot: c.dstSlot + (lo - c.srcSlot), npages: hi - lo, page: a.page + (lo - a.slot), write: allWritable });
        }
        md.f.ioas[c.dst].push(...pieces);
        return;
      }
      case 'attach': {
        if (!md.f.alive) return;
        const at = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: this.ioas[c.ioas] });
        const r = this.pf.ioctl(this.cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, at);
        if (r < 0) return `ATTACH_IOMMUFD_PT to IOAS ${c.ioas} returned ${r}`;
        md.f.attached = c.ioas;
        return;
      }
      case 'detach': {
        if (!md.f.alive) return;
        const d = encodeStruct(vfio_device_detach_iommufd_pt, { argsz: vfio_device_detach_iommufd_pt.size });
        const r = this.pf.ioctl(this.cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, d);
        if (md.f.attached !== undefined && r < 0) return `DETACH_IOMMUFD_PT returned ${r}`;
        md.f.attached = undefined;
        return;
      }
      case 'cpuWrite': {
        const alive = c.world === 'V' ? md.v.alive : md.f.alive;
        if (!alive) return;
        const p = c.world === 'V' ? this.pv : this.pf;
        const buf = c.world === 'V' ? this.bufV : this.bufF;
        const r = p.memWrite(buf + BigInt(c.page * MB_PAGE + PROBE_OFF), new Uint8Array([c.value & 0xff]));
        if (r < 0) return `memWrite returned ${r}`;
        return;
      }
      case 'dma': {
        const alive = c.world === 'V' ? md.v.alive : md.f.alive;
        const bdf = c.world === 'V' ? DEV_V : DEV_F;
        const r = this.dmaFrom(bdf, BigInt(slotIova(c.slot) + PROBE_OFF), c.write, c.value);
        if (!alive) return; // the device is back on its default domain: any outcome but an exception
        const areas = c.world === 'V' ? md.v.areas : md.f.attached === undefined ? undefined : md.f.ioas[md.f.attached];
        const l = areas === undefined ? undefined : lookup(areas, c.slot);
        return this.checkDma(`${bdf} DMA ${c.write ? 'write' : 'read'} at IOVA 0x${(slotIova(c.slot) + PROBE_OFF).toString(16)}`, c.world, l, c.write, c.value, r);
      }
      case 'svaDma': {
        if (!md.v.alive || this.pasid < 0) return;
        const va = this.bufV + BigInt(c.page * MB_PAGE + PROBE_OFF);
        const r = this.dmaFrom(DEV_V, va, c.write, c.value, this.pasid);
        const l = md.v.bound ? { page: c.page, write: true } : undefined;
        return this.checkDma(`${DEV_V} PASID ${this.pasid} DMA ${c.write ? 'write' : 'read'} at VA 0x${va.toString(16)}`, 'V', l, c.write, c.value, r);
      }
      case 'svaFault': {
        if (!md.v.alive || this.pasid < 0) return;
        const va = this.pv.mmap(MB_PAGE);
        if (va < 0) return `mmap returned ${va}`;
        const r = this.dmaFrom(DEV_V, va + BigInt(PROBE_OFF), c.write, c.value, this.pasid);
        this.m.run();
        const what = `${DEV_V} PASID ${this.pasid} DMA ${c.write ? 'write' : 'read'} at untouched VA 0x${va.toString(16)}`;
        if (!md.v.bound) return r.ok ? `${what} succeeded with no bond` : undefined;
        if (!r.ok) return `${what} faulted (${r.fault}); PRI should have faulted the page in`;
        const mem = this.pv.memRead(va + BigInt(PROBE_OFF), 1);
        if (typeof mem === 'number') return `memRead returned ${mem}`;
        const expect = c.write ? c.value & 0xff : 0;
        if (mem[0] !== expect || (!c.write && r.data !== undefined && r.data[0] !== 0)) return `${what}: the process reads ${mem[0]}, expected ${expect}`;
        return;
      }
      case 'exit': {
        const p = c.world === 'V' ? this.pv : this.pf;
        p.exit();
        this.m.run();
        if (c.world === 'V') md.v = { alive: false, areas: [], bound: false };
        else md.f = { alive: false, ioas: [[], []], attached: undefined };
        return;
      }
    }
  }

  private checkDma(
    what: string,
    world: World,
    l: { page: number; write: boolean } | undefined,
    write: boolean,
    value: number,
    r: { ok: true; data?: Uint8Array } | { ok: false; fault: string },
  ): string | undefined {
    const may = l !== undefined && (!write || l.write);
    if (!may) return r.ok ? `${what} succeeded; the model says the device may not ${write ? 'write' : 'read'} there` : undefined;
    if (!r.ok) return `${what} faulted (${r.fault}); the model maps it to buffer page ${l.page}`;
    const p = world === 'V' ? this.pv : this.pf;
    const buf = world === 'V' ? this.bufV : this.bufF;
    const mem = p.memRead(buf + BigInt(l.page * MB_PAGE + PROBE_OFF), 8);
    if (typeof mem === 'number') return `memRead returned ${mem}`;
    if (write) {
      if (mem[0] !== (value & 0xff)) return `${what}: the process reads ${mem[0]} at buffer page ${l.page}; the device wrote ${value & 0xff}`;
    } else {
      const d = r.data ?? new Uint8Array(8);
      for (let i = 0; i < 8; i++) if (d[i] !== mem[i]) return `${what} read [${[...d]}]; buffer page ${l.page} holds [${[...mem]}]`;
    }
    return undefined;
  }
}

/** 0, 1, .., 255, 0, 1, ..: a page of the ramp starts at any byte value (pattern copies one window of it). */
const RAMP = Uint8Array.from({ length: MB_PAGE + 256 }, (_, i) => i & 0xff);

/** The bytes buffer page `page` of world `world` holds: byte i is (world * 64 + page * 7 + i) & 0xff. */
function pattern(world: number, page: number): Uint8Array {
  const start = (world * 64 + page * 7) & 0xff;
  return RAMP.subarray(start, start + MB_PAGE); // a view: memWrite copies it
}

const retainedCache = new Map<string, number>();

/** Pages the drivers keep after a full sequence and every exit (lazily allocated driver state), measured on a reference run. */
export function retainedPages(kind: MachineKind): number {
  let n = retainedCache.get(kind);
  if (n === undefined) {
    const e = new SequenceExecutor(kind);
    const idle = e.m.host.allocator.pagesInUse;
    e.setup();
    for (const c of REFERENCE) e.step(c);
    for (const p of [...e.m.host.processes.values()]) p.exit();
    e.m.run();
    n = Math.max(0, e.m.host.allocator.pagesInUse - idle);
    retainedCache.set(kind, n);
  }
  return n;
}

/** A fixed operation touching every front end (VFIO map, SVA bind and DMA, iommufd map/attach/DMA, replace, unbind). */
export const REFERENCE: readonly Command[] = [
  { op: 'vfioMap', page: 0, npages: 4, slot: 0, write: true },
  { op: 'svaBind' },
  { op: 'svaDma', page: 1, write: false, value: 0 },
  { op: 'svaFault', write: true, value: 9 },
  { op: 'ioasMap', ioas: 0, page: 0, npages: 4, slot: 0, write: true },
  { op: 'attach', ioas: 0 },
  { op: 'dma', world: 'F', slot: 1, write: false, value: 0 },
  { op: 'attach', ioas: 1 },
  { op: 'svaUnbind' },
];

export interface RunSequenceOptions {
  /** Check invariants (without DMA probes) after every command, not only at the end (default false). */
  checkEachStep?: boolean;
  /** Pages lazily allocated driver state may keep after every exit (default: retainedPages(kind) for a kind, 0 for a factory). */
  retained?: number;
}

/** Run one command sequence on a fresh machine of `kind`; see the module comment. */
export function runSequence(kind: MachineKind | (() => Machine), commands: readonly Command[], opts: RunSequenceOptions = {}): SequenceResult {
  const extra = opts.retained ?? (typeof kind === 'string' ? retainedPages(kind) : 0);
  const e = new SequenceExecutor(kind);
  const m = e.m;
  recordBaseline(m, extra);
  monitorUnmaps(m);
  const fail = (at: number, failure: string): SequenceResult => ({ ok: false, failure, at, commands: commands.length, dmas: e.dmas });
  const s = guard(m, () => e.setup());
  if ('exception' in s) return fail(-1, `setup threw: ${s.exception}`);
  for (let i = 0; i < commands.length; i++) {
    const c = normalize(commands[i]!);
    const g = guard(m, () => e.step(c));
    if ('exception' in g) return fail(i, `${JSON.stringify(c)} threw: ${g.exception}`);
    if (g.value !== undefined) return fail(i, `${JSON.stringify(c)}: ${g.value}`);
    if (opts.checkEachStep) {
      const v = checkInvariants(m, { dma: false });
      if (v.length > 0) return fail(i, `after ${JSON.stringify(c)}: ${formatViolations(v)}`);
    }
  }
  const live = checkInvariants(m);
  if (live.length > 0) return fail(commands.length, `invariants with the state live: ${formatViolations(live)}`);
  const td = guard(m, () => {
    for (const p of [...m.host.processes.values()]) p.exit();
    m.run();
  });
  if ('exception' in td) return fail(commands.length, `exit threw: ${td.exception}`);
  const after = checkInvariants(m);
  if (after.length > 0) return fail(commands.length, `invariants after every process exited: ${formatViolations(after)}`);
  return { ok: true, commands: commands.length, dmas: e.dmas };
}

/** A random command from a PRNG returning floats in [0, 1) (for the campaign runner and soak runs). */
export function randomCommand(rnd: () => number): Command {
  const int = (n: number) => Math.floor(rnd() * n);
  const bool = () => rnd() < 0.5;
  const io = () => int(2) as 0 | 1;
  const world = (): World => (bool() ? 'V' : 'F');
  switch (int(17)) {
    case 0:
    case 1:
      return { op: 'vfioMap', page: int(MB_BUF_PAGES), npages: 1 + int(6), slot: int(MB_SLOTS), write: rnd() < 0.8 };
    case 2:
      return { op: 'vfioUnmap', slot: int(MB_SLOTS), npages: 1 + int(8) };
    case 3:
      return { op: 'vfioUnmapIndex', index: int(8) };
    case 4:
      return bool() ? { op: 'svaBind' } : { op: 'svaUnbind' };
    case 5:
    case 6:
      return { op: 'ioasMap', ioas: io(), page: int(MB_BUF_PAGES), npages: 1 + int(6), slot: int(MB_SLOTS), write: rnd() < 0.8 };
    case 7:
      return { op: 'ioasUnmap', ioas: io(), slot: int(MB_SLOTS), npages: 1 + int(8) };
    case 8:
      return bool() ? { op: 'ioasUnmapIndex', ioas: io(), index: int(8) } : { op: 'ioasUnmapAll', ioas: io() };
    case 9:
      return { op: 'ioasCopy', src: io(), dst: io(), srcSlot: int(MB_SLOTS), npages: 1 + int(4), dstSlot: int(MB_SLOTS) };
    case 10:
      return bool() ? { op: 'attach', ioas: io() } : { op: 'detach' };
    case 11:
    case 12:
    case 13:
      return { op: 'dma', world: world(), slot: int(MB_SLOTS), write: bool(), value: int(256) };
    case 14:
      return rnd() < 0.7 ? { op: 'svaDma', page: int(MB_BUF_PAGES), write: bool(), value: int(256) } : { op: 'svaFault', write: bool(), value: int(256) };
    case 15:
      return { op: 'cpuWrite', world: world(), page: int(MB_BUF_PAGES), value: int(256) };
    default:
      return rnd() < 0.3 ? { op: 'exit', world: world() } : { op: 'dma', world: world(), slot: int(MB_SLOTS), write: false, value: 0 };
  }
}
