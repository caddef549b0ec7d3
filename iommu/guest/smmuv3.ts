/**
 * The guest half of SMMUv3 nested translation: what a guest kernel's
 * arm-smmu-v3 driver behind a virtual SMMU sets up in its own (guest-
 * physical) memory — a stage-1 VMSAv8-64 table and a linear CD table with one
 * CD, in the CD format Linux writes — and what the VMM passes to iommufd for
 * it (include/uapi/linux/iommufd.h): STE dwords 0-1 as struct
 * iommu_hwpt_arm_smmuv3 for IOMMU_HWPT_ALLOC on a vIOMMU, and 16-byte
 * commands as struct iommu_viommu_arm_smmuv3_invalidate entries for
 * IOMMU_HWPT_INVALIDATE on the vIOMMU.
 */
import { createVmsaBuilder, type VmsaBuilder } from '../pgtable/vmsa-builder.ts';
import { encodeCommand, type CmdName, type CmdValues } from '../smmuv3/cmd.ts';
import { stage1Cd } from '../smmuv3/driver/domains.ts';
import { STE_CONFIG, STE_LAYOUT, type SteField } from '../smmuv3/ste.ts';
import { encodeLayout } from '../../src/hw/layout.ts';
import { iommu_hwpt_arm_smmuv3, iommu_viommu_arm_smmuv3_invalidate } from '../../src/uapi/iommufd.ts';
import { GuestMem, guestAllocator, type ByteAccess } from './guest-mem.ts';

/** The ASID the guest gives its address space (the CD's ASID; TLBI_NH_* name it). */
export const GUEST_ASID = 7;

export interface GuestS1 {
  mem: GuestMem;
  s1: VmsaBuilder;
  /** GPA of the guest's CD table (one CD, at SubstreamID 0). */
  cdTable: number;
}

/**
 * The guest's stage 1 over guest pages [tableBase, tableBase + pages * 4K):
 * the first page holds the CD table, the rest the translation tables.
 */
export function guestStage1(io: ByteAccess, tableBase: number, pages: number): GuestS1 {
  const mem = new GuestMem(io);
  mem.writeFrom(tableBase, new Uint8Array(4096));
  const s1 = createVmsaBuilder(mem, guestAllocator(mem, tableBase + 4096, pages - 1), {
    stage: 1, granule: 4096, iaBits: 48, oaBits: 48, nonGlobal: true,
  });
  if (typeof s1 === 'number') throw new Error(`vmsa builder ${s1}`);
  const cd = stage1Cd({ ttb0: s1.root, t0sz: s1.tsz, asid: GUEST_ASID, ipsCode: 5, shared: false, ha: false });
  for (let i = 0; i < cd.length; i++) mem.write32(tableBase + 4 * i, cd[i]!);
  return { mem, s1, cdTable: tableBase };
}

/** STE dwords 0-1 (struct iommu_hwpt_arm_smmuv3) from STE field values. */
export function vste(fields: Partial<Record<SteField, number>>): Uint8Array {
  const w = encodeLayout(STE_LAYOUT, fields).slice(0, iommu_hwpt_arm_smmuv3.size / 4);
  return new Uint8Array(w.buffer);
}

/** The vSTE of a guest that translates through its CD table at `cdTable` (linear, one CD). */
export function s1Vste(cdTable: number, extra: Partial<Record<SteField, number>> = {}): Uint8Array {
  return vste({ V: 1, Config: STE_CONFIG.S1_TRANS, S1Fmt: 0, S1ContextPtr: cdTable / 64, S1CDMax: 0, S1DSS: 0, ...extra });
}

/** One guest command: its name and its own fields. */
export type VCmd = { [N in CmdName]: readonly [N, CmdValues<N>] }[CmdName];

/** Guest commands as the array HWPT_INVALIDATE takes on an ARM SMMUv3 vIOMMU. */
export function vcmds(cmds: readonly VCmd[]): Uint8Array {
  const size = iommu_viommu_arm_smmuv3_invalidate.size;
  const out = new Uint8Array(size * cmds.length);
  cmds.forEach(([op, f], i) => out.set(new Uint8Array(encodeCommand(op, f).buffer), size * i));
  return out;
}
