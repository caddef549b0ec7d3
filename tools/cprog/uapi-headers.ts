/**
 * The Linux uapi headers a C program includes (<linux/vfio.h>,
 * <linux/iommufd.h> and what they need: <linux/types.h>, <linux/ioctl.h>;
 * <linux/pci_regs.h> for the configuration header), written from ioemu's own
 * tables (src/uapi/, src/pci/header.ts): the tables are the one declaration
 * of every struct and constant (DESIGN.md §1); this module only says how C
 * spells them where C says more than a list of fields (a nested capability
 * header, a flexible array, an anonymous union, a user pointer) and which
 * constants Linux groups in enums. `layoutCheckSource` writes a C program
 * that asserts every struct's size and field offsets and every constant's
 * value, so a compiler checks the generated headers against the tables, and
 * the same program built against Linux's own headers checks the tables
 * against Linux.
 */
import * as vfio from '../../src/uapi/vfio.ts';
import * as iommufd from '../../src/uapi/iommufd.ts';
import type { StructDef, StructField } from '../../src/uapi/struct.ts';
import { BAR_BITS, CFG, COMMAND, STATUS } from '../../src/pci/header.ts';

type Header = 'linux/vfio.h' | 'linux/iommufd.h';

/** How C writes a table struct where it is more than its fields in order. */
interface CShape {
  /** These table fields are one member of type `struct <struct>` (their names lose `strip`). */
  nest?: { member: string; struct: string; fields: readonly string[]; strip?: string };
  /** A flexible array member after the last field (it adds no bytes). */
  flex?: string;
  /** A field that shares its place with another name in an anonymous union. */
  union?: Readonly<Record<string, string>>;
  /** A field whose C declaration is a user pointer (its upper half on wasm32 is padding the runner zeroes). */
  pointer?: Readonly<Record<string, string>>;
}

const CAP_HEADER = { member: 'header', struct: 'vfio_info_cap_header', fields: ['id', 'version', 'next'] } as const;

const SHAPES: Readonly<Record<string, CShape>> = {
  vfio_bitmap: { pointer: { data: '__u64 *data' } },
  vfio_irq_set: { flex: '__u8 data[]' },
  vfio_device_feature: { flex: '__u8 data[]' },
  vfio_iommu_type1_dma_unmap: { flex: '__u8 data[]' },
  vfio_iommu_type1_dirty_bitmap: { flex: '__u8 data[]' },
  vfio_iommu_type1_bind: { flex: '__u8 data[]' },
  vfio_pci_dependent_device: { union: { group_id: 'devid' } },
  vfio_pci_hot_reset_info: { flex: 'struct vfio_pci_dependent_device devices[]' },
  vfio_pci_hot_reset: { flex: '__s32 group_fds[]' },
  vfio_region_info_cap_sparse_mmap: { nest: CAP_HEADER, flex: 'struct vfio_region_sparse_mmap_area areas[]' },
  vfio_iommu_type1_info_cap_iova_range: { nest: CAP_HEADER, flex: 'struct vfio_iova_range iova_ranges[]' },
  vfio_iommu_type1_info_cap_migration: { nest: CAP_HEADER },
  vfio_iommu_type1_info_dma_avail: { nest: CAP_HEADER },
  vfio_iommu_type1_dirty_bitmap_get: {
    nest: { member: 'bitmap', struct: 'vfio_bitmap', fields: ['bitmap_pgsize', 'bitmap_size', 'bitmap_data'], strip: 'bitmap_' },
  },
  iommu_hw_info: { union: { out_data_type: 'in_data_type' } },
};

/** Constants Linux declares as enum members, by enum (null: an anonymous enum), in Linux's order. */
const ENUMS: readonly { header: Header; name: string | null; members: readonly string[] }[] = [
  { header: 'linux/vfio.h', name: null, members: ['VFIO_PCI_BAR0_REGION_INDEX', 'VFIO_PCI_BAR1_REGION_INDEX', 'VFIO_PCI_BAR2_REGION_INDEX', 'VFIO_PCI_BAR3_REGION_INDEX', 'VFIO_PCI_BAR4_REGION_INDEX', 'VFIO_PCI_BAR5_REGION_INDEX', 'VFIO_PCI_ROM_REGION_INDEX', 'VFIO_PCI_CONFIG_REGION_INDEX', 'VFIO_PCI_VGA_REGION_INDEX', 'VFIO_PCI_NUM_REGIONS'] },
  { header: 'linux/vfio.h', name: null, members: ['VFIO_PCI_INTX_IRQ_INDEX', 'VFIO_PCI_MSI_IRQ_INDEX', 'VFIO_PCI_MSIX_IRQ_INDEX', 'VFIO_PCI_ERR_IRQ_INDEX', 'VFIO_PCI_REQ_IRQ_INDEX', 'VFIO_PCI_NUM_IRQS'] },
  { header: 'linux/iommufd.h', name: 'iommufd_ioas_map_flags', members: ['IOMMU_IOAS_MAP_FIXED_IOVA', 'IOMMU_IOAS_MAP_WRITEABLE', 'IOMMU_IOAS_MAP_READABLE'] },
  { header: 'linux/iommufd.h', name: 'iommufd_option', members: ['IOMMU_OPTION_RLIMIT_MODE', 'IOMMU_OPTION_HUGE_PAGES'] },
  { header: 'linux/iommufd.h', name: 'iommufd_option_ops', members: ['IOMMU_OPTION_OP_SET', 'IOMMU_OPTION_OP_GET'] },
  { header: 'linux/iommufd.h', name: 'iommufd_vfio_ioas_op', members: ['IOMMU_VFIO_IOAS_GET', 'IOMMU_VFIO_IOAS_SET', 'IOMMU_VFIO_IOAS_CLEAR'] },
  { header: 'linux/iommufd.h', name: 'iommufd_hwpt_alloc_flags', members: ['IOMMU_HWPT_ALLOC_NEST_PARENT', 'IOMMU_HWPT_ALLOC_DIRTY_TRACKING', 'IOMMU_HWPT_FAULT_ID_VALID', 'IOMMU_HWPT_ALLOC_PASID'] },
  { header: 'linux/iommufd.h', name: 'iommu_hwpt_data_type', members: ['IOMMU_HWPT_DATA_NONE', 'IOMMU_HWPT_DATA_VTD_S1', 'IOMMU_HWPT_DATA_ARM_SMMUV3'] },
  { header: 'linux/iommufd.h', name: 'iommu_hw_info_vtd_flags', members: ['IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17'] },
  { header: 'linux/iommufd.h', name: 'iommu_hw_info_arm_smmuv3_flags', members: ['IOMMU_HW_INFO_ARM_SMMUV3_ERRATA_REPEAT_TLBI_CFGI'] },
  { header: 'linux/iommufd.h', name: 'iommu_hw_info_type', members: ['IOMMU_HW_INFO_TYPE_NONE', 'IOMMU_HW_INFO_TYPE_DEFAULT', 'IOMMU_HW_INFO_TYPE_INTEL_VTD', 'IOMMU_HW_INFO_TYPE_ARM_SMMUV3'] },
  { header: 'linux/iommufd.h', name: 'iommufd_hw_capabilities', members: ['IOMMU_HW_CAP_DIRTY_TRACKING', 'IOMMU_HW_CAP_PCI_PASID_EXEC', 'IOMMU_HW_CAP_PCI_PASID_PRIV', 'IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED'] },
  { header: 'linux/iommufd.h', name: 'iommufd_hw_info_flags', members: ['IOMMU_HW_INFO_FLAG_INPUT_TYPE'] },
  { header: 'linux/iommufd.h', name: 'iommufd_hwpt_set_dirty_tracking_flags', members: ['IOMMU_HWPT_DIRTY_TRACKING_ENABLE'] },
  { header: 'linux/iommufd.h', name: 'iommufd_hwpt_get_dirty_bitmap_flags', members: ['IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR'] },
  { header: 'linux/iommufd.h', name: 'iommu_hwpt_invalidate_data_type', members: ['IOMMU_HWPT_INVALIDATE_DATA_VTD_S1', 'IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3'] },
  { header: 'linux/iommufd.h', name: 'iommu_hwpt_pgfault_flags', members: ['IOMMU_PGFAULT_FLAGS_PASID_VALID', 'IOMMU_PGFAULT_FLAGS_LAST_PAGE'] },
  { header: 'linux/iommufd.h', name: 'iommu_hwpt_pgfault_perm', members: ['IOMMU_PGFAULT_PERM_READ', 'IOMMU_PGFAULT_PERM_WRITE', 'IOMMU_PGFAULT_PERM_EXEC', 'IOMMU_PGFAULT_PERM_PRIV'] },
  { header: 'linux/iommufd.h', name: 'iommufd_page_response_code', members: ['IOMMUFD_PAGE_RESP_SUCCESS', 'IOMMUFD_PAGE_RESP_INVALID'] },
  { header: 'linux/iommufd.h', name: 'iommu_viommu_type', members: ['IOMMU_VIOMMU_TYPE_DEFAULT', 'IOMMU_VIOMMU_TYPE_ARM_SMMUV3'] },
  { header: 'linux/iommufd.h', name: 'iommu_veventq_flag', members: ['IOMMU_VEVENTQ_FLAG_LOST_EVENTS'] },
  { header: 'linux/iommufd.h', name: 'iommu_veventq_type', members: ['IOMMU_VEVENTQ_TYPE_DEFAULT', 'IOMMU_VEVENTQ_TYPE_ARM_SMMUV3', 'IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV'] },
];

/**
 * What ioemu's emulated kernel has beyond Linux 7.3: the SVA bind proposal's
 * VFIO_IOMMU_BIND (src/uapi/vfio.ts) and the old name of type 6. A program
 * built against Linux's headers declares these itself.
 */
export const NOT_IN_LINUX = new Set([
  'VFIO_IOMMU_BIND', 'VFIO_IOMMU_UNBIND', 'VFIO_IOMMU_BIND_PROCESS', 'VFIO_IOMMU_BIND_PID', 'VFIO_TYPE1_NESTING_IOMMU',
  'vfio_iommu_type1_bind', 'vfio_iommu_type1_bind_process',
]);

/** Exports of the tables that are kernel-internal limits, not uapi. */
const NOT_UAPI = new Set(['DIRTY_BITMAP_PAGES_MAX', 'DIRTY_BITMAP_SIZE_MAX', 'VFIO_DMA_ENTRY_LIMIT_DEFAULT', 'VFIO_PCI_OFFSET_SHIFT', 'U64_MAX']);

const TABLES: readonly Record<string, unknown>[] = [vfio, iommufd];

function headerOf(name: string): Header {
  return /^(vfio|VFIO)_/.test(name) ? 'linux/vfio.h' : 'linux/iommufd.h';
}

function isStruct(x: unknown): x is StructDef {
  return typeof x === 'object' && x !== null && 'order' in x && 'size' in x;
}

/** Every table struct, in table order. */
export function uapiStructs(): StructDef[] {
  const out: StructDef[] = [];
  for (const t of TABLES) for (const v of Object.values(t)) if (isStruct(v)) out.push(v);
  return out;
}

/** Every uapi constant of the tables: name and value (IOMMUFD_TYPE/VFIO_TYPE are characters). */
export function uapiConstants(): [string, number | string][] {
  const out: [string, number | string][] = [];
  for (const t of TABLES) {
    for (const [k, v] of Object.entries(t)) {
      if (!/^[A-Z][A-Za-z0-9_]*$/.test(k) || NOT_UAPI.has(k)) continue;
      if (typeof v === 'number' || (typeof v === 'string' && v.length === 1)) out.push([k, v]);
    }
  }
  return out;
}

/** An ioctl request number of the VFIO/iommufd type (';'), as the tables build them with _IO(). */
function isRequest(v: number | string): boolean {
  return typeof v === 'number' && v >>> 8 === 0x3b && (v & 0xff) >= vfio.VFIO_BASE;
}

/** The IOMMUFD_CMD_* name of an iommufd request (IOMMU_IOAS_MAP -> IOMMUFD_CMD_IOAS_MAP). */
function iommufdCmd(name: string): string {
  return 'IOMMUFD_CMD_' + name.replace(/^IOMMU_/, '');
}

function cValue(name: string, v: number | string): string {
  if (typeof v === 'string') return `('${v}')`;
  if (isRequest(v)) {
    const nr = v & 0xff;
    return nr >= iommufd.IOMMUFD_CMD_BASE ? `_IO(IOMMUFD_TYPE, ${iommufdCmd(name)})` : `_IO(VFIO_TYPE, VFIO_BASE + ${nr - vfio.VFIO_BASE})`;
  }
  // Flag bits read as shifts, as Linux writes them; other values as numbers.
  const flag = /FLAG|_CAP_|PERM_|_MAP_|ALLOC_|FEATURE_(GET|SET|PROBE)|INFO_(PGSIZES|CAPS)|IRQ_(INFO|SET)_|FAULT_ID|ERRATA|_ENABLE$|NO_CLEAR|ATTACH_PASID|DETACH_PASID|BIND_PID|BIND_PROCESS/.test(name);
  if (flag && v >= 1 && (v & (v - 1)) === 0 && v <= 2 ** 31) return v === 2 ** 31 ? '(1U << 31)' : `(1 << ${Math.log2(v)})`;
  return v > 0xff ? `0x${v.toString(16)}` : String(v);
}

function cType(f: StructField, iommufdStyle: boolean): string {
  const m = /^(u8|u32|u64)\[(\d+)\]$/.exec(f.type);
  if (m !== null) {
    const base = m[1] === 'u64' ? (iommufdStyle ? '__aligned_le64' : '__u64') : `__${m[1]}`;
    return `${base} ${f.name}[${m[2]}]`;
  }
  const t = f.type === 'u64' ? (iommufdStyle ? '__aligned_u64' : '__u64') : `__${f.type}`;
  return `${t} ${f.name}`;
}

/** C's path to a table field (`header.next` for a flattened capability header). */
export function cFieldPath(def: StructDef, field: string): string {
  const n = SHAPES[def.name]?.nest;
  if (n !== undefined && n.fields.includes(field)) return `${n.member}.${n.strip !== undefined ? field.slice(n.strip.length) : field}`;
  return field;
}

/** True when C declares the field as a pointer (its size there is not the table's). */
export function isPointerField(def: StructDef, field: string): boolean {
  const shape = SHAPES[def.name];
  const n = shape?.nest;
  if (n !== undefined && n.fields.includes(field)) return SHAPES[n.struct]?.pointer?.[n.strip !== undefined ? field.slice(n.strip.length) : field] !== undefined;
  return shape?.pointer?.[field] !== undefined;
}

function structC(def: StructDef, header: Header): string {
  const shape = SHAPES[def.name] ?? {};
  const lines: string[] = [];
  let nested = false;
  for (const f of def.order) {
    if (shape.nest?.fields.includes(f.name)) {
      if (!nested) lines.push(`\tstruct ${shape.nest.struct} ${shape.nest.member};`);
      nested = true;
      continue;
    }
    const alias = shape.union?.[f.name];
    const decl = shape.pointer?.[f.name] ?? cType(f, header === 'linux/iommufd.h');
    if (alias !== undefined) lines.push(`\tunion {\n\t\t${decl};\n\t\t__${f.type} ${alias};\n\t};`);
    else lines.push(`\t${decl};`);
  }
  if (shape.flex !== undefined) lines.push(`\t${shape.flex};`);
  const note = NOT_IN_LINUX.has(def.name) ? ' /* ioemu: not in Linux 7.3 */' : '';
  return `struct ${def.name} {${note}\n${lines.join('\n')}\n};`;
}

/** Structs in an order where each comes after the ones it nests or names in a flexible array. */
function ordered(defs: readonly StructDef[]): StructDef[] {
  const byName = new Map(defs.map((d) => [d.name, d]));
  const done = new Set<string>();
  const out: StructDef[] = [];
  const visit = (d: StructDef): void => {
    if (done.has(d.name)) return;
    done.add(d.name);
    const s = SHAPES[d.name];
    const deps = [s?.nest?.struct, /^struct (\w+)/.exec(s?.flex ?? '')?.[1]];
    for (const dep of deps) if (dep !== undefined && byName.has(dep)) visit(byName.get(dep)!);
    out.push(d);
  };
  for (const d of defs) visit(d);
  return out;
}

function guard(name: string, body: string, includes: readonly string[]): string {
  const g = `_IOEMU_UAPI_${name.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`;
  return [
    `/* ${name}: generated by ioemu (tools/cprog/uapi-headers.ts) from its uapi tables; do not edit. */`,
    `#ifndef ${g}`,
    `#define ${g}`,
    ...includes.map((i) => `#include <${i}>`),
    '',
    body,
    '',
    `#endif /* ${g} */`,
    '',
  ].join('\n');
}

const TYPES_H = `typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef signed short __s16;
typedef unsigned int __u32;
typedef signed int __s32;
typedef unsigned long long __u64;
typedef signed long long __s64;
typedef __u16 __le16;
typedef __u16 __be16;
typedef __u32 __le32;
typedef __u32 __be32;
typedef __u64 __le64;
typedef __u64 __be64;
typedef __u16 __sum16;
typedef __u32 __wsum;
/* 64-bit values are 8-byte aligned inside uapi structs on every ABI (i386 aside). */
#define __aligned_u64 __u64 __attribute__((aligned(8)))
#define __aligned_be64 __be64 __attribute__((aligned(8)))
#define __aligned_le64 __le64 __attribute__((aligned(8)))
typedef unsigned int __poll_t;
#define __bitwise
#define __force`;

/** asm-generic/ioctl.h's encoding (src/uapi/ioctl.ts): dir[31:30], size[29:16], type[15:8], nr[7:0]. */
const IOCTL_H = `#define _IOC_NRBITS 8
#define _IOC_TYPEBITS 8
#define _IOC_SIZEBITS 14
#define _IOC_DIRBITS 2
#define _IOC_NRMASK ((1 << _IOC_NRBITS) - 1)
#define _IOC_TYPEMASK ((1 << _IOC_TYPEBITS) - 1)
#define _IOC_SIZEMASK ((1 << _IOC_SIZEBITS) - 1)
#define _IOC_DIRMASK ((1 << _IOC_DIRBITS) - 1)
#define _IOC_NRSHIFT 0
#define _IOC_TYPESHIFT (_IOC_NRSHIFT + _IOC_NRBITS)
#define _IOC_SIZESHIFT (_IOC_TYPESHIFT + _IOC_TYPEBITS)
#define _IOC_DIRSHIFT (_IOC_SIZESHIFT + _IOC_SIZEBITS)
#define _IOC_NONE 0U
#define _IOC_WRITE 1U
#define _IOC_READ 2U
#define _IOC(dir, type, nr, size) \\
\t(((dir) << _IOC_DIRSHIFT) | ((type) << _IOC_TYPESHIFT) | ((nr) << _IOC_NRSHIFT) | ((size) << _IOC_SIZESHIFT))
#define _IOC_TYPECHECK(t) (sizeof(t))
#define _IO(type, nr) _IOC(_IOC_NONE, (type), (nr), 0)
#define _IOR(type, nr, size) _IOC(_IOC_READ, (type), (nr), (_IOC_TYPECHECK(size)))
#define _IOW(type, nr, size) _IOC(_IOC_WRITE, (type), (nr), (_IOC_TYPECHECK(size)))
#define _IOWR(type, nr, size) _IOC(_IOC_READ | _IOC_WRITE, (type), (nr), (_IOC_TYPECHECK(size)))
#define _IOC_DIR(nr) (((nr) >> _IOC_DIRSHIFT) & _IOC_DIRMASK)
#define _IOC_TYPE(nr) (((nr) >> _IOC_TYPESHIFT) & _IOC_TYPEMASK)
#define _IOC_NR(nr) (((nr) >> _IOC_NRSHIFT) & _IOC_NRMASK)
#define _IOC_SIZE(nr) (((nr) >> _IOC_SIZESHIFT) & _IOC_SIZEMASK)`;

function uapiHeader(header: Header): string {
  const consts = uapiConstants().filter(([k]) => headerOf(k) === header);
  const value = new Map(consts);
  const inEnum = new Set<string>();
  const parts: string[] = [];
  if (header === 'linux/iommufd.h') {
    const cmds = consts.filter(([, v]) => isRequest(v) && ((v as number) & 0xff) >= iommufd.IOMMUFD_CMD_BASE) as [string, number][];
    parts.push(`enum {\n\tIOMMUFD_CMD_BASE = 0x80,\n${cmds.map(([k, v]) => `\t${iommufdCmd(k)} = 0x${(v & 0xff).toString(16)},`).join('\n')}\n};`);
    inEnum.add('IOMMUFD_CMD_BASE');
  }
  for (const e of ENUMS.filter((x) => x.header === header)) {
    const members = e.members.map((m) => {
      const v = value.get(m);
      if (v === undefined) throw new Error(`${header}: enum member ${m} is not in the uapi tables`);
      inEnum.add(m);
      return `\t${m} = ${cValue(m, v)},`;
    });
    parts.push(`enum ${e.name === null ? '' : e.name + ' '}{\n${members.join('\n')}\n};`);
  }
  const defines = consts.filter(([k]) => !inEnum.has(k)).map(([k, v]) => `#define ${k} ${cValue(k, v)}${NOT_IN_LINUX.has(k) ? ' /* ioemu: not in Linux 7.3 */' : ''}`);
  const structs = ordered(uapiStructs().filter((d) => headerOf(d.name) === header)).map((d) => structC(d, header));
  return guard(header, [defines.join('\n'), ...parts, ...structs].join('\n\n'), ['linux/types.h', 'linux/ioctl.h']);
}

/** <linux/pci_regs.h>: the configuration header's offsets and the Command/Status bits (src/pci/header.ts). */
function pciRegsHeader(): string {
  const rename: Record<string, string> = { BAR0: 'BASE_ADDRESS_0', BRIDGE_ROM_ADDRESS: 'ROM_ADDRESS1' };
  const lines = Object.entries(CFG).map(([k, v]) => `#define PCI_${rename[k] ?? k} 0x${v.toString(16).padStart(2, '0')}`);
  for (let i = 1; i <= 5; i++) lines.push(`#define PCI_BASE_ADDRESS_${i} 0x${(CFG.BAR0 + 4 * i).toString(16)}`);
  lines.push(`#define PCI_BASE_ADDRESS_SPACE_IO 0x${BAR_BITS.IO_SPACE.toString(16).padStart(2, '0')}`);
  lines.push(`#define PCI_BASE_ADDRESS_MEM_TYPE_64 0x${BAR_BITS.MEM_TYPE_64.toString(16).padStart(2, '0')}`);
  lines.push(`#define PCI_BASE_ADDRESS_MEM_PREFETCH 0x${BAR_BITS.PREFETCH.toString(16).padStart(2, '0')}`);
  for (const [k, v] of Object.entries(COMMAND)) lines.push(`#define PCI_COMMAND_${k} 0x${v.toString(16)}`);
  const status: Record<string, string> = { MASTER_DATA_PARITY: 'PARITY' };
  for (const [k, v] of Object.entries(STATUS)) lines.push(`#define PCI_STATUS_${status[k] ?? k} 0x${v.toString(16)}`);
  return guard('linux/pci_regs.h', lines.join('\n'), []);
}

/** The generated headers by include path ('linux/vfio.h' is `#include <linux/vfio.h>`). */
export function uapiHeaders(): Record<string, string> {
  return {
    'linux/types.h': guard('linux/types.h', TYPES_H, []),
    'linux/ioctl.h': guard('linux/ioctl.h', IOCTL_H, []),
    'linux/vfio.h': uapiHeader('linux/vfio.h'),
    'linux/iommufd.h': uapiHeader('linux/iommufd.h'),
    'linux/pci_regs.h': pciRegsHeader(),
  };
}

/**
 * A C translation unit that fails to compile unless every table struct has
 * the table's size and field offsets and every table constant its value.
 * `linux: true` leaves out what Linux 7.3 lacks (NOT_IN_LINUX), for building
 * against Linux's own headers.
 */
export function layoutCheckSource(opts: { linux: boolean }): string {
  const out = ['#include <stddef.h>', '#include <linux/vfio.h>', '#include <linux/iommufd.h>', '#include <linux/pci_regs.h>', ''];
  const assert = (cond: string, what: string) => out.push(`_Static_assert(${cond}, "${what}");`);
  for (const d of uapiStructs()) {
    if (opts.linux && NOT_IN_LINUX.has(d.name)) continue;
    assert(`sizeof(struct ${d.name}) == ${d.size}`, `sizeof(struct ${d.name}) == ${d.size}`);
    for (const f of d.order) {
      const path = cFieldPath(d, f.name);
      assert(`offsetof(struct ${d.name}, ${path}) == ${f.offset}`, `offsetof(${d.name}, ${path}) == ${f.offset}`);
      if (!isPointerField(d, f.name)) assert(`sizeof(((struct ${d.name} *)0)->${path}) == ${f.size}`, `sizeof(${d.name}.${path}) == ${f.size}`);
    }
  }
  for (const [k, v] of uapiConstants()) {
    if (opts.linux && NOT_IN_LINUX.has(k)) continue;
    const want = typeof v === 'string' ? `'${v}'` : `${v}ULL`;
    assert(`(unsigned long long)(${k}) == ${want}`, `${k} == ${typeof v === 'string' ? v : v}`);
  }
  for (const [k, v] of Object.entries(CFG)) assert(`PCI_${k === 'BAR0' ? 'BASE_ADDRESS_0' : k === 'BRIDGE_ROM_ADDRESS' ? 'ROM_ADDRESS1' : k} == ${v}`, `PCI ${k}`);
  for (const [k, v] of Object.entries(COMMAND)) assert(`PCI_COMMAND_${k} == ${v}`, `PCI_COMMAND_${k}`);
  out.push('int main(void) { return 0; }', '');
  return out.join('\n');
}
