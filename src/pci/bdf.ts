/**
 * PCI addressing: bus/device/function, the requester ID that tags a
 * function's transactions (bus << 8 | device << 3 | function), and the
 * 'DDDD:BB:DD.F' form Linux prints in sysfs.
 */
export interface Bdf {
  segment: number;
  bus: number;
  device: number;
  fn: number;
}

export function devfn(device: number, fn: number): number {
  return ((device & 0x1f) << 3) | (fn & 7);
}

export function requesterId(bus: number, devfnValue: number): number {
  return ((bus & 0xff) << 8) | (devfnValue & 0xff);
}

export function formatBdf(b: Bdf): string {
  return `${hex(b.segment, 4)}:${hex(b.bus, 2)}:${hex(b.device, 2)}.${b.fn}`;
}

function hex(v: number, width: number): string {
  return v.toString(16).padStart(width, '0');
}

const BDF_RE = /^(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$/;

/** Parse '0000:00:01.0' or '00:01.0'; undefined when malformed or out of range. */
export function parseBdf(s: string): Bdf | undefined {
  const m = BDF_RE.exec(s);
  if (m === null) return undefined;
  const device = parseInt(m[3]!, 16);
  if (device > 31) return undefined;
  return { segment: m[1] === undefined ? 0 : parseInt(m[1], 16), bus: parseInt(m[2]!, 16), device, fn: Number(m[4]) };
}

export function formatRequesterId(rid: number, segment = 0): string {
  return formatBdf({ segment, bus: rid >> 8, device: (rid >> 3) & 0x1f, fn: rid & 7 });
}
