/**
 * What this SMMUv3 model implements, and the ID register values that
 * advertise exactly that (§6.3.1-6.3.8 SMMU_IDR0-5, IIDR, AIDR). Decoders
 * of STEs, CDs and commands check against the same feature set.
 */
import { OAS_BITS, SMMU_REGS, type SmmuRegName } from './regs.ts';

export interface SmmuFeatures {
  /** Output (and, with no AArch32 tables, input) address size in bits. */
  readonly oas: 48 | 52;
  /** StreamID bits (IDR1.SIDSIZE). */
  readonly sidBits: number;
  /** SubstreamID bits (IDR1.SSIDSIZE). */
  readonly ssidBits: number;
  /** log2 of the largest command / event queue (IDR1.CMDQS / EVENTQS). */
  readonly cmdqLog2Max: number;
  readonly evtqLog2Max: number;
  /** log2 of the largest PRI queue (IDR1.PRIQS). */
  readonly priqLog2Max: number;
  /** Stalled transactions the SMMU can hold at once (IDR5.STALL_MAX). */
  readonly stallMax: number;
}

export function smmuFeatures(oas: 48 | 52 = 48): SmmuFeatures {
  return { oas, sidBits: 16, ssidBits: 20, cmdqLog2Max: 19, evtqLog2Max: 19, priqLog2Max: 19, stallMax: 64 };
}

/** IAS == OAS when AArch32 (VMSAv8-32 LPAE) tables are not supported (§3.4). */
export function iasBits(f: SmmuFeatures): number {
  return f.oas;
}

/** Largest virtual address size: 48, or 52 with IDR5.VAX = 1 (64K granule only). */
export function vaxBits(f: SmmuFeatures): number {
  return f.oas === 52 ? 52 : 48;
}

/** Reset values of the ID registers. */
export function idRegisterValues(f: SmmuFeatures): Partial<Record<SmmuRegName, number>> {
  return {
    IDR0: SMMU_REGS.pack('IDR0', {
      S2P: 1, S1P: 1,
      TTF: 0b10,          // AArch64 (VMSAv8-64) tables only
      COHACC: 1,          // structure and queue accesses are coherent
      HTTU: 0b10,         // Access flag and dirty state updates
      ASID16: 1, VMID16: 1,
      MSI: 1,             // queue/GERROR/CMD_SYNC interrupts may be MSIs
      CD2L: 1,            // 2-level CD tables
      TTENDIAN: 0b10,     // little-endian tables only
      ATS: 1,             // PCIe ATS: Translation Requests, Translated transactions, CMD_ATC_INV (§3.9.1)
      NS1ATS: 1,          // split-stage (stage 1 only) ATS not supported: STE.EATS == 0b10 is ILLEGAL
      PRI: 1,             // PCIe PRI: the PRI queue and CMD_PRI_RESP (§3.9.2, §8)
      STALL_MODEL: 0b00,  // stall and terminate models: CD.S / STE.S2S choose (§3.12.2)
      TERM_MODEL: 0,      // CD.A = 0 (RAZ/WI termination) supported
      ST_LEVEL: 0b01,     // 2-level Stream table
      // HYP, SEV, BTM, ATOS, VATOS, VMW, ATSRECERR: 0
    }),
    IDR1: SMMU_REGS.pack('IDR1', {
      SIDSIZE: f.sidBits, SSIDSIZE: f.ssidBits, EVENTQS: f.evtqLog2Max, CMDQS: f.cmdqLog2Max, PRIQS: f.priqLog2Max,
      // PRIVCFG/INSTCFG overrides are honoured; memory type/shareability
      // overrides are accepted (attributes are not modelled).
      ATTR_PERMS_OVR: 1, ATTR_TYPES_OVR: 1,
    }),
    IDR2: 0,
    IDR3: SMMU_REGS.pack('IDR3', {
      HAD: 1,   // CD.HAD0/HAD1 (hierarchical attributes disable)
      XNX: 1,   // stage 2 XN[1:0]
      RIL: 1,   // range invalidation and TTL hints (SMMUv3.2)
    }),
    IDR4: 0,
    IDR5: SMMU_REGS.pack('IDR5', {
      OAS: OAS_BITS.indexOf(f.oas), GRAN4K: 1, GRAN16K: 1, GRAN64K: 1, VAX: f.oas === 52 ? 1 : 0, STALL_MAX: f.stallMax,
    }),
    IIDR: 0, // Implementer 0: no product-specific errata apply
    AIDR: SMMU_REGS.pack('AIDR', { ARCHMAJORREV: 0, ARCHMINORREV: 2 }), // SMMUv3.2
  };
}
