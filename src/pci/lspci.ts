import { CFG, STATUS } from './header.ts';
import type { ConfigAccessor } from './enumerate.ts';

/** Names of capability IDs (PCI Code and ID Assignment Specification §2, §3). */
const STD_CAP_NAMES: Record<number, string> = {
  0x01: 'Power Management',
  0x05: 'MSI',
  0x09: 'Vendor Specific',
  0x0d: 'Bridge Subsystem Vendor ID',
  0x10: 'PCI Express',
  0x11: 'MSI-X',
  0x12: 'SATA',
  0x13: 'Advanced Features',
};

const EXT_CAP_NAMES: Record<number, string> = {
  0x0001: 'Advanced Error Reporting',
  0x000d: 'Access Control Services',
  0x000e: 'Alternative Routing-ID Interpretation',
  0x000f: 'Address Translation Services (ATS)',
  0x0010: 'Single Root I/O Virtualization',
  0x0013: 'Page Request Interface (PRI)',
  0x001b: 'Process Address Space ID (PASID)',
};

export interface CapabilityEntry {
  kind: 'std' | 'ext';
  id: number;
  offset: number;
  name: string;
  version?: number;
}

/** Walk both capability lists of a function through configuration reads (bounded against loops). */
export function listCapabilities(cfg: ConfigAccessor, bus: number, devfn: number): CapabilityEntry[] {
  const out: CapabilityEntry[] = [];
  if (cfg.read(bus, devfn, CFG.STATUS, 2) & STATUS.CAP_LIST) {
    let ptr = cfg.read(bus, devfn, CFG.CAPABILITY_LIST, 1) & 0xfc;
    for (let n = 0; ptr >= 0x40 && n < 48; n++) {
      const id = cfg.read(bus, devfn, ptr, 1);
      out.push({ kind: 'std', id, offset: ptr, name: STD_CAP_NAMES[id] ?? `cap 0x${id.toString(16)}` });
      ptr = cfg.read(bus, devfn, ptr + 1, 1) & 0xfc;
    }
  }
  let ext = 0x100;
  for (let n = 0; ext >= 0x100 && n < 960; n++) {
    const hdr = cfg.read(bus, devfn, ext, 4);
    if (hdr === 0 || hdr === 0xffffffff) break;
    const id = hdr & 0xffff;
    out.push({ kind: 'ext', id, offset: ext, version: (hdr >>> 16) & 0xf, name: EXT_CAP_NAMES[id] ?? `ext cap 0x${id.toString(16)}` });
    ext = (hdr >>> 20) & 0xffc;
  }
  return out;
}

const hex = (v: number, w: number) => v.toString(16).padStart(w, '0');

/** An `lspci -v`-like description of one function, read through configuration space. */
export function describeFunction(cfg: ConfigAccessor, bus: number, devfn: number): string {
  const vendor = cfg.read(bus, devfn, CFG.VENDOR_ID, 2);
  const device = cfg.read(bus, devfn, CFG.DEVICE_ID, 2);
  const cls = cfg.read(bus, devfn, 0x08, 4) >>> 8;
  const hdr = cfg.read(bus, devfn, CFG.HEADER_TYPE, 1);
  const cmd = cfg.read(bus, devfn, CFG.COMMAND, 2);
  const lines = [
    `${hex(bus, 2)}:${hex(devfn >> 3, 2)}.${devfn & 7} class ${hex(cls, 6)}: [${hex(vendor, 4)}:${hex(device, 4)}] header type ${hdr & 0x7f}`,
    `\tCommand: Mem${cmd & 2 ? '+' : '-'} BusMaster${cmd & 4 ? '+' : '-'}`,
  ];
  const bars = (hdr & 0x7f) === 1 ? 2 : 6;
  for (let i = 0; i < bars; i++) {
    const lo = cfg.read(bus, devfn, CFG.BAR0 + 4 * i, 4);
    if (lo === 0) continue;
    if (lo & 1) {
      lines.push(`\tBAR${i}: I/O ports at ${hex(lo & ~3, 4)}`);
      continue;
    }
    const is64 = (lo & 6) === 4;
    const hi = is64 ? cfg.read(bus, devfn, CFG.BAR0 + 4 * i + 4, 4) : 0;
    const addr = hi * 0x1_0000_0000 + ((lo & 0xfffffff0) >>> 0);
    lines.push(`\tBAR${i}: Memory at ${addr.toString(16)} (${is64 ? '64' : '32'}-bit, ${lo & 8 ? '' : 'non-'}prefetchable)${addr === 0 ? ' [unassigned]' : ''}`);
    if (is64) i++;
  }
  for (const c of listCapabilities(cfg, bus, devfn)) {
    lines.push(`\tCapabilities: [${hex(c.offset, c.kind === 'ext' ? 3 : 2)}${c.kind === 'ext' ? ` v${c.version}` : ''}] ${c.name}`);
  }
  return lines.join('\n');
}
