import { defineLayout, encodeLayout, getBits, setBits, type Layout } from '../../src/hw/layout.ts';
import type { FieldAccess, RegisterDef } from '../../src/hw/register-file.ts';
import type { FieldSpec } from '../../src/hw/layout.ts';

/**
 * The DMA engine's MMIO layout, shared by the model, drivers and tests (the
 * role of a C header). Ideas from Intel DSA (work queues, portals accepting
 * 64-byte descriptors as ENQCMD does, completion records, a software error
 * register), with a smaller register map of our own.
 *
 * BAR0 (mem64, 4 KiB): the registers below.
 * BAR2 (mem64, 4 KiB): MSI-X table at 0x000, PBA at 0x800.
 * BAR4 (mem64, one 4 KiB page per work queue, rounded to a power of two):
 *   the portals. Page `n` is the portal of WQ `n` (so each can be mapped into
 *   a different process, as DSA's are).
 *
 * IDs: vendor 0x1b36 (the ID QEMU's virtual devices use), device 0x10e1,
 * local to ioemu; class 0x088000 (system peripheral, other).
 *
 * Every register is declared once below: offset, width, software access and
 * its fields in layout.ts's `[name, msb, lsb?]` notation (plus the field's
 * access when it differs from the register's). The RegisterFile definition
 * and a typed Layout come from that one declaration; models and drivers
 * encode and decode field values through it (regValue, regField, withField),
 * so a misspelt field name does not compile.
 */
export const DMAE_ID = { vendorId: 0x1b36, deviceId: 0x10e1, classCode: 0x088000 } as const;

/** 'DMAE' read as a little-endian word. */
export const DMAE_MAGIC = 0x45414d44;
/** Major 1, minor 0. */
export const DMAE_VERSION = 0x0001_0000;

export const DMAE_BAR = { REGS: 0, MSIX: 2, PORTALS: 4 } as const;
export const DMAE_REGS_SIZE = 0x1000;
export const DMAE_MSIX_PBA_OFFSET = 0x800;

/** A field `[name, msb, lsb?, access?]`: layout.ts's notation, and the access when it is not the register's. */
type RegField<F extends string> = readonly [F, number, number?, FieldAccess?];

interface RegSpec<F extends string> {
  readonly offset: number;
  /** 4 (default) or 8 bytes. */
  readonly size?: 4 | 8;
  /** Access of the whole register, or of its fields that do not say (default 'rw'). */
  readonly access?: FieldAccess;
  /** None: the register is one value (a count, an address, a vector). */
  readonly fields?: readonly RegField<F>[];
}

/** One register as declared: where it is, and its fields as a typed layout (numbered within the register). */
export interface EngineRegister<F extends string = string> {
  readonly name: string;
  readonly offset: number;
  readonly size: 4 | 8;
  readonly access: FieldAccess;
  readonly layout: Layout<F>;
  /** The same fields with their access, as RegisterFile takes them; undefined for a register without fields. */
  readonly fields: readonly FieldSpec[] | undefined;
}

/** The field names of a register (`FieldOf<typeof WQ_REGISTERS.CFG>`). */
export type FieldOf<R> = R extends EngineRegister<infer F> ? F : never;

type SpecFields<S> = S extends { readonly fields: readonly (readonly [infer F extends string, ...unknown[]])[] } ? F : never;
type RegisterMap<T> = { readonly [K in keyof T]: EngineRegister<SpecFields<T[K]>> };

/** Registers from their specs, each named by its key. */
function registers<const T extends Record<string, RegSpec<string>>>(specs: T): RegisterMap<T> {
  const out: Record<string, EngineRegister> = {};
  for (const [name, s] of Object.entries(specs)) {
    const size = s.size ?? 4;
    const access = s.access ?? 'rw';
    const f = s.fields;
    out[name] = {
      name, offset: s.offset, size, access,
      layout: defineLayout(name, size, (f ?? []).map(([n, msb, lsb]) => [n, msb, lsb] as const)),
      fields: f?.map(([n, msb, lsb = msb, acc]): FieldSpec => [n, msb, lsb, acc ?? access]),
    };
  }
  return out as RegisterMap<T>;
}

/** Byte offsets by register name (what drivers add to the BAR). */
function offsets<T extends Record<string, { readonly offset: number }>>(regs: T): { readonly [K in keyof T]: number } {
  const out: Record<string, number> = {};
  for (const [name, r] of Object.entries(regs)) out[name] = r.offset;
  return out as { [K in keyof T]: number };
}

/** BAR0 registers common to the device. */
export const DMAE_REGISTERS = registers({
  /** DMAE_MAGIC. */
  ID: { offset: 0x00, access: 'ro' },
  /** DMAE_VERSION. */
  VERSION: { offset: 0x04, access: 'ro' },
  /** OPS: bit n set when opcode n is supported. */
  CAP: { offset: 0x08, access: 'ro', fields: [['NUM_WQ', 7, 0], ['OPS', 15, 8], ['MSIX_VECTORS', 27, 16]] },
  /** Largest transfer size of one descriptor, bytes. */
  MAX_XFER: { offset: 0x0c, access: 'ro' },
  /** MAX_PRG_PAGES: pages one page request group may carry. */
  ATC_CAP: { offset: 0x10, access: 'ro', fields: [['ATC_ENTRIES', 15, 0], ['MAX_PRG_PAGES', 23, 16]] },
  /** MAX_DEPTH: largest WQ DEPTH; MAX_RING_LOG2: largest ring, 2^n entries. */
  WQ_CAP: { offset: 0x14, access: 'ro', fields: [['MAX_DEPTH', 15, 0], ['MAX_RING_LOG2', 20, 16]] },
  /** The device processes nothing while ENABLE is clear; clearing it disables every WQ. */
  GENCTRL: { offset: 0x20, fields: [['ENABLE', 0]] },
  GENSTS: { offset: 0x24, access: 'ro', fields: [['ENABLED', 0]] },
  /** MSI-X vector raised when the error register latches an error; NO_VECTOR (reset) = none. */
  ERR_VECTOR: { offset: 0x28 },
  /**
   * The software error register (DSA's SWERR). OVERFLOW: another error came
   * while VALID was set (the first one is kept). CODE: DMAE_ERROR or a
   * descriptor status (DESC_STATUS).
   */
  ERROR: {
    offset: 0x30,
    access: 'ro',
    fields: [
      ['VALID', 0, 0, 'w1c'], ['OVERFLOW', 1, 1, 'w1c'], ['WQ_VALID', 2], ['FAULT_WRITE', 3], ['CODE', 15, 8], ['WQ', 23, 16], ['OPCODE', 31, 24],
    ],
  },
  /** Detail of the error (fault reason, PASID, doorbell value, first reserved bit...; see DMAE_ERROR). */
  ERROR_INFO: { offset: 0x34, access: 'ro' },
  /** Address of the error (faulting address, completion-record address, ring slot). */
  ERROR_ADDR: { offset: 0x38, size: 8, access: 'ro' },
});

/** Per-WQ registers at WQ_REGS_BASE + wq * WQ_REGS_STRIDE + offset. */
export const WQ_REGS_BASE = 0x100;
export const WQ_REGS_STRIDE = 0x40;
export const WQ_REGISTERS = registers({
  /**
   * SHARED: descriptors may carry their own PASID (as ENQCMD supplies it on
   * a shared WQ); PRIV_ALLOWED: they may ask for privileged requests. Ring
   * base/size, depth and PASID defaults are latched when ENABLE goes 0 -> 1;
   * later writes take effect at the next enable.
   */
  CFG: { offset: 0x00, fields: [['ENABLE', 0], ['SHARED', 1], ['PRIV_ALLOWED', 2]] },
  /** HALTED: a ring fetch faulted. OCCUPANCY: portal descriptors accepted and not completed. */
  STATUS: { offset: 0x04, access: 'ro', fields: [['ENABLED', 0], ['QFULL', 1], ['BUSY', 2], ['HALTED', 3], ['OCCUPANCY', 31, 16]] },
  /** The WQ's default address space (and the ring's). */
  PASID: { offset: 0x08, fields: [['PASID', 19, 0], ['PV', 20], ['PRIV', 21]] },
  /** MSI-X vector for completions that request an interrupt; NO_VECTOR (reset) = none. */
  VECTOR: { offset: 0x0c },
  /** Guest (I/O virtual) address of the descriptor ring, 64-byte aligned. */
  RING_BASE: { offset: 0x10, size: 8 },
  /** Ring entries (0 = no ring, portal only; at most 2^MAX_RING_LOG2). */
  RING_SIZE: { offset: 0x18 },
  /** Queue depth: portal descriptors accepted and not yet completed (reset: WQ_CAP.MAX_DEPTH). */
  DEPTH: { offset: 0x1c },
  /** Ring index of the next descriptor the device will fetch. */
  HEAD: { offset: 0x20, access: 'ro' },
  /** Doorbell: ring index one past the last valid descriptor. */
  TAIL: { offset: 0x24 },
  /** Descriptors completed since enable (wraps at 2^32). */
  COMPLETED: { offset: 0x28, access: 'ro' },
  /** Portal submissions refused with RETRY since enable. */
  RETRIES: { offset: 0x2c, access: 'ro' },
});

/** BAR0 offsets of the device registers. */
export const DMAE_REGS = offsets(DMAE_REGISTERS);
/** Offsets of a WQ's registers within its block (see wqReg). */
export const WQ_REG = offsets(WQ_REGISTERS);

export function wqReg(wq: number, reg: number): number {
  return WQ_REGS_BASE + wq * WQ_REGS_STRIDE + reg;
}

// --- field values through the declarations -------------------------------------

/** One word of scratch: the helpers below allocate nothing. */
const scratch = new Uint32Array(1);

/** A 32-bit register's value from field values (fields not given are 0): what a driver writes. */
export function regValue<F extends string>(reg: EngineRegister<F>, values: Partial<Record<F, number>>): number {
  return encodeLayout(reg.layout, values)[0]!;
}

/** One field of a 32-bit register's value: what a driver makes of what it read. */
export function regField<F extends string>(reg: EngineRegister<F>, value: number, field: F): number {
  scratch[0] = value;
  return getBits(scratch, reg.layout.fields[field]);
}

/** A 32-bit register's value with one field replaced. */
export function withField<F extends string>(reg: EngineRegister<F>, value: number, field: F, fieldValue: number): number {
  scratch[0] = value;
  setBits(scratch, reg.layout.fields[field], fieldValue);
  return scratch[0];
}

export const NO_VECTOR = 0xffffffff;
export const MAX_RING_LOG2 = 16;
export const MAX_WORK_QUEUES = 16;

/**
 * Error-register codes for errors no completion record can carry. A
 * descriptor error the descriptor asked no completion record for (or whose
 * record address is unusable) is latched with its descriptor status code
 * (DESC_STATUS) instead.
 */
export const DMAE_ERROR = {
  /** A portal write or doorbell for a disabled WQ (INFO: the WQ). */
  WQ_DISABLED: 0x30,
  /** A doorbell value >= RING_SIZE (INFO: the value written; TAIL unchanged). */
  DOORBELL_RANGE: 0x31,
  /** Reading a ring slot failed (ADDR: the slot, INFO: fault reason): the WQ halts. */
  RING_FETCH_FAULT: 0x32,
  /** Writing a completion record failed (ADDR: the record, INFO: fault reason). */
  COMPLETION_WRITE_FAULT: 0x33,
  /** ENABLE with a bad ring base/size or depth: the WQ stays disabled (INFO: which, see WQ_CONFIG_ERROR). */
  WQ_CONFIG_INVALID: 0x34,
  /** A WQ enable while GENCTRL.ENABLE is clear. */
  DEVICE_DISABLED: 0x35,
  /** A doorbell on a WQ with no ring (RING_SIZE 0 at enable). */
  NO_RING: 0x36,
} as const;

/** ERROR_INFO of WQ_CONFIG_INVALID. */
export const WQ_CONFIG_ERROR = { RING_ALIGN: 1, RING_SIZE: 2, DEPTH: 3, PASID: 4 } as const;

/**
 * The portal page (BAR4 + wq * 0x1000). Submission protocol, modelled on
 * ENQCMD/MOVDIR64B into a DSA portal:
 * - software writes the 64-byte descriptor to offsets 0x00..0x3f with
 *   8-byte (or 4-byte; sub-word writes merge bytes) MMIO writes, in
 *   increasing address order; a 64-bit write reaches the device as two
 *   32-bit writes, low half first;
 * - the write that covers byte 0x3f submits the assembled descriptor; bytes
 *   not written since the previous submission read as zero;
 * - the result is readable at PORTAL.STATUS: ACCEPTED, RETRY (the WQ holds
 *   WQ_DEPTH descriptors: nothing was queued, submit again later, as ENQCMD
 *   returns ZF=1) or DISABLED (the WQ or the device is disabled: discarded,
 *   and latched in the error register as WQ_DISABLED);
 * - reads of 0x00..0x3f return 0; other offsets are reserved.
 */
export const PORTAL = { PAGE: 0x1000, DESC_BYTES: 64, STATUS: 0x40 } as const;
export const PORTAL_STATUS = { ACCEPTED: 0, RETRY: 1, DISABLED: 2 } as const;

export interface RegisterCaps {
  workQueues: number;
  opsMask: number;
  msixVectors: number;
  maxTransfer: number;
  atcEntries: number;
  maxPrgPages: number;
  maxDepth: number;
}

function def(r: EngineRegister, name: string, offset: number, reset?: number): RegisterDef {
  const d: RegisterDef = { name, offset, size: r.size };
  if (r.fields !== undefined) d.fields = r.fields; // shared, not copied: RegisterFile resolves a field table once
  else d.access = r.access;
  if (reset !== undefined) d.reset = reset;
  return d;
}

/** Definitions by capabilities: the same list for the same device (a register file built from it then shares its shape). */
const defsByCaps = new Map<string, readonly RegisterDef[]>();

/** The BAR0 register table for a device with these capabilities (one list per capabilities; do not change it). */
export function registerDefs(c: RegisterCaps): readonly RegisterDef[] {
  const key = `${c.workQueues},${c.opsMask},${c.msixVectors},${c.maxTransfer},${c.atcEntries},${c.maxPrgPages},${c.maxDepth}`;
  let defs = defsByCaps.get(key);
  if (defs === undefined) defsByCaps.set(key, (defs = Object.freeze(buildRegisterDefs(c))));
  return defs;
}

function buildRegisterDefs(c: RegisterCaps): RegisterDef[] {
  const R = DMAE_REGISTERS;
  const resets: Partial<Record<keyof typeof DMAE_REGISTERS, number>> = {
    ID: DMAE_MAGIC,
    VERSION: DMAE_VERSION,
    CAP: regValue(R.CAP, { NUM_WQ: c.workQueues, OPS: c.opsMask, MSIX_VECTORS: c.msixVectors }),
    MAX_XFER: c.maxTransfer,
    ATC_CAP: regValue(R.ATC_CAP, { ATC_ENTRIES: c.atcEntries, MAX_PRG_PAGES: c.maxPrgPages }),
    WQ_CAP: regValue(R.WQ_CAP, { MAX_DEPTH: c.maxDepth, MAX_RING_LOG2 }),
    ERR_VECTOR: NO_VECTOR,
  };
  const defs: RegisterDef[] = [];
  for (const r of Object.values(R) as EngineRegister[]) defs.push(def(r, r.name, r.offset, resets[r.name as keyof typeof R]));
  const wqResets: Partial<Record<keyof typeof WQ_REGISTERS, number>> = { VECTOR: NO_VECTOR, DEPTH: c.maxDepth };
  for (let i = 0; i < c.workQueues; i++) {
    for (const r of Object.values(WQ_REGISTERS) as EngineRegister[]) {
      defs.push(def(r, `WQ${i}_${r.name}`, wqReg(i, r.offset), wqResets[r.name as keyof typeof WQ_REGISTERS]));
    }
  }
  return defs;
}
