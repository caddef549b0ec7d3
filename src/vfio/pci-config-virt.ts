import { EFAULT } from '../uapi/errno.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import { CFG, COMMAND, STATUS } from '../pci/header.ts';
import { fieldPrep } from '../hw/layout.ts';
import { MSI, MSI_FLAGS, MSI_REGS } from '../pci/caps/msi.ts';
import { PCIE, PCIE_DEVCAP, PCIE_DEVCTL, PCIE_DEVCTL2, PCIE_REGS } from '../pci/caps/pcie-regs.ts';
import { CAP_ID_VNDR, ECAP_ID, ecapLength, stdCapLength } from './cap-length.ts';

/** The host kernel's config accessors for one function (pci_read/write_config_*, through ECAM). */
export interface HwConfig {
  read(off: number, size: 1 | 2 | 4): number;
  write(off: number, size: 1 | 2 | 4, value: number): void;
}

/** What config writes ask of vfio-pci beyond storing bits. */
export interface ConfigHooks {
  /** The user set Initiate FLR in the virtual Device Control (vfio_exp_config_write). */
  flr(): void;
  /** Memory enable written while the hardware shows it off: restore the BARs (vfio_bar_restore). */
  barRestore(): void;
  /** The MSI type currently enabled through SET_IRQS ('msi' keeps the hardware enable bit). */
  msiEnabled(): boolean;
}

const ALL = 0xff;

/**
 * vfio-pci's virtualised configuration space (vfio_pci_config.c): a shadow
 * copy (vconfig) and per-byte permission bits. For each byte, `virt` bits
 * read from and write to the shadow, other bits go to the hardware; `write`
 * bits may be written at all. The BARs are fully virtual (the user sees
 * what it wrote, masked to the BAR's size, never the host's addresses), the
 * MSI capability is virtual (the host programs the real one for SET_IRQS),
 * MSI-X is read-only pass-through, Initiate FLR is virtual and resets the
 * function. Capabilities are laid out as vfio_cap_init() and
 * vfio_ecap_init() do: each over its length as vfio-pci knows it
 * (cap-length.ts), its next pointer (an extended one's whole header) from
 * the shadow, the rest read from the hardware; a capability vfio-pci does
 * not know, PASID among them, is left out of the chain. Writes to extended
 * capabilities are dropped but for AER's and Power Budgeting's write rules;
 * vendor-specific capabilities are written raw. Bytes outside the header and
 * every capability are the hardware's, read and written raw
 * (unassigned_perms: some devices keep registers in the gaps).
 */
export class VirtConfig {
  readonly size: number;
  readonly vconfig: Uint8Array;
  private readonly virt: Uint8Array;
  private readonly wr: Uint8Array;
  private bardirty = true;
  private pcieCap: number | undefined;

  constructor(
    private readonly fn: PciFunction,
    private readonly hw: HwConfig,
    private readonly hooks: ConfigHooks,
  ) {
    this.pcieCap = fn.caps.findStd(PCIE.CAP_ID);
    this.size = this.pcieCap !== undefined ? fn.config.size : 256;
    this.vconfig = new Uint8Array(this.size);
    this.virt = new Uint8Array(this.size);
    this.wr = new Uint8Array(this.size);
    this.mapped = new Uint8Array(this.size);
    this.rawWrite = new Uint8Array(this.size);
    this.init();
  }

  private setb(off: number, virt: number, write: number, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.virt[off + i] = (virt >>> (8 * i)) & 0xff;
      this.wr[off + i] = (write >>> (8 * i)) & 0xff;
    }
  }

  /**
   * vfio_fill_vconfig_bytes(): copy config space into the shadow in the
   * widest aligned reads that fit (dword, word, byte), as pci_save_state
   * also assumes every field takes a dword read.
   */
  private fill(off: number, len: number): void {
    const v = this.vconfig;
    let at = off;
    const end = Math.min(off + len, this.size);
    while (at < end) {
      const left = end - at;
      const size = left >= 4 && at % 4 === 0 ? 4 : left >= 2 && at % 2 === 0 ? 2 : 1;
      const value = this.hw.read(at, size);
      for (let b = 0; b < size; b++) v[at + b] = value >>> (8 * b);
      at += size;
    }
  }

  /** vfio_config_init(): copy the header and every capability, lay out permissions. */
  private init(): void {
    this.fill(0, 0x40);
    // init_pci_cap_basic_perm()
    this.setb(CFG.VENDOR_ID, 0xffff, 0, 2);
    this.setb(CFG.DEVICE_ID, 0xffff, 0, 2);
    this.setb(CFG.COMMAND, COMMAND.INTX_DISABLE, 0xffff, 2);
    this.setb(CFG.STATUS, STATUS.CAP_LIST, 0, 2);
    this.setb(CFG.CACHE_LINE_SIZE, 0, ALL);
    this.setb(CFG.LATENCY_TIMER, 0, ALL);
    this.setb(CFG.BIST, 0, ALL);
    for (let i = 0; i < 6; i++) this.setb(CFG.BAR0 + 4 * i, 0xffffffff, 0xffffffff, 4);
    this.setb(CFG.ROM_ADDRESS, 0xffffffff, 0xffffffff, 4);
    this.setb(CFG.CAPABILITY_LIST, ALL, 0);
    this.setb(CFG.INTERRUPT_LINE, ALL, ALL);
    this.setb(CFG.INTERRUPT_PIN, ALL, 0);
    // Header bytes with no permission bits read the hardware (class, revision, subsystem IDs...).
    this.mapped.fill(1, 0, 0x40);
    this.capInit();
    // vfio_config_init(): extended capabilities only when a PCIe function's space has a first one.
    if (this.size > 0x100 && this.hw.read(0x100, 4) !== 0) this.ecapInit();
  }

  /** Per byte: 1 in the header or a capability (permission bits apply), 0 unassigned (raw hardware access). */
  private readonly mapped: Uint8Array;
  /** Per byte: writes go to the hardware as they are (vendor-specific capabilities: vfio_raw_config_write). */
  private readonly rawWrite: Uint8Array;

  /**
   * The extended capabilities with write rules (vfio_pci_init_perm_bits):
   * AER's error status, mask and severity bits and its ECRC enables
   * (init_pci_ext_cap_err_perm), Power Budgeting's data select
   * (init_pci_ext_cap_pwr_perm); written through to the hardware. Every
   * other one is read-only.
   */
  private ecapPerms(id: number, b: number): void {
    if (id === ECAP_ID.ERR) {
      const unc = 0x03fff031; // PCI_ERR_UNC_UND | DLP | SURPDN | POISON_TLP ... ATOMEG | TLPPRE
      const cor = 0x0000f1c1; // PCI_ERR_COR_RCVR | BAD_TLP | BAD_DLLP | REP_ROLL | REP_TIMER | ADV_NFAT | INTERNAL | LOG_OVER
      this.setb(b + 0x04, 0, unc, 4); // PCI_ERR_UNCOR_STATUS
      this.setb(b + 0x08, 0, unc, 4); // PCI_ERR_UNCOR_MASK
      this.setb(b + 0x0c, 0, unc, 4); // PCI_ERR_UNCOR_SEVER
      this.setb(b + 0x10, 0, cor, 4); // PCI_ERR_COR_STATUS
      this.setb(b + 0x14, 0, cor, 4); // PCI_ERR_COR_MASK
      this.setb(b + 0x18, 0, 0x140, 4); // PCI_ERR_CAP: ECRC_GENE | ECRC_CHKE
    } else if (id === ECAP_ID.PWR) {
      this.setb(b + 0x08, 0, ALL); // PCI_PWR_DATA (a byte: the data select)
    }
  }

  /**
   * vfio_ecap_init(): walk the chain from 0x100; show each capability over
   * its length with its header virtual (vfio_direct_config_read); leave out
   * those of length 0, unlinking them from the previous header in the
   * shadow, or, the first, keeping only its next pointer as a placeholder.
   */
  private ecapInit(): void {
    const v = new DataView(this.vconfig.buffer, this.vconfig.byteOffset, this.size);
    let epos = 0x100;
    let prev = -1;
    for (let loops = (this.size - 0x100) / 4; loops > 0 && epos >= 0x100; loops--) {
      const header = this.hw.read(epos, 4);
      const id = header & 0xffff;
      const next = (header >>> 20) & 0xffc;
      let len = ecapLength(this.hw, id, epos);
      let hidden = false;
      if (len === 0) {
        if (prev >= 0) {
          v.setUint32(prev, ((v.getUint32(prev, true) & ~(0xffc << 20)) | (next << 20)) >>> 0, true);
          epos = next;
          continue;
        }
        len = 4;
        hidden = true;
      }
      len = Math.min(len, this.size - epos);
      this.mapped.fill(1, epos, epos + len);
      this.fill(epos, len);
      this.setb(epos, 0xffffffff, 0, Math.min(4, len));
      if (id === ECAP_ID.VNDR || id === ECAP_ID.DVSEC) this.rawWrite.fill(1, epos, epos + len);
      else if (!hidden) this.ecapPerms(id, epos);
      if (hidden) v.setUint32(epos, (v.getUint32(epos, true) & (0xffc << 20)) >>> 0, true);
      prev = epos;
      epos = next;
    }
  }

  /**
   * vfio_cap_init(): walk the standard chain; show each capability over its
   * length (cap-length.ts) with its next pointer virtual, and leave out
   * those of length 0 by pointing the previous next pointer (or the
   * Capabilities Pointer) past them; with none left, Status loses its
   * Capabilities List bit.
   */
  private capInit(): void {
    if ((this.hw.read(CFG.STATUS, 2) & STATUS.CAP_LIST) === 0) return;
    let pos = this.hw.read(CFG.CAPABILITY_LIST, 1);
    let prev = CFG.CAPABILITY_LIST;
    let caps = 0;
    for (let loops = (0x100 - 0x40) / 4; pos !== 0 && loops > 0; loops--) {
      const id = this.hw.read(pos, 1);
      const next = this.hw.read(pos + 1, 1);
      const len = id !== 0 ? Math.min(stdCapLength(this.hw, id, pos), 0x100 - pos) : 0;
      if (len === 0) {
        this.vconfig[prev] = next;
        pos = next;
        continue;
      }
      this.mapped.fill(1, pos, pos + len);
      this.fill(pos, len);
      this.setb(pos + 1, ALL, 0); // next pointer: virtual, read-only
      if (id === MSI.CAP_ID) this.msiPerms(pos);
      else if (id === PCIE.CAP_ID) this.expPerms(pos);
      else if (id === CAP_ID_VNDR) this.rawWrite.fill(1, pos, pos + len); // vfio_raw_config_write
      prev = pos + 1;
      pos = next;
      caps++;
    }
    if (caps === 0) this.vconfig[CFG.STATUS] = this.vconfig[CFG.STATUS]! & ~STATUS.CAP_LIST;
  }

  /** init_pci_cap_msi_perm(). */
  private msiPerms(b: number): void {
    const flags = this.hw.read(b + MSI.FLAGS, 2);
    this.setb(b + MSI.FLAGS, ALL, ALL);
    this.setb(b + MSI.ADDRESS_LO, 0xffffffff, 0xffffffff, 4);
    const is64 = (flags & MSI_FLAGS.ADDR64) !== 0;
    if (is64) this.setb(b + MSI.ADDRESS_HI, 0xffffffff, 0xffffffff, 4);
    this.setb(b + (is64 ? MSI.DATA_64 : MSI.DATA_32), 0xffff, 0xffff, 2);
    if ((flags & MSI_FLAGS.PVM) !== 0) {
      this.setb(b + (is64 ? MSI.MASK_64 : MSI.MASK_32), 0, 0xffffffff, 4);
      this.setb(b + (is64 ? MSI.PENDING_64 : MSI.PENDING_32), 0, 0xffffffff, 4);
    }
  }

  /** init_pci_cap_exp_perm(): Device Control writable but Phantom; FLR, MPS and MRRS virtual. */
  private expPerms(b: number): void {
    const phantom = 0x0200;
    this.setb(b + PCIE.DEVCTL, PCIE_DEVCTL.FLR | PCIE_DEVCTL.MPS | PCIE_DEVCTL.MRRS, ~phantom & 0xffff, 2);
    this.setb(b + PCIE.DEVCTL2, 0, ~PCIE_DEVCTL2.ARI & 0xffff, 2);
  }

  private static isBar(off: number): boolean {
    return (off >= CFG.BAR0 && off < CFG.BAR0 + 24) || (off >= CFG.ROM_ADDRESS && off < CFG.ROM_ADDRESS + 4);
  }

  /**
   * vfio_bar_fixup(): what the user sees in the BARs: what it wrote masked to
   * each BAR's size with the type bits; 0 for a BAR the host did not assign.
   */
  private barFixup(): void {
    if (!this.bardirty) return;
    const dv = new DataView(this.vconfig.buffer);
    for (let i = 0; i < 6; i++) {
      const off = CFG.BAR0 + 4 * i;
      const bar = this.fn.bars[i];
      const lo = this.hw.read(off, 4);
      const hi = bar?.kind === 'mem64' ? this.hw.read(off + 4, 4) : 0;
      const start = bar === undefined ? 0 : bar.kind === 'io' ? lo & ~3 : (lo & ~0xf) + hi * 2 ** 32;
      if (bar === undefined || start === 0) {
        // Unassigned by the host = unimplemented to the user.
        dv.setUint32(off, 0, true);
        if (bar?.kind === 'mem64') {
          dv.setUint32(off + 4, 0, true);
          i++;
        }
        continue;
      }
      const mask = BigInt.asUintN(64, ~BigInt(bar.size - 1));
      const flags = lo & (bar.kind === 'io' ? 0x3 : 0xf);
      dv.setUint32(off, ((dv.getUint32(off, true) & Number(mask & 0xfffffff0n)) | flags) >>> 0, true);
      if (bar.kind === 'mem64') {
        dv.setUint32(off + 4, (dv.getUint32(off + 4, true) & Number(mask >> 32n)) >>> 0, true);
        i++;
      }
    }
    dv.setUint32(CFG.ROM_ADDRESS, 0, true);
    this.bardirty = false;
  }

  /** vfio_pci_config_rw() read: -EFAULT when any byte lies beyond the config space. */
  read(off: number, len: number): Uint8Array | number {
    if (off < 0 || off >= this.size || off + len > this.size) return -EFAULT;
    const out = new Uint8Array(len);
    let pos = off;
    while (pos < off + len) {
      const n = chunk(pos, off + len - pos);
      const v = this.readChunk(pos, n);
      for (let i = 0; i < n; i++) out[pos - off + i] = (v >>> (8 * i)) & 0xff;
      pos += n;
    }
    return out;
  }

  /** vfio_pci_config_rw() write: the count written or -EFAULT. */
  write(off: number, data: Uint8Array): number {
    if (off < 0 || off >= this.size || off + data.length > this.size) return -EFAULT;
    let pos = off;
    while (pos < off + data.length) {
      const n = chunk(pos, off + data.length - pos);
      let v = 0;
      for (let i = 0; i < n; i++) v |= data[pos - off + i]! << (8 * i);
      this.writeChunk(pos, n, v >>> 0);
      pos += n;
    }
    return data.length;
  }

  private field(arr: Uint8Array, pos: number, n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v |= arr[pos + i]! << (8 * i);
    return v >>> 0;
  }

  private readChunk(pos: number, n: 1 | 2 | 4): number {
    if (this.mapped[pos] === 0) return this.hw.read(pos, n);
    if (VirtConfig.isBar(pos)) this.barFixup();
    const virt = this.field(this.virt, pos, n);
    const shadow = this.field(this.vconfig, pos, n);
    const full = n === 4 ? 0xffffffff : (1 << (8 * n)) - 1;
    if (virt === full) return shadow;
    const phys = this.hw.read(pos, n);
    return ((phys & ~virt) | (shadow & virt)) >>> 0;
  }

  private writeChunk(pos: number, n: 1 | 2 | 4, val: number): void {
    if (this.mapped[pos] === 0 || this.rawWrite[pos] !== 0) {
      this.hw.write(pos, n, val);
      return;
    }
    const hooks = this.hooks;
    const isCommand = pos === CFG.COMMAND;
    if (isCommand) {
      const phys = this.hw.read(CFG.COMMAND, 2);
      const virtCmd = this.field(this.vconfig, CFG.COMMAND, 2);
      if ((val & COMMAND.MEMORY) !== 0 && (virtCmd & COMMAND.MEMORY) !== 0 && (phys & COMMAND.MEMORY) === 0) hooks.barRestore();
    }
    this.defaultWrite(pos, n, val);
    if (isCommand) {
      const mask = COMMAND.MEMORY | COMMAND.IO;
      const cur = this.field(this.vconfig, CFG.COMMAND, 2);
      this.putShadow(CFG.COMMAND, 2, (cur & ~mask) | (val & mask));
    }
    if (VirtConfig.isBar(pos)) this.bardirty = true;
    const msi = this.fn.caps.findStd(MSI.CAP_ID);
    if (msi !== undefined && pos <= msi + MSI.FLAGS && pos + n > msi + MSI.FLAGS) this.msiFlagsWritten(msi);
    const exp = this.pcieCap;
    if (exp !== undefined && pos <= exp + PCIE.DEVCTL + 1 && pos + n > exp + PCIE.DEVCTL) this.devctlWritten(exp);
  }

  /** vfio_default_config_write(). */
  private defaultWrite(pos: number, n: 1 | 2 | 4, val: number): void {
    const write = this.field(this.wr, pos, n);
    if (write === 0) return;
    const virt = this.field(this.virt, pos, n);
    if ((write & virt) !== 0) {
      const cur = this.field(this.vconfig, pos, n);
      this.putShadow(pos, n, (cur & ~(write & virt)) | (val & write & virt));
    }
    const hwBits = (write & ~virt) >>> 0;
    if (hwBits !== 0) {
      const phys = this.hw.read(pos, n);
      this.hw.write(pos, n, ((phys & ~hwBits) | (val & hwBits)) >>> 0);
    }
  }

  private putShadow(pos: number, n: number, v: number): void {
    for (let i = 0; i < n; i++) this.vconfig[pos + i] = (v >>> (8 * i)) & 0xff;
  }

  /** vfio_msi_config_write(): the enable bit reaches the hardware only while SET_IRQS has MSI on. */
  private msiFlagsWritten(b: number): void {
    let flags = this.field(this.vconfig, b + MSI.FLAGS, 2);
    if (!this.hooks.msiEnabled()) flags &= ~MSI_FLAGS.ENABLE;
    const avail = MSI_REGS.get('FLAGS', this.hw.read(b + MSI.FLAGS, 2), 'MMC');
    if (MSI_REGS.get('FLAGS', flags, 'MME') > avail) flags = (flags & ~MSI_FLAGS.MME) | fieldPrep(MSI_REGS.field('FLAGS', 'MME'), avail);
    this.putShadow(b + MSI.FLAGS, 2, flags);
    this.hw.write(b + MSI.FLAGS, 2, flags);
  }

  /** vfio_exp_config_write(): Initiate FLR resets the function; MRRS reaches the hardware. */
  private devctlWritten(b: number): void {
    const ctrl = this.field(this.vconfig, b + PCIE.DEVCTL, 2);
    if ((ctrl & PCIE_DEVCTL.FLR) !== 0) {
      this.putShadow(b + PCIE.DEVCTL, 2, ctrl & ~PCIE_DEVCTL.FLR);
      if ((this.hw.read(b + PCIE.DEVCAP, 4) & PCIE_DEVCAP.FLR) !== 0) this.hooks.flr();
    }
    // MRRS goes to the hardware, floored at the device's MPS (MPS itself stays virtual).
    const phys = this.hw.read(b + PCIE.DEVCTL, 2);
    const mpsCode = PCIE_REGS.get('DEVCTL', phys, 'MPS');
    const mrrsCode = Math.max(PCIE_REGS.get('DEVCTL', ctrl, 'MRRS'), mpsCode);
    if (PCIE_REGS.get('DEVCTL', phys, 'MRRS') !== mrrsCode) {
      const mrrs = fieldPrep(PCIE_REGS.field('DEVCTL', 'MRRS'), mrrsCode);
      this.hw.write(b + PCIE.DEVCTL, 2, ((phys & ~PCIE_DEVCTL.MRRS) | mrrs) & ~PCIE_DEVCTL.FLR);
    }
  }
}

/** vfio_config_do_rw(): dword, word or byte accesses by alignment. */
function chunk(pos: number, left: number): 1 | 2 | 4 {
  if (left >= 4 && pos % 4 === 0) return 4;
  if (left >= 2 && pos % 2 === 0) return 2;
  return 1;
}
