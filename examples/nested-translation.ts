/**
 * Nested translation, as a VMM with a virtual IOMMU runs it, on both
 * machines. What is common:
 *  1. The VMM backs guest RAM with its own memory and maps it into an IOAS
 *     at the guest-physical addresses (stage 2: GPA -> host physical), with
 *     QEMU's iommufd sequence (tools/scenario/vmm.ts iommufdSetup).
 *  2. IOMMU_HWPT_ALLOC with IOMMU_HWPT_ALLOC_NEST_PARENT on the IOAS: the
 *     stage-2 domain that nested domains sit on.
 *  3. The guest kernel builds its stage-1 table in its own RAM (pointers and
 *     outputs are GPAs) for an IOVA of its choice (iommu/guest/).
 *  4. A nested HWPT carries the guest's configuration; the device is attached
 *     to it. A DMA to the guest IOVA goes through both stages:
 *     guest IOVA -> GPA (guest table) -> host physical (the parent).
 *  5. The guest remaps its IOVA to another page: the IOTLB still holds the
 *     old translation until the guest invalidates it, which the VMM forwards
 *     with IOMMU_HWPT_INVALIDATE.
 * What differs (step 4 and 5):
 *  - q35-vtd: IOMMU_HWPT_ALLOC on the parent with IOMMU_HWPT_DATA_VTD_S1
 *    (struct iommu_hwpt_vtd_s1: the guest table's GPA and address width); the
 *    attach installs a PASID entry with PGTT = nested. Invalidations go to the
 *    nested HWPT as struct iommu_hwpt_vtd_s1_invalidate entries.
 *  - virt-smmuv3: IOMMU_VIOMMU_ALLOC over the parent (the vSMMU, with the
 *    parent's VMID), IOMMU_VDEVICE_ALLOC giving the device its virtual
 *    StreamID, then IOMMU_HWPT_ALLOC on the vIOMMU with
 *    IOMMU_HWPT_DATA_ARM_SMMUV3 (struct iommu_hwpt_arm_smmuv3: the guest's STE
 *    words, S1ContextPtr pointing at the CD table the guest built); the attach
 *    installs a nested STE. The guest's TLBI_NH_VA goes to the vIOMMU as a raw
 *    16-byte command; the host substitutes the VMID before issuing it.
 * Run: npx tsx examples/nested-translation.ts
 */
import {
  createMachine,
  type MachineKind,
  IotlbGather,
  IOMMU_READ,
  IOMMU_WRITE,
  type PageTableBuilder,
  processGuestRam,
  type ByteAccess,
  guestFirstStage,
  vtdInv,
  vtdS1,
  GUEST_ASID,
  guestStage1,
  s1Vste,
  vcmds,
  type Process,
  CFG,
  COMMAND,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VIOMMU_ALLOC,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  iommu_hwpt_alloc,
  iommu_hwpt_invalidate,
  iommu_vdevice_alloc,
  iommu_viommu_alloc,
  vfio_device_attach_iommufd_pt,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  encodeStruct,
  StructView,
  type StructDef,
  iommufdSetup,
} from '../src/index.ts';

const PAGE = 4096;
const GPA = 0x4000_0000; // guest RAM: 32 pages; the guest's tables in the first 16
const GUEST_IOVA = 0x7000_0000; // what the guest's driver gives its device
const VSID = 0x42; // the StreamID the guest's vSMMU shows for the device

export interface NestedResult {
  kind: MachineKind;
  /** The VMM's ioctls after QEMU's setup, "CALL(args) = result (outputs)". */
  log: string[];
  first: string;
  writeReached: boolean;
  beforeInvalidate: string;
  afterInvalidate: string;
}

/** The per-vIOMMU part: the guest's stage 1, the nested HWPT over the parent, the forwarded invalidation. */
interface VirtualIommu {
  s1: PageTableBuilder;
  /** Allocate what the nested HWPT needs and the HWPT itself; its ID. */
  nest(parent: number): number;
  /** Forward the guest's invalidation of GUEST_IOVA; entries the kernel handled. */
  invalidate(nested: number): number;
}

/** What the per-vIOMMU parts use of the VMM: its process, iommufd, device and ioctl helpers. */
interface Vmm {
  p: Process;
  fd: number;
  devId: number;
  call: <F extends string>(fd: number, req: number, name: string, def: StructDef<F>, v: Partial<Record<NoInfer<F>, number | bigint>>, out?: NoInfer<F>) => number;
  userBuf: (bytes: Uint8Array) => bigint;
}

/** VT-d: the guest's IA-32e first stage goes to the kernel as struct iommu_hwpt_vtd_s1; invalidations go to the nested HWPT. */
function vtdGuest({ fd, devId, call, userBuf }: Vmm, io: ByteAccess): VirtualIommu {
  const { s1 } = guestFirstStage(io, GPA, 16);
  return {
    s1,
    nest: (parent) => {
      const data = vtdS1(s1.root);
      return call(fd, IOMMU_HWPT_ALLOC, `IOMMU_HWPT_ALLOC(pt_id ${parent}, DATA_VTD_S1 pgtbl_addr 0x${s1.root.toString(16)})`, iommu_hwpt_alloc,
        { size: iommu_hwpt_alloc.size, dev_id: devId, pt_id: parent, data_type: IOMMU_HWPT_DATA_VTD_S1, data_len: data.length, data_uptr: userBuf(data) }, 'out_hwpt_id');
    },
    invalidate: (nested) => {
      const inv = vtdInv([{ addr: GUEST_IOVA, npages: 1 }]);
      return call(fd, IOMMU_HWPT_INVALIDATE, `IOMMU_HWPT_INVALIDATE(hwpt_id ${nested}, DATA_VTD_S1 addr 0x${GUEST_IOVA.toString(16)} npages 1)`, iommu_hwpt_invalidate,
        { size: iommu_hwpt_invalidate.size, hwpt_id: nested, data_uptr: userBuf(inv), data_type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, entry_len: inv.length, entry_num: 1 }, 'entry_num');
    },
  };
}

/**
 * SMMUv3: a vIOMMU over the parent, a vDEVICE naming the device's virtual
 * StreamID, the guest's STE words (S1ContextPtr = its CD table) as the nested
 * HWPT's data; the guest's commands go to the vIOMMU.
 */
function smmuGuest({ fd, devId, call, userBuf }: Vmm, io: ByteAccess): VirtualIommu {
  const { s1, cdTable } = guestStage1(io, GPA, 16);
  let vsmmu = 0;
  return {
    s1,
    nest: (parent) => {
      vsmmu = call(fd, IOMMU_VIOMMU_ALLOC, `IOMMU_VIOMMU_ALLOC(ARM_SMMUV3, hwpt_id ${parent})`, iommu_viommu_alloc,
        { size: iommu_viommu_alloc.size, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3, dev_id: devId, hwpt_id: parent }, 'out_viommu_id');
      call(fd, IOMMU_VDEVICE_ALLOC, `IOMMU_VDEVICE_ALLOC(viommu_id ${vsmmu}, virt_id 0x${VSID.toString(16)})`, iommu_vdevice_alloc,
        { size: iommu_vdevice_alloc.size, viommu_id: vsmmu, dev_id: devId, virt_id: BigInt(VSID) }, 'out_vdevice_id');
      const ste = s1Vste(cdTable);
      return call(fd, IOMMU_HWPT_ALLOC, `IOMMU_HWPT_ALLOC(pt_id ${vsmmu}, DATA_ARM_SMMUV3 vSTE S1ContextPtr 0x${cdTable.toString(16)})`, iommu_hwpt_alloc,
        { size: iommu_hwpt_alloc.size, dev_id: devId, pt_id: vsmmu, data_type: IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: ste.length, data_uptr: userBuf(ste) }, 'out_hwpt_id');
    },
    invalidate: () => {
      // VMID 0 in the guest's command: the host puts the vIOMMU's VMID there.
      const cmds = vcmds([['TLBI_NH_VA', { ASID: GUEST_ASID, Address: GUEST_IOVA / PAGE }]]);
      return call(fd, IOMMU_HWPT_INVALIDATE, `IOMMU_HWPT_INVALIDATE(hwpt_id ${vsmmu} (the vIOMMU), TLBI_NH_VA ASID ${GUEST_ASID} 0x${GUEST_IOVA.toString(16)})`, iommu_hwpt_invalidate,
        { size: iommu_hwpt_invalidate.size, hwpt_id: vsmmu, data_uptr: userBuf(cmds), data_type: IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, entry_len: 16, entry_num: 1 }, 'entry_num');
    },
  };
}

export function runNestedTranslation(kind: MachineKind, say: (s: string) => void = console.log): NestedResult {
  const m = createMachine(kind, { ramBytes: 256 * 2 ** 20 });
  const dev = m.device('0000:00:01.0');
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });

  // 1. Guest RAM, stage 2.
  const ram = p.mmap(32 * PAGE, { populate: true });
  const setup = iommufdSetup(m, p, dev.bdf, { guestRam: { vaddr: ram, iova: BigInt(GPA), size: 32 * PAGE } });
  const { iommufd: fd, device: cdev, devId, ioas } = setup;
  const log: string[] = [];
  /** One ioctl whose struct the kernel fills: logged, checked, the output field returned. */
  const call = <F extends string>(fdn: number, req: number, name: string, def: StructDef<F>, v: Partial<Record<NoInfer<F>, number | bigint>>, out?: NoInfer<F>): number => {
    const b = encodeStruct(def, v);
    const r = p.ioctl(fdn, req, b);
    const got = out === undefined ? undefined : new StructView(def, b).num(out);
    log.push(`${name} = ${r}${r === 0 && got !== undefined ? ` (${out} ${got})` : ''}`);
    if (r < 0) throw new Error(`${name} failed (${r})`);
    return got ?? r;
  };
  /** Bytes the kernel copies from user memory (data_uptr). */
  const userBuf = (bytes: Uint8Array): bigint => {
    const va = p.mmap(PAGE);
    p.memWrite(va, bytes);
    return va;
  };

  // 2. The nest parent.
  const parent = call(fd, IOMMU_HWPT_ALLOC, `IOMMU_HWPT_ALLOC(pt_id ${ioas}, NEST_PARENT)`, iommu_hwpt_alloc,
    { size: iommu_hwpt_alloc.size, flags: IOMMU_HWPT_ALLOC_NEST_PARENT, dev_id: devId, pt_id: ioas }, 'out_hwpt_id');

  // 3. The guest's stage 1 (in guest pages 0-15); its data pages are 16 and 17.
  const io = processGuestRam(p, ram, GPA);
  const guestPage = (i: number) => GPA + (16 + i) * PAGE;
  io.write(guestPage(0), new TextEncoder().encode('guest page A'));
  io.write(guestPage(1), new TextEncoder().encode('guest page B'));

  const vmm: Vmm = { p, fd, devId, call, userBuf };
  const viommu = kind === 'q35-vtd' ? vtdGuest(vmm, io) : smmuGuest(vmm, io);
  const { s1 } = viommu;
  if (s1.map(GUEST_IOVA, guestPage(0), PAGE, IOMMU_READ | IOMMU_WRITE) !== 0) throw new Error('guest map failed');

  // 4. The nested HWPT, and the attach.
  const nested = viommu.nest(parent);
  call(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, `VFIO_DEVICE_ATTACH_IOMMUFD_PT(pt_id ${nested})`, vfio_device_attach_iommufd_pt,
    { argsz: vfio_device_attach_iommufd_pt.size, pt_id: nested });
  for (const l of log) say(`${kind}: ${l}`);
  say(`${kind}: guest RAM at GPA 0x${GPA.toString(16)} in IOAS ${ioas}; HWPT ${parent} is stage 2, HWPT ${nested} nests the guest's table (root GPA 0x${s1.root.toString(16)}) on it`);

  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  const read = () => {
    const r = dev.dmaRead(BigInt(GUEST_IOVA), 12);
    return r.ok ? new TextDecoder().decode(r.data) : r.fault;
  };
  const first = read();
  say(`${kind}: DMA read at guest IOVA 0x${GUEST_IOVA.toString(16)}: "${first}" (guest IOVA -> GPA 0x${guestPage(0).toString(16)} -> host page)`);
  const w = dev.dmaWrite(BigInt(GUEST_IOVA), new TextEncoder().encode('G'));
  const writeReached = w.ok && io.read(guestPage(0), 1)[0] === 'G'.charCodeAt(0);
  say(`${kind}: DMA write through both stages ${writeReached ? 'reached the VMM-backed guest page' : 'did NOT arrive'}`);

  // 5. The guest remaps; stale until it invalidates.
  s1.unmap(GUEST_IOVA, PAGE, new IotlbGather());
  if (s1.map(GUEST_IOVA, guestPage(1), PAGE, IOMMU_READ | IOMMU_WRITE) !== 0) throw new Error('guest remap failed');
  const beforeInvalidate = read();
  say(`${kind}: the guest remapped the IOVA to page B; before invalidating, the device still reads "${beforeInvalidate}" (the IOTLB's entry)`);
  const handled = viommu.invalidate(nested);
  say(`${kind}: ${log[log.length - 1]}`);
  const afterInvalidate = read();
  say(`${kind}: ${handled} guest invalidation(s) forwarded; now the device reads "${afterInvalidate}"`);
  p.exit();
  return { kind, log: [...setup.log, ...log], first, writeReached, beforeInvalidate, afterInvalidate };
}

if (import.meta.url === `file://${process.argv[1]}`) for (const kind of ['q35-vtd', 'virt-smmuv3'] as const) runNestedTranslation(kind);
