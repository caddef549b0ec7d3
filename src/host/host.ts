import { MsiDataAllocator } from './msi-data.ts';
import type { PageTableBuilder } from '../iommu-core/io-pgtable.ts';
import type { HostPlatform } from './platform.ts';
import { HOST_INJECTION_POINTS } from './points.ts';
import { ENOMEM } from '../uapi/errno.ts';
import { Mm, type MmOptions } from './mm.ts';
import { PageAllocator, type RamSpan } from './page-allocator.ts';
import { PageRefs } from './page-refs.ts';
import { forkMappings, Process, type SpawnOptions } from './process.ts';
import type { MemFd } from './memfd.ts';
import { Users } from './user.ts';
import { FileRefs, Vfs } from './vfs.ts';
import { KernelLog } from './kmsg.ts';
import { IommuCore } from '../iommu-core/core.ts';
import { IopfQueue } from '../iommu-core/iopf.ts';
import { SvaManager } from '../iommu-core/sva.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import { PciAtsDevice } from './pci-ats.ts';
import { CFG } from '../pci/header.ts';
import { LINUX_RELEASE } from '../uapi/linux-release.ts';

/** vm.mmap_min_addr's default. */
const MMAP_MIN = 0x1_0000;

/**
 * The emulated kernel of a machine: its page allocator over the platform's
 * RAM, page reference counts, processes with address spaces in the CPU's
 * page-table format (the platform's CpuArch), and the VFS through which
 * processes reach device files and sysfs.
 */
export class Host {
  readonly vfs = new Vfs();
  /** The kernel log (printk), read through /dev/kmsg. */
  readonly kmsg: KernelLog;
  /** f_count of every open file: fds (in every process sharing them), mappings, kernel holders. */
  readonly files = new FileRefs();
  /** memfds whose file is still open somewhere (their page caches hold pages). */
  readonly memfds = new Set<MemFd>();
  readonly allocator: PageAllocator;
  readonly pages: PageRefs;
  readonly processes = new Map<number, Process>();
  /** Per-uid accounting (struct user_struct), looked up by each process's uid. */
  readonly users = new Users();
  readonly iommu = new IommuCore();
  readonly iopf: IopfQueue;
  readonly sva: SvaManager;
  private nextPid = 1000;
  /** MSI data values of every interrupt source the host programs (IOMMU queues, vfio-pci vectors). */
  readonly msiData = new MsiDataAllocator();
  private readonly mmLayout: MmOptions;
  private readonly pinPoint;
  private readonly atsDevices = new WeakMap<PciFunction, PciAtsDevice>();

  constructor(readonly platform: HostPlatform) {
    const reserve = platform.cpu.lowReserve;
    const spans: RamSpan[] = [];
    for (const s of platform.ramSpans) {
      const start = Math.max(s.gpa, reserve);
      if (start < s.gpa + s.size) spans.push({ gpa: start, size: s.gpa + s.size - start });
    }
    this.allocator = new PageAllocator(spans, (pa, n) => platform.discardRam(pa, n), platform.faults);
    this.pinPoint = platform.faults.define(HOST_INJECTION_POINTS)['host.pin'];
    this.pages = new PageRefs(this.allocator);
    this.iopf = new IopfQueue(this.iommu, platform.scheduler, platform.tracer, platform.counters);
    this.sva = new SvaManager(this.iommu, this.iopf, platform.tracer);
    this.mmLayout = { mmapBase: platform.cpu.mmapBase, mmapMin: MMAP_MIN, taskSize: Number(platform.cpu.taskSizeMax) };
    this.kmsg = new KernelLog(() => platform.scheduler.now);
    this.vfs.register('/dev/kmsg', { open: () => this.kmsg.open() });
    // What uname(2)'s release field and /proc/sys/kernel/osrelease say.
    this.vfs.addSysfs('/proc/sys/kernel/osrelease', { kind: 'file', read: () => `${LINUX_RELEASE}\n` });
  }

  /** A fresh MSI data value (an interrupt number of the machine's interrupt controller). */
  allocMsiData(): number {
    return this.msiData.alloc(1);
  }

  /** A new CPU page table in the machine's format, or -ENOMEM. */
  newCpuPageTable(): PageTableBuilder | number {
    const b = this.platform.cpu.newPageTable(this.platform.sysmem, this.allocator.tablePages());
    return typeof b === 'number' ? -ENOMEM : b;
  }

  /** fork+exec of a fresh process. Throws only if the machine has no memory left for a page table. */
  spawn(opts: SpawnOptions = {}): Process {
    const pt = this.newCpuPageTable();
    if (typeof pt === 'number') throw new Error('spawn: out of memory for a page table');
    const pid = this.nextPid++;
    const mm = new Mm(this.platform.sysmem, this.pages, pt, this.mmLayout);
    mm.pinPoint = this.pinPoint;
    const p = new Process(this, pid, mm, opts);
    this.processes.set(pid, p);
    return p;
  }

  /**
   * fork(): a child of `parent` with a copy of its address space (Mm.fork:
   * copy-on-write, pinned pages copied at once), a copy of its fd table
   * (the same files, each held once more), its uid, user_struct, rlimits and
   * capabilities. -ENOMEM when no memory is left for the copy.
   */
  fork(parent: Process): Process | number {
    const pt = this.newCpuPageTable();
    if (typeof pt === 'number') return pt;
    const mm = parent.mm.fork(pt, forkMappings(this.files));
    if (typeof mm === 'number') return mm;
    const pid = this.nextPid++;
    const child = new Process(this, pid, mm, { uid: parent.uid, capIpcLock: parent.capIpcLock, memlockLimit: parent.memlockLimit });
    child.inheritFiles(parent);
    this.processes.set(pid, child);
    return child;
  }

  /**
   * Bring a PCI function under the kernel: publish its sysfs view, probe its
   * IOMMU (grouping it) and link its group. Returns 0 or the probe's -errno;
   * a function whose IOMMU probe failed stays in sysfs without iommu_group,
   * as in Linux (the device is there, only its IOMMU is not).
   */
  addPciDevice(fn: PciFunction): number {
    const dir = `/sys/bus/pci/devices/${fn.bdf}`;
    const hex = (v: number, w: number) => `0x${v.toString(16).padStart(w, '0')}\n`;
    this.vfs.addSysfs(`${dir}/vendor`, { kind: 'file', read: () => hex(fn.config.get16(CFG.VENDOR_ID), 4) });
    this.vfs.addSysfs(`${dir}/device`, { kind: 'file', read: () => hex(fn.config.get16(CFG.DEVICE_ID), 4) });
    this.vfs.addSysfs(`${dir}/class`, { kind: 'file', read: () => hex(fn.config.get32(0x08) >>> 8, 6) });
    this.vfs.addSysfs(`${dir}/revision`, { kind: 'file', read: () => hex(fn.config.get8(CFG.REVISION_ID), 2) });
    // pci-sysfs.c subsystem_vendor/subsystem_device: pci_setup_device reads them from a type 0 header; a bridge's
    // come from its SSVID capability, which ioemu's bridges do not have (0).
    const type0 = (fn.config.get8(CFG.HEADER_TYPE) & 0x7f) === 0;
    this.vfs.addSysfs(`${dir}/subsystem_vendor`, { kind: 'file', read: () => hex(type0 ? fn.config.get16(CFG.SUBSYSTEM_VENDOR_ID) : 0, 4) });
    this.vfs.addSysfs(`${dir}/subsystem_device`, { kind: 'file', read: () => hex(type0 ? fn.config.get16(CFG.SUBSYSTEM_ID) : 0, 4) });
    const r = this.iommu.probe(fn);
    if (r < 0) return r;
    const group = this.iommu.groupOf(fn)!;
    this.vfs.addSysfs(`${dir}/iommu_group`, { kind: 'link', target: () => `../../../kernel/iommu_groups/${group.id}` });
    const gdir = `/sys/kernel/iommu_groups/${group.id}`;
    this.vfs.addSysfs(`${gdir}/devices`, { kind: 'dir', list: () => group.devices.map((d) => d.bdf).sort() });
    this.vfs.addSysfs(`${gdir}/type`, { kind: 'file', read: () => (group.defaultDomain?.type === 'identity' ? 'identity\n' : 'DMA\n') });
    this.vfs.addSysfs(`${gdir}/reserved_regions`, {
      kind: 'file',
      read: () =>
        this.iommu
          .groupResvRegions(group)
          .map((r) => `0x${r.start.toString(16).padStart(16, '0')} 0x${(r.start + r.length - 1).toString(16).padStart(16, '0')} ${r.type === 'sw-msi' ? 'msi' : r.type}\n`)
          .join(''),
    });
    return 0;
  }

  /**
   * A function as drivers/pci/ats.c sees it: its ATS, PRI and PASID
   * capabilities and what the kernel enabled (one per function, made when
   * first asked, as pci_init_capabilities would have at enumeration).
   */
  pciAts(fn: PciFunction): PciAtsDevice {
    let d = this.atsDevices.get(fn);
    if (d === undefined) {
      d = new PciAtsDevice(this.platform.pciConfig, fn);
      this.atsDevices.set(fn, d);
    }
    return d;
  }

  processExited(p: Process): void {
    this.processes.delete(p.pid);
  }
}
