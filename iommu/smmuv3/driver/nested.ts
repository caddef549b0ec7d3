/**
 * Nested translation through a vIOMMU, as Linux's arm-smmu-v3-iommufd.c does
 * it: a vSMMU (IOMMU_VIOMMU_TYPE_ARM_SMMUV3) over a nest-parent stage-2
 * domain, whose VMID tags everything the guest's stage 1 caches; nested
 * domains made from the guest's STE words 0-1 (struct iommu_hwpt_arm_smmuv3),
 * checked as arm_smmu_validate_vste does; and the guest's invalidation
 * commands forwarded to the command queue with the VMID substituted and
 * virtual StreamIDs translated (arm_vsmmu_convert_user_cmd); and the
 * stage-1 events of its masters reported to the vSMMU's vEVENTQ with the
 * vSID in them (arm_vmaster_report_event).
 *
 * Deliberate difference: when a command in the middle of an array is
 * refused, Linux (v6.15) reports the converted-but-unissued commands before
 * it as handled without issuing them; here they are issued first, so every
 * entry counted in `done` really ran.
 */
import { E2BIG, EINVAL, EIO, ENOENT, EOPNOTSUPP, ETIMEDOUT } from '../../../src/uapi/errno.ts';
import { encodeLayout, readField, writeField, type FieldTable } from '../../../src/hw/layout.ts';
import type { DomainGeometry, DriverDomain, DriverViommu, ViommuVdevs } from '../../../src/iommu-core/types.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import { iommuCopyStructFromUser } from '../../../src/iommu-core/user-data.ts';
import { IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, iommu_vevent_arm_smmuv3 } from '../../../src/uapi/iommufd.ts';
import { CMD, CMD_OP, cmdOpcode, encodeCommand } from '../cmd.ts';
import { EVT_HEADER } from '../event.ts';
import { STE_CONFIG, STE_LAYOUT } from '../ste.ts';
import type { S2Domain } from './domains.ts';
import type { Smmuv3Driver } from './driver.ts';

/** sizeof(struct iommu_hwpt_arm_smmuv3) { __aligned_le64 ste[2]; } and of struct iommu_viommu_arm_smmuv3_invalidate { __aligned_le64 cmd[2]; }. */
export const VSTE_BYTES = 16;
export const VCMD_BYTES = 16;
/** An event queue record (§7.3), reported as struct iommu_vevent_arm_smmuv3 { __aligned_le64 evt[4]; }. */
const EVT_RECORD_BYTES = iommu_vevent_arm_smmuv3.size;
/** Linux CMDQ_BATCH_ENTRIES (BITS_PER_LONG): the forwarded commands go in batches of 63 plus a CMD_SYNC. */
const BATCH = 63;

const F = STE_LAYOUT.fields;
/**
 * STRTAB_STE_0_NESTING_ALLOWED | STRTAB_STE_1_NESTING_ALLOWED (arm-smmu-v3.h)
 * as four 32-bit words: V, Config, S1Fmt, S1ContextPtr (only [51:6], as
 * Linux's S1CTXPTR_MASK), S1CDMax; S1DSS, S1CIR, S1COR, S1CSH, S1STALLD, EATS.
 */
const NESTING_ALLOWED: Uint32Array = (() => {
  const full = (f: { width: number }) => 2 ** f.width - 1;
  const w = encodeLayout(STE_LAYOUT, {
    V: 1, Config: full(F.Config), S1Fmt: full(F.S1Fmt), S1ContextPtr: 2 ** 46 - 1, S1CDMax: full(F.S1CDMax),
    S1DSS: full(F.S1DSS), S1CIR: full(F.S1CIR), S1COR: full(F.S1COR), S1CSH: full(F.S1CSH), S1STALLD: 1, EATS: full(F.EATS),
  });
  return w.slice(0, 4);
})();

/** STRTAB_STE_1_EATS values a guest may ask for: abort (0) or full translation (1). */
const EATS_ABT = 0;
const EATS_TRANS = 1;

export interface Vste {
  /** STE words 0-3 (dwords 0-1), EATS cleared; all zero for a non-valid vSTE. */
  words: Uint32Array;
  /** STE.Config the guest asked for: abort (also for V = 0), bypass or stage-1 translate. */
  config: number;
  /** EATS = translate with Config = S1 translate: the guest manages the ATC. */
  enableAts: boolean;
}

/**
 * iommu_copy_struct_from_user(IOMMU_HWPT_DATA_ARM_SMMUV3, ste) then
 * arm_smmu_validate_vste(): wrong type -EINVAL, any length but the
 * struct's -EINVAL (src/iommu-core/user-data.ts); a vSTE without V becomes an
 * all-zero (abort) vSTE; a set bit outside the allowed fields, a Config
 * other than abort/bypass/S1-translate or an EATS other than 0/1 is -EIO.
 */
export function parseVste(dataType: number, data: Uint8Array): Vste | number {
  if (dataType !== IOMMU_HWPT_DATA_ARM_SMMUV3) return -EINVAL;
  const c = iommuCopyStructFromUser(data, VSTE_BYTES);
  if (typeof c === 'number') return c;
  const dv = new DataView(data.buffer, data.byteOffset, VSTE_BYTES);
  const words = new Uint32Array(4);
  for (let i = 0; i < 4; i++) words[i] = dv.getUint32(4 * i, true);
  if (readField(STE_LAYOUT, words, 'V') === 0) return { words: new Uint32Array(4), config: STE_CONFIG.ABORT, enableAts: false };
  for (let i = 0; i < 4; i++) if ((words[i]! & ~NESTING_ALLOWED[i]!) !== 0) return -EIO;
  const config = readField(STE_LAYOUT, words, 'Config');
  if (config !== STE_CONFIG.ABORT && config !== STE_CONFIG.BYPASS && config !== STE_CONFIG.S1_TRANS) return -EIO;
  const eats = readField(STE_LAYOUT, words, 'EATS');
  if (eats !== EATS_ABT && eats !== EATS_TRANS) return -EIO;
  writeField(STE_LAYOUT, words, 'EATS', 0);
  return { words, config, enableAts: config === STE_CONFIG.S1_TRANS && eats === EATS_TRANS };
}

/** A nested domain (IOMMU_DOMAIN_NESTED): the guest's STE over the vSMMU's stage 2. */
export class NestedDomain implements DriverDomain {
  readonly type = 'nested' as const;
  readonly pgsizes: readonly number[] = [];
  readonly geometry: DomainGeometry = { apertureStart: 0, apertureEnd: 2 ** 48 - 1 };
  /** master->vmaster->vsid of each device attached here, fixed at attach. */
  private readonly vsids = new WeakMap<PciFunction, number>();

  constructor(
    readonly vsmmu: Smmuv3Viommu,
    readonly vste: Vste,
  ) {}

  /** The stage-2 domain whose translation and VMID the installed STE carries. */
  get s2Parent(): S2Domain {
    return this.vsmmu.parent;
  }

  /** arm_smmu_attach_dev_nested(); the STE itself is composed in Masters.installSte. */
  attachDev(dev: PciFunction): number {
    const r = this.vsmmu.smmu.attachNested(dev, this);
    if (r !== 0) return r;
    // arm_smmu_attach_prepare_vmaster(): the vSID is looked up once, at attach (bypass/abort may have none).
    const vsid = this.vsmmu.vdevs.virtIdOf(dev);
    if (vsid === undefined) this.vsids.delete(dev);
    else this.vsids.set(dev, vsid);
    return 0;
  }

  /**
   * arm_vmaster_report_event(): the raw 32-byte record (eight little-endian
   * words) with its StreamID field (bits [63:32], EVTQ_0_SID) replaced by
   * the vSID, every other bit as the SMMU wrote it, reported to the vSMMU's
   * IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 queue as struct iommu_vevent_arm_smmuv3.
   * -ENOENT when the device had no vDEVICE at attach, -EOPNOTSUPP when the
   * vIOMMU has no such queue.
   */
  reportEvent(dev: PciFunction, words: ArrayLike<number>): number {
    const vsid = this.vsids.get(dev);
    if (vsid === undefined) return -ENOENT;
    const report = this.vsmmu.vdevs.reportEvent;
    if (report === undefined) return -EOPNOTSUPP;
    const w = Uint32Array.from({ length: EVT_RECORD_BYTES / 4 }, (_, i) => words[i]! >>> 0);
    // FIELD_PREP(EVTQ_0_SID, vsid): the low 32 bits of the virtual ID.
    writeField(EVT_HEADER, w, 'StreamID', vsid % 2 ** 32);
    const rec = new Uint8Array(EVT_RECORD_BYTES);
    const dv = new DataView(rec.buffer);
    for (let i = 0; i < w.length; i++) dv.setUint32(4 * i, w[i]!, true);
    return report(IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, rec);
  }

  free(): void {}
}

/** struct arm_vsmmu: the vIOMMU of one SMMU over a nest-parent stage 2. */
export class Smmuv3Viommu implements DriverViommu {
  constructor(
    readonly smmu: Smmuv3Driver,
    readonly parent: S2Domain,
    readonly vdevs: ViommuVdevs,
  ) {}

  /** vsmmu->vmid: the parent's VMID (Linux keeps it in the S2 domain for now). */
  get vmid(): number {
    return this.parent.vmid;
  }

  /** arm_vsmmu_alloc_domain_nested(): no flags are supported. */
  allocDomainNested(_dev: PciFunction, flags: number, dataType: number, data: Uint8Array): DriverDomain | number {
    if (flags !== 0) return -EOPNOTSUPP;
    const v = parseVste(dataType, data);
    return typeof v === 'number' ? v : new NestedDomain(this, v);
  }

  /**
   * arm_vsmmu_cache_invalidate(): the whole array is copied first
   * (iommu_copy_struct_from_full_user_array: wrong type or no entries
   * -EINVAL, an entry shorter than a command is zero-extended, a longer one
   * with a non-zero tail -E2BIG), then converted and issued in batches with
   * a CMD_SYNC each; an unsupported command or an unknown vSID stops with
   * -EIO, a CMD_SYNC that never completes with -ETIMEDOUT (that batch's last
   * entry not counted, as Linux does).
   */
  cacheInvalidate(type: number, entryLen: number, count: number, copy: () => Uint8Array | number): { done: number; err: number } {
    if (type !== IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 || count === 0) return { done: 0, err: -EINVAL };
    const raw = copy();
    if (typeof raw === 'number') return { done: 0, err: raw };
    const cmds: Uint32Array[] = [];
    for (let i = 0; i < count; i++) {
      const e = raw.subarray(i * entryLen, (i + 1) * entryLen);
      for (let j = VCMD_BYTES; j < e.length; j++) if (e[j] !== 0) return { done: 0, err: -E2BIG };
      const b = new Uint8Array(VCMD_BYTES);
      b.set(e.subarray(0, VCMD_BYTES));
      cmds.push(new Uint32Array(b.buffer));
    }
    let batch: Uint32Array[] = [];
    for (let i = 0; i < count; i++) {
      const c = this.convert(cmds[i]!);
      if (typeof c === 'number') {
        if (batch.length > 0 && !this.smmu.cmdq.issueSync(batch)) return { done: i - 1, err: -ETIMEDOUT };
        return { done: i, err: c };
      }
      batch.push(c);
      if (batch.length === BATCH || i === count - 1) {
        if (!this.smmu.cmdq.issueSync(batch)) return { done: i, err: -ETIMEDOUT };
        batch = [];
      }
    }
    return { done: count, err: 0 };
  }

  /** arm_vsmmu_convert_user_cmd(): enforce the VMID or the physical StreamID on a guest command. */
  private convert(cmd: Uint32Array): Uint32Array | number {
    switch (cmdOpcode(cmd)) {
      case CMD_OP.TLBI_NSNH_ALL:
        // The guest's "everything" is everything under its VMID.
        return encodeCommand('TLBI_NH_ALL', { VMID: this.vmid });
      case CMD_OP.TLBI_NH_VA:
        return this.withVmid(cmd, CMD.TLBI_NH_VA);
      case CMD_OP.TLBI_NH_VAA:
        return this.withVmid(cmd, CMD.TLBI_NH_VAA);
      case CMD_OP.TLBI_NH_ALL:
        return this.withVmid(cmd, CMD.TLBI_NH_ALL);
      case CMD_OP.TLBI_NH_ASID:
        return this.withVmid(cmd, CMD.TLBI_NH_ASID);
      case CMD_OP.ATC_INV:
        return this.withPhysSid(cmd, CMD.ATC_INV);
      case CMD_OP.CFGI_CD:
        return this.withPhysSid(cmd, CMD.CFGI_CD);
      case CMD_OP.CFGI_CD_ALL:
        return this.withPhysSid(cmd, CMD.CFGI_CD_ALL);
      default:
        return -EIO;
    }
  }

  private withVmid(cmd: Uint32Array, l: FieldTable<'VMID'>): Uint32Array {
    writeField(l, cmd, 'VMID', this.vmid);
    return cmd;
  }

  /** The guest's vSID in the command becomes the device's physical StreamID (-EIO for an unknown vSID). */
  private withPhysSid(cmd: Uint32Array, l: FieldTable<'StreamID'>): Uint32Array | number {
    const dev = this.vdevs.findDev(readField(l, cmd, 'StreamID'));
    const sid = dev === undefined ? undefined : this.smmu.sidOf(dev);
    if (sid === undefined) return -EIO;
    writeField(l, cmd, 'StreamID', sid);
    return cmd;
  }

  free(): void {}
}
