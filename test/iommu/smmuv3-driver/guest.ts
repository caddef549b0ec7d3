/**
 * A guest behind a vSMMU, as a guest kernel's arm-smmu-v3 driver would set
 * itself up in its own (guest-physical) memory: a stage-1 VMSAv8-64 table,
 * a linear CD table with one CD (the same CD format Linux writes), the vSTE
 * words 0-1 it hands to the host (struct iommu_hwpt_arm_smmuv3) and
 * the 16-byte commands it forwards (struct iommu_viommu_arm_smmuv3_invalidate).
 */
import { createVmsaBuilder, type VmsaBuilder } from '../../../iommu/pgtable/vmsa-builder.ts';
import { encodeCommand, type CmdName } from '../../../iommu/smmuv3/cmd.ts';
import { stage1Cd } from '../../../iommu/smmuv3/driver/domains.ts';
import { STE_CONFIG, STE_LAYOUT } from '../../../iommu/smmuv3/ste.ts';
import { encodeLayout } from '../../../src/hw/layout.ts';
import { GuestMem, guestAllocator, type ByteAccess } from '../vtd-driver/guest.ts';

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

/** STE words 0-1 as 16 little-endian bytes. */
export function vste(fields: Record<string, number>): Uint8Array {
  const w = encodeLayout(STE_LAYOUT, fields).slice(0, 4);
  return new Uint8Array(w.buffer);
}

/** The vSTE of a guest that translates through its CD table at `cdTable` (linear, one CD). */
export function s1Vste(cdTable: number, extra: Record<string, number> = {}): Uint8Array {
  return vste({ V: 1, Config: STE_CONFIG.S1_TRANS, S1Fmt: 0, S1ContextPtr: cdTable / 64, S1CDMax: 0, S1DSS: 0, ...extra });
}

/** Guest commands as the array HWPT_INVALIDATE takes. */
export function vcmds(cmds: [CmdName, Record<string, number>][]): Uint8Array {
  const out = new Uint8Array(16 * cmds.length);
  cmds.forEach(([op, f], i) => out.set(new Uint8Array(encodeCommand(op, f).buffer), 16 * i));
  return out;
}
