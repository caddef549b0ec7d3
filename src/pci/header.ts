/**
 * Configuration header layout shared by type 0 (endpoint) and type 1 (bridge)
 * functions (PCI Local Bus 3.0 §6.1, PCIe Base 7.5.1).
 */
export const CFG = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  CLASS_PROG: 0x09,
  CLASS_DEVICE: 0x0a,
  CACHE_LINE_SIZE: 0x0c,
  LATENCY_TIMER: 0x0d,
  HEADER_TYPE: 0x0e,
  BIST: 0x0f,
  BAR0: 0x10,
  CAPABILITY_LIST: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
  // type 0
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  ROM_ADDRESS: 0x30,
  // type 1 (PCI-to-PCI Bridge Architecture 1.2 §3.2)
  PRIMARY_BUS: 0x18,
  SECONDARY_BUS: 0x19,
  SUBORDINATE_BUS: 0x1a,
  SEC_LATENCY_TIMER: 0x1b,
  IO_BASE: 0x1c,
  IO_LIMIT: 0x1d,
  SEC_STATUS: 0x1e,
  MEMORY_BASE: 0x20,
  MEMORY_LIMIT: 0x22,
  PREF_MEMORY_BASE: 0x24,
  PREF_MEMORY_LIMIT: 0x26,
  PREF_BASE_UPPER32: 0x28,
  PREF_LIMIT_UPPER32: 0x2c,
  BRIDGE_ROM_ADDRESS: 0x38,
  BRIDGE_CONTROL: 0x3e,
} as const;

export const COMMAND = {
  IO: 1 << 0,
  MEMORY: 1 << 1,
  MASTER: 1 << 2,
  PARITY: 1 << 6,
  SERR: 1 << 8,
  INTX_DISABLE: 1 << 10,
} as const;

/** Status register bits (RW1C error bits per PCI 3.0 §6.2.3). */
export const STATUS = {
  INTERRUPT: 1 << 3,
  CAP_LIST: 1 << 4,
  MASTER_DATA_PARITY: 1 << 8,
  SIG_TARGET_ABORT: 1 << 11,
  REC_TARGET_ABORT: 1 << 12,
  REC_MASTER_ABORT: 1 << 13,
  SIG_SYSTEM_ERROR: 1 << 14,
  DETECTED_PARITY: 1 << 15,
} as const;

export const STATUS_W1C =
  STATUS.MASTER_DATA_PARITY |
  STATUS.SIG_TARGET_ABORT |
  STATUS.REC_TARGET_ABORT |
  STATUS.REC_MASTER_ABORT |
  STATUS.SIG_SYSTEM_ERROR |
  STATUS.DETECTED_PARITY;

/** BAR low bits (PCI 3.0 §6.2.5.1). */
export const BAR_BITS = {
  IO_SPACE: 1 << 0,
  MEM_TYPE_64: 2 << 1,
  PREFETCH: 1 << 3,
} as const;

export const HEADER_TYPE_MULTIFUNCTION = 0x80;
export const VENDOR_ABSENT = 0xffff;
