/**
 * Physical memory maps of the two machine kinds. The Arm one follows QEMU's
 * `virt` board (hw/arm/virt.c memmap: PCIe MMIO at 0x1000_0000, low ECAM at
 * 0x3f00_0000, RAM from 0x4000_0000, GICv3 ITS translation page at
 * 0x0809_0000, SMMUv3 at 0x0905_0000); the x86 one follows `q35` (RAM below
 * 2 GiB and above 4 GiB, MMCONFIG at 0xb000_0000, the PCI hole up to the
 * IOAPIC, the MSI window at 0xfee0_0000, a DMAR unit at 0xfed9_0000).
 */
export type MachineKind = 'virt-smmuv3' | 'q35-vtd';

export interface RamRange {
  /** Guest physical address of the range. */
  gpa: number;
  /** Offset of the range inside the machine's RAM block. */
  offset: number;
  size: number;
}

export interface MachineLayout {
  kind: MachineKind;
  ram: RamRange[];
  ecamBase: number;
  ecamBuses: number;
  mmio32: [number, number];
  mmio64: [number, number];
  msiBase: number;
  msiSize: number;
  /** Where the IOMMU's registers live. */
  iommuBase: number;
  iommuSize: number;
}

const GIB = 2 ** 30;
const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;

export function machineLayout(kind: MachineKind, ramBytes: number): MachineLayout {
  if (!Number.isSafeInteger(ramBytes) || ramBytes <= 0 || ramBytes % 4096 !== 0) {
    throw new RangeError(`ramBytes must be a positive multiple of 4096: ${ramBytes}`);
  }
  if (kind === 'virt-smmuv3') {
    const ramBase = 0x4000_0000;
    const ramEnd = ramBase + ramBytes;
    // Above RAM and never below 512 GiB, as virt's high IO regions are.
    const high = alignUp(Math.max(ramEnd, 512 * GIB), 512 * GIB);
    return {
      kind,
      ram: [{ gpa: ramBase, offset: 0, size: ramBytes }],
      ecamBase: 0x3f00_0000,
      ecamBuses: 16,
      mmio32: [0x1000_0000, 0x3efe_ffff],
      mmio64: [high, high + 512 * GIB - 1],
      msiBase: 0x0809_0000,
      msiSize: 0x1_0000,
      iommuBase: 0x0905_0000,
      iommuSize: 0x2_0000,
    };
  }
  const low = Math.min(ramBytes, 2 * GIB);
  const ram: RamRange[] = [{ gpa: 0, offset: 0, size: low }];
  if (ramBytes > low) ram.push({ gpa: 4 * GIB, offset: low, size: ramBytes - low });
  const ramTop = ram[ram.length - 1]!.gpa + ram[ram.length - 1]!.size;
  const high = alignUp(Math.max(ramTop, 4 * GIB), 32 * GIB);
  return {
    kind,
    ram,
    ecamBase: 0xb000_0000,
    ecamBuses: 256,
    mmio32: [0xc000_0000, 0xfebf_ffff],
    mmio64: [high, high + 64 * GIB - 1],
    msiBase: 0xfee0_0000,
    msiSize: 0x10_0000,
    iommuBase: 0xfed9_0000,
    iommuSize: 0x1000,
  };
}
