import { field, type RegisterDef } from '../../src/hw/register-file.ts';

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
 */
export const DMAE_ID = { vendorId: 0x1b36, deviceId: 0x10e1, classCode: 0x088000 } as const;

/** 'DMAE' read as a little-endian word. */
export const DMAE_MAGIC = 0x45414d44;
/** Major 1, minor 0. */
export const DMAE_VERSION = 0x0001_0000;

export const DMAE_BAR = { REGS: 0, MSIX: 2, PORTALS: 4 } as const;
export const DMAE_REGS_SIZE = 0x1000;
export const DMAE_MSIX_PBA_OFFSET = 0x800;

/** BAR0 registers common to the device. */
export const DMAE_REGS = {
  /** RO: DMAE_MAGIC. */
  ID: 0x00,
  /** RO: DMAE_VERSION. */
  VERSION: 0x04,
  /** RO: NUM_WQ [7:0], OPS [15:8] (bit n: opcode n supported), MSIX_VECTORS [27:16]. */
  CAP: 0x08,
  /** RO: largest transfer size of one descriptor, bytes. */
  MAX_XFER: 0x0c,
  /** RO: ATC_ENTRIES [15:0], MAX_PRG_PAGES [23:16] (pages one page request group may carry). */
  ATC_CAP: 0x10,
  /** RO: MAX_DEPTH [15:0] (largest WQ_DEPTH), MAX_RING_LOG2 [20:16] (largest ring: 2^n entries). */
  WQ_CAP: 0x14,
  /** RW: ENABLE [0]. The device processes nothing while clear; clearing it disables every WQ. */
  GENCTRL: 0x20,
  /** RO: ENABLED [0]. */
  GENSTS: 0x24,
  /** RW: MSI-X vector raised when the error register latches an error; 0xffffffff = none (reset). */
  ERR_VECTOR: 0x28,
  /**
   * The software error register (DSA's SWERR): VALID [0] W1C, OVERFLOW [1]
   * W1C (another error came while VALID was set; the first one is kept),
   * WQ_VALID [2], FAULT_WRITE [3], CODE [15:8] (DMAE_ERROR or a descriptor
   * status), WQ [23:16], OPCODE [31:24]. All but VALID/OVERFLOW are RO.
   */
  ERROR: 0x30,
  /** RO: detail of the error (fault reason, PASID, doorbell value, first reserved bit...; see DMAE_ERROR). */
  ERROR_INFO: 0x34,
  /** RO 64-bit: address of the error (faulting address, completion-record address, ring slot). */
  ERROR_ADDR: 0x38,
} as const;

/** Per-WQ registers at WQ_REGS_BASE + wq * WQ_REGS_STRIDE + offset. */
export const WQ_REGS_BASE = 0x100;
export const WQ_REGS_STRIDE = 0x40;
export const WQ_REG = {
  /**
   * RW: ENABLE [0], SHARED [1] (descriptors may carry their own PASID, as
   * ENQCMD supplies it on a shared WQ), PRIV_ALLOWED [2] (descriptors may ask
   * for privileged requests). Ring base/size, depth and PASID defaults are
   * latched when ENABLE goes 0 -> 1; later writes take effect at the next enable.
   */
  CFG: 0x00,
  /** RO: ENABLED [0], QFULL [1], BUSY [2], HALTED [3] (a ring fetch faulted), OCCUPANCY [31:16]. */
  STATUS: 0x04,
  /** RW: PASID [19:0], PV [20], PRIV [21]: the WQ's default address space (and the ring's). */
  PASID: 0x08,
  /** RW: MSI-X vector for completions that request an interrupt; 0xffffffff = none (reset). */
  VECTOR: 0x0c,
  /** RW 64-bit: guest (I/O virtual) address of the descriptor ring, 64-byte aligned. */
  RING_BASE: 0x10,
  /** RW: ring entries (0 = no ring, portal only; at most 2^MAX_RING_LOG2). */
  RING_SIZE: 0x18,
  /** RW: queue depth: portal descriptors accepted and not yet completed (reset: WQ_CAP.MAX_DEPTH). */
  DEPTH: 0x1c,
  /** RO: ring index of the next descriptor the device will fetch. */
  HEAD: 0x20,
  /** RW doorbell: ring index one past the last valid descriptor. */
  TAIL: 0x24,
  /** RO: descriptors completed since enable (wraps at 2^32). */
  COMPLETED: 0x28,
  /** RO: portal submissions refused with RETRY since enable. */
  RETRIES: 0x2c,
} as const;

export function wqReg(wq: number, reg: number): number {
  return WQ_REGS_BASE + wq * WQ_REGS_STRIDE + reg;
}

export const GENCTRL = { ENABLE: 1 } as const;
export const GENSTS = { ENABLED: 1 } as const;
export const WQ_CFG = { ENABLE: 1 << 0, SHARED: 1 << 1, PRIV_ALLOWED: 1 << 2 } as const;
export const WQ_STATUS = { ENABLED: 1 << 0, QFULL: 1 << 1, BUSY: 1 << 2, HALTED: 1 << 3, OCCUPANCY_SHIFT: 16 } as const;
export const WQ_PASID = { PASID: 0xfffff, PV: 1 << 20, PRIV: 1 << 21 } as const;
export const ERROR_BITS = {
  VALID: 1 << 0,
  OVERFLOW: 1 << 1,
  WQ_VALID: 1 << 2,
  FAULT_WRITE: 1 << 3,
  CODE_SHIFT: 8,
  WQ_SHIFT: 16,
  OPCODE_SHIFT: 24,
} as const;
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

/** The BAR0 register table for a device with these capabilities. */
export function registerDefs(c: RegisterCaps): RegisterDef[] {
  const defs: RegisterDef[] = [
    { name: 'ID', offset: DMAE_REGS.ID, size: 4, access: 'ro', reset: DMAE_MAGIC },
    { name: 'VERSION', offset: DMAE_REGS.VERSION, size: 4, access: 'ro', reset: DMAE_VERSION },
    {
      name: 'CAP',
      offset: DMAE_REGS.CAP,
      size: 4,
      reset: (c.workQueues | (c.opsMask << 8) | (c.msixVectors << 16)) >>> 0,
      fields: [field('NUM_WQ', 0, 8, 'ro'), field('OPS', 8, 8, 'ro'), field('MSIX_VECTORS', 16, 12, 'ro')],
    },
    { name: 'MAX_XFER', offset: DMAE_REGS.MAX_XFER, size: 4, access: 'ro', reset: c.maxTransfer },
    {
      name: 'ATC_CAP',
      offset: DMAE_REGS.ATC_CAP,
      size: 4,
      reset: (c.atcEntries | (c.maxPrgPages << 16)) >>> 0,
      fields: [field('ATC_ENTRIES', 0, 16, 'ro'), field('MAX_PRG_PAGES', 16, 8, 'ro')],
    },
    {
      name: 'WQ_CAP',
      offset: DMAE_REGS.WQ_CAP,
      size: 4,
      reset: (c.maxDepth | (MAX_RING_LOG2 << 16)) >>> 0,
      fields: [field('MAX_DEPTH', 0, 16, 'ro'), field('MAX_RING_LOG2', 16, 5, 'ro')],
    },
    { name: 'GENCTRL', offset: DMAE_REGS.GENCTRL, size: 4, fields: [field('ENABLE', 0, 1)] },
    { name: 'GENSTS', offset: DMAE_REGS.GENSTS, size: 4, fields: [field('ENABLED', 0, 1, 'ro')] },
    { name: 'ERR_VECTOR', offset: DMAE_REGS.ERR_VECTOR, size: 4, reset: NO_VECTOR },
    {
      name: 'ERROR',
      offset: DMAE_REGS.ERROR,
      size: 4,
      fields: [
        field('VALID', 0, 1, 'w1c'),
        field('OVERFLOW', 1, 1, 'w1c'),
        field('WQ_VALID', 2, 1, 'ro'),
        field('FAULT_WRITE', 3, 1, 'ro'),
        field('CODE', 8, 8, 'ro'),
        field('WQ', 16, 8, 'ro'),
        field('OPCODE', 24, 8, 'ro'),
      ],
    },
    { name: 'ERROR_INFO', offset: DMAE_REGS.ERROR_INFO, size: 4, access: 'ro' },
    { name: 'ERROR_ADDR', offset: DMAE_REGS.ERROR_ADDR, size: 8, access: 'ro' },
  ];
  for (let i = 0; i < c.workQueues; i++) {
    const r = (reg: number) => wqReg(i, reg);
    defs.push(
      {
        name: `WQ${i}_CFG`,
        offset: r(WQ_REG.CFG),
        size: 4,
        fields: [field('ENABLE', 0, 1), field('SHARED', 1, 1), field('PRIV_ALLOWED', 2, 1)],
      },
      {
        name: `WQ${i}_STATUS`,
        offset: r(WQ_REG.STATUS),
        size: 4,
        fields: [
          field('ENABLED', 0, 1, 'ro'),
          field('QFULL', 1, 1, 'ro'),
          field('BUSY', 2, 1, 'ro'),
          field('HALTED', 3, 1, 'ro'),
          field('OCCUPANCY', 16, 16, 'ro'),
        ],
      },
      {
        name: `WQ${i}_PASID`,
        offset: r(WQ_REG.PASID),
        size: 4,
        fields: [field('PASID', 0, 20), field('PV', 20, 1), field('PRIV', 21, 1)],
      },
      { name: `WQ${i}_VECTOR`, offset: r(WQ_REG.VECTOR), size: 4, reset: NO_VECTOR },
      { name: `WQ${i}_RING_BASE`, offset: r(WQ_REG.RING_BASE), size: 8 },
      { name: `WQ${i}_RING_SIZE`, offset: r(WQ_REG.RING_SIZE), size: 4 },
      { name: `WQ${i}_DEPTH`, offset: r(WQ_REG.DEPTH), size: 4, reset: c.maxDepth },
      { name: `WQ${i}_HEAD`, offset: r(WQ_REG.HEAD), size: 4, access: 'ro' },
      { name: `WQ${i}_TAIL`, offset: r(WQ_REG.TAIL), size: 4 },
      { name: `WQ${i}_COMPLETED`, offset: r(WQ_REG.COMPLETED), size: 4, access: 'ro' },
      { name: `WQ${i}_RETRIES`, offset: r(WQ_REG.RETRIES), size: 4, access: 'ro' },
    );
  }
  return defs;
}
