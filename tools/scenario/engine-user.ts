/**
 * A user-space driver for the reference DMA engine (devices/dma-engine/README.md)
 * that reaches the device only through a VFIO device fd, as a VMM or a
 * DPDK-style driver would: config space and BARs through pread/pwrite at the
 * offsets VFIO_DEVICE_GET_REGION_INFO reports, descriptors through the WQ
 * portal (64-byte pwrite, sixteen 32-bit MMIO writes in order) or a ring in
 * the process's memory, completion records read back from that memory.
 *
 * Addresses given to the device are IOVAs (type1 / iommufd: what MAP_DMA
 * mapped) or, for a WQ with a PASID, the process's own virtual addresses (SVA).
 */
import { decodeCompletion, encodeDescriptor, OPCODE, type CompletionRecord } from '../../devices/dma-engine/descriptor.ts';
import {
  DMAE_BAR, DMAE_REGISTERS, DMAE_REGS, PORTAL, regField, regValue, WQ_REG, WQ_REGISTERS, wqReg,
} from '../../devices/dma-engine/regs.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '../../src/uapi/vfio.ts';
import type { VfioClient } from '../../src/vfio/client.ts';

export interface WqConfig {
  /** The WQ's default address space: a PASID (SVA) or none (IOVA through the RID's domain). */
  pasid?: number;
  /** A descriptor ring at this device address (IOVA, or VA with a PASID) of `size` 64-byte slots. */
  ring?: { deviceAddr: bigint; vaddr: bigint; size: number };
  depth?: number;
  /** The MSI-X vector raised by descriptors submitted with `rci` (default: none). */
  vector?: number;
}

export class EngineUser {
  private readonly regionOffset = new Map<number, bigint>();
  private readonly rings = new Map<number, { deviceAddr: bigint; vaddr: bigint; size: number; tail: number }>();

  constructor(
    readonly p: Process,
    readonly v: VfioClient,
    readonly fd: number,
  ) {}

  private region(index: number): bigint {
    let off = this.regionOffset.get(index);
    if (off === undefined) {
      const info = this.v.regionInfo(this.fd, index);
      if (typeof info === 'number') throw new Error(`VFIO_DEVICE_GET_REGION_INFO(${index}) failed (${info})`);
      off = info.offset;
      this.regionOffset.set(index, off);
    }
    return off;
  }

  private w32(index: number, off: number, val: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, val >>> 0, true);
    const r = this.p.pwrite(this.fd, b, this.region(index) + BigInt(off));
    if (r !== 4) throw new Error(`pwrite region ${index} +0x${off.toString(16)} failed (${r})`);
  }

  private r32(index: number, off: number): number {
    const r = this.p.pread(this.fd, 4, this.region(index) + BigInt(off));
    if (typeof r === 'number') throw new Error(`pread region ${index} +0x${off.toString(16)} failed (${r})`);
    return new DataView(r.buffer, r.byteOffset, 4).getUint32(0, true);
  }

  /** Memory decoding and Bus Master on (through the VFIO config region), then GENCTRL.ENABLE. */
  enable(): void {
    const cmd = this.p.pread(this.fd, 2, this.region(VFIO_PCI_CONFIG_REGION_INDEX) + BigInt(CFG.COMMAND));
    if (typeof cmd === 'number') throw new Error(`config read failed (${cmd})`);
    const v = (cmd[0]! | (cmd[1]! << 8) | COMMAND.MASTER | COMMAND.MEMORY) & 0xffff;
    const r = this.p.pwrite(this.fd, new Uint8Array([v & 0xff, v >> 8]), this.region(VFIO_PCI_CONFIG_REGION_INDEX) + BigInt(CFG.COMMAND));
    if (r !== 2) throw new Error(`config write failed (${r})`);
    this.w32(DMAE_BAR.REGS, DMAE_REGS.GENCTRL, regValue(DMAE_REGISTERS.GENCTRL, { ENABLE: 1 }));
  }

  /** Configure and enable work queue `wq`; throws when the device refuses the configuration. */
  configWq(wq: number, c: WqConfig = {}): void {
    const R = DMAE_BAR.REGS;
    if (c.ring !== undefined) {
      this.w32(R, wqReg(wq, WQ_REG.RING_BASE), Number(c.ring.deviceAddr & 0xffffffffn));
      this.w32(R, wqReg(wq, WQ_REG.RING_BASE) + 4, Number(c.ring.deviceAddr >> 32n));
      this.w32(R, wqReg(wq, WQ_REG.RING_SIZE), c.ring.size);
      this.rings.set(wq, { ...c.ring, tail: 0 });
    }
    if (c.depth !== undefined) this.w32(R, wqReg(wq, WQ_REG.DEPTH), c.depth);
    if (c.vector !== undefined) this.w32(R, wqReg(wq, WQ_REG.VECTOR), c.vector);
    this.w32(R, wqReg(wq, WQ_REG.PASID), c.pasid !== undefined ? regValue(WQ_REGISTERS.PASID, { PASID: c.pasid, PV: 1 }) : 0);
    this.w32(R, wqReg(wq, WQ_REG.CFG), regValue(WQ_REGISTERS.CFG, { ENABLE: 1 }));
    if (regField(WQ_REGISTERS.STATUS, this.r32(R, wqReg(wq, WQ_REG.STATUS)), 'ENABLED') === 0) {
      throw new Error(`WQ ${wq} did not enable (ERROR=0x${this.r32(R, DMAE_REGS.ERROR).toString(16)} INFO=0x${this.r32(R, DMAE_REGS.ERROR_INFO).toString(16)})`);
    }
  }

  /** WQ STATUS.OCCUPANCY: descriptors queued and not yet completed. */
  occupancy(wq: number): number {
    return regField(WQ_REGISTERS.STATUS, this.r32(DMAE_BAR.REGS, wqReg(wq, WQ_REG.STATUS)), 'OCCUPANCY');
  }

  completed(wq: number): number {
    return this.r32(DMAE_BAR.REGS, wqReg(wq, WQ_REG.COMPLETED));
  }

  /** The error register (0 when nothing latched). */
  error(): number {
    return this.r32(DMAE_BAR.REGS, DMAE_REGS.ERROR);
  }

  /**
   * A MEMMOVE of `length` bytes with a completion record at `record`
   * (device addresses), through the portal of `wq` (or its ring, if it has
   * one). With `rci` the WQ's vector is raised on completion. Returns the
   * PORTAL.STATUS for portal submissions (0 accepted), 0 for ring submissions.
   */
  memmove(wq: number, d: { src: bigint; dst: bigint; length: number; record: bigint; rci?: boolean }): number {
    const desc = encodeDescriptor({ op: OPCODE.MEMMOVE, rcr: true, rci: d.rci === true, completion: Number(d.record), src: Number(d.src), dst: Number(d.dst), length: d.length });
    const ring = this.rings.get(wq);
    if (ring !== undefined) {
      const w = this.p.memWrite(ring.vaddr + BigInt(64 * ring.tail), desc);
      if (w < 0) throw new Error(`ring slot write failed (${w})`);
      ring.tail = (ring.tail + 1) % ring.size;
      this.w32(DMAE_BAR.REGS, wqReg(wq, WQ_REG.TAIL), ring.tail);
      return 0;
    }
    const r = this.p.pwrite(this.fd, desc, this.region(DMAE_BAR.PORTALS) + BigInt(wq * PORTAL.PAGE));
    if (r !== 64) throw new Error(`portal write failed (${r})`);
    return this.r32(DMAE_BAR.PORTALS, wq * PORTAL.PAGE + PORTAL.STATUS);
  }

  /** Read a completion record from the process's memory at `vaddr` (status 0: not written yet). */
  record(vaddr: bigint): CompletionRecord {
    const b = this.p.memRead(vaddr, 32);
    if (typeof b === 'number') throw new Error(`completion record read failed (${b})`);
    return decodeCompletion(b);
  }
}
