import { Board } from '../../../machines/board.ts';
import { DmaEngine, type DmaEngineOptions } from '../../../devices/dma-engine/dma-engine.ts';
import { decodeCompletion, encodeDescriptor, type CompletionRecord, type DescriptorInput } from '../../../devices/dma-engine/descriptor.ts';
import {
  DMAE_BAR, DMAE_REGISTERS, DMAE_REGS, PORTAL, type FieldOf, regField, regValue, WQ_REG, WQ_REGISTERS, wqReg,
} from '../../../devices/dma-engine/regs.ts';
import { ATS, ATS_CTRL } from '../../../src/pci/caps/ats.ts';
import { MSIX } from '../../../src/pci/caps/msix.ts';
import { PASID, PASID_CTRL } from '../../../src/pci/caps/pasid.ts';
import { PRI, PRI_CTRL } from '../../../src/pci/caps/pri.ts';
import { PCIE } from '../../../src/pci/caps/pcie-regs.ts';
import { ecamAccessor } from '../../../src/pci/enumerate.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import { listCapabilities } from '../../../src/pci/lspci.ts';
import { TestAgent } from './test-agent.ts';

export const MSI_DATA_BASE = 0x100;

export interface WqSetup {
  ring?: { base: number; size: number };
  pasid?: number;
  priv?: boolean;
  shared?: boolean;
  privAllowed?: boolean;
  depth?: number;
  vector?: number;
}

/**
 * A virt-smmuv3 board with the test agent as its IOMMU and one DMA engine at
 * 00:01.0, enumerated through ECAM and programmed through config space and
 * MMIO as a driver would: Bus Master and memory decoding on, MSI-X enabled
 * with vector n writing data MSI_DATA_BASE + n to the doorbell, the device
 * enabled (GENCTRL). ATS, PRI and PASID stay off until a test turns them on.
 */
export function setup(options: DmaEngineOptions = {}) {
  const board = new Board('virt-smmuv3', { ramBytes: 2 ** 26 });
  const agent = new TestAgent(board);
  board.rc.remapper = agent;
  const dev = new DmaEngine(board, { name: 'dmae', ...options });
  board.rc.plug(dev, 1);
  const found = board.enumeratePci().find((f) => f.bdf === dev.bdf)!;
  const bar = (i: number) => found.bars.find((b) => b.index === i)!.addr!;
  const bar0 = bar(DMAE_BAR.REGS);
  const bar2 = bar(DMAE_BAR.MSIX);
  const bar4 = bar(DMAE_BAR.PORTALS);
  const mem = board.sysmem;
  const cfg = ecamAccessor(mem, board.layout.ecamBase);
  const devfn = dev.devfn;
  const caps = listCapabilities(cfg, 0, devfn);
  const capAt = (id: number, kind: 'std' | 'ext') => caps.find((c) => c.id === id && c.kind === kind)!.offset;
  const atsOff = capAt(ATS.CAP_ID, 'ext');
  const priOff = capAt(PRI.CAP_ID, 'ext');
  const pasidOff = capAt(PASID.CAP_ID, 'ext');
  const msixOff = capAt(MSIX.CAP_ID, 'std');
  const pcieOff = capAt(PCIE.CAP_ID, 'std');
  const cfgRead = (off: number, size: 1 | 2 | 4 = 2) => cfg.read(0, devfn, off, size);
  const cfgWrite = (off: number, size: 1 | 2 | 4, v: number) => cfg.write(0, devfn, off, size, v);

  for (let v = 0; v < dev.msix.vectors; v++) {
    mem.write32(bar2 + v * 16, board.layout.msiBase);
    mem.write32(bar2 + v * 16 + 4, 0);
    mem.write32(bar2 + v * 16 + 8, MSI_DATA_BASE + v);
    mem.write32(bar2 + v * 16 + 12, 0);
  }
  cfgWrite(msixOff + MSIX.FLAGS, 2, 0x8000);
  const setMaster = (on: boolean) => cfgWrite(CFG.COMMAND, 2, COMMAND.MEMORY | (on ? COMMAND.MASTER : 0));
  setMaster(true);
  const reg32 = (off: number) => mem.read32(bar0 + off);
  const wreg32 = (off: number, v: number) => mem.write32(bar0 + off, v);
  wreg32(DMAE_REGS.GENCTRL, regValue(DMAE_REGISTERS.GENCTRL, { ENABLE: 1 }));

  const rid = dev.requesterId;
  const ram = (off: number) => board.ramAddress(off);
  const f = {
    board, agent, dev, mem, cfg, bar0, bar2, bar4, rid, ram, reg32, wreg32, cfgRead, cfgWrite, setMaster,
    atsOff, priOff, pasidOff, pcieOff,
    enableAts(stu = 0) {
      cfgWrite(atsOff + ATS.CTRL, 2, ATS_CTRL.ENABLE | stu);
    },
    enablePasid(priv = true) {
      cfgWrite(pasidOff + PASID.CTRL, 2, PASID_CTRL.ENABLE | (priv ? PASID_CTRL.PRIV : 0));
    },
    enablePri(allocation = 16) {
      cfgWrite(priOff + PRI.ALLOC_REQ, 4, allocation);
      cfgWrite(priOff + PRI.CTRL, 2, PRI_CTRL.ENABLE);
    },
    priStatus: () => cfgRead(priOff + PRI.STATUS),
    /** Enable everything SVA needs: ATS, PASID (with Privileged Mode), PRI with `allocation`. */
    enableSva(allocation = 16) {
      f.enableAts();
      f.enablePasid();
      f.enablePri(allocation);
    },
    configWq(wq: number, s: WqSetup = {}) {
      const r = (x: number) => wqReg(wq, x);
      if (s.ring !== undefined) {
        mem.write64(bar0 + r(WQ_REG.RING_BASE), BigInt(s.ring.base));
        wreg32(r(WQ_REG.RING_SIZE), s.ring.size);
      }
      if (s.depth !== undefined) wreg32(r(WQ_REG.DEPTH), s.depth);
      wreg32(r(WQ_REG.PASID), s.pasid !== undefined ? regValue(WQ_REGISTERS.PASID, { PASID: s.pasid, PV: 1, PRIV: s.priv ? 1 : 0 }) : 0);
      wreg32(r(WQ_REG.VECTOR), s.vector ?? wq);
      wreg32(r(WQ_REG.CFG), regValue(WQ_REGISTERS.CFG, { ENABLE: 1, SHARED: s.shared ? 1 : 0, PRIV_ALLOWED: s.privAllowed ? 1 : 0 }));
    },
    wqReg: (wq: number, reg: number) => reg32(wqReg(wq, reg)),
    /** Write a descriptor to WQ `wq`'s portal with eight 64-bit MMIO writes; returns PORTAL.STATUS. */
    submit(wq: number, d: DescriptorInput | Uint8Array): number {
      const bytes = d instanceof Uint8Array ? d : encodeDescriptor(d);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const portal = bar4 + wq * PORTAL.PAGE;
      for (let q = 0; q < 8; q++) mem.write64(portal + q * 8, dv.getBigUint64(q * 8, true));
      return mem.read32(portal + PORTAL.STATUS);
    },
    /** Write a descriptor into ring slot `slot`. */
    ringWrite(ringBase: number, slot: number, d: DescriptorInput) {
      mem.writeFrom(ringBase + slot * 64, encodeDescriptor(d));
    },
    doorbell(wq: number, tail: number) {
      wreg32(wqReg(wq, WQ_REG.TAIL), tail);
    },
    record(addr: number): CompletionRecord {
      const b = new Uint8Array(32);
      mem.readInto(addr, b);
      return decodeCompletion(b);
    },
    error() {
      const e = reg32(DMAE_REGS.ERROR);
      const field = (name: FieldOf<typeof DMAE_REGISTERS.ERROR>) => regField(DMAE_REGISTERS.ERROR, e, name);
      return {
        valid: field('VALID') === 1,
        overflow: field('OVERFLOW') === 1,
        wqValid: field('WQ_VALID') === 1,
        write: field('FAULT_WRITE') === 1,
        code: field('CODE'),
        wq: field('WQ'),
        opcode: field('OPCODE'),
        info: reg32(DMAE_REGS.ERROR_INFO),
        addr: Number(mem.read64(bar0 + DMAE_REGS.ERROR_ADDR)),
      };
    },
    clearError() {
      wreg32(DMAE_REGS.ERROR, regValue(DMAE_REGISTERS.ERROR, { VALID: 1, OVERFLOW: 1 }));
    },
    msiCount: (vector: number) => board.msi.count(MSI_DATA_BASE + vector),
    flr() {
      cfgWrite(pcieOff + PCIE.DEVCTL, 2, 0x8000);
    },
    run() {
      board.scheduler.run();
    },
    counter: (n: string) => board.counters.get(`dmae.${n}`),
  };
  return f;
}

export type Fixture = ReturnType<typeof setup>;

/** Bytes 0, 1, 2, ... (mod 251) as a recognisable pattern. */
export function pattern(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i + seed) % 251;
  return b;
}

export const PAGE = 4096;
/** I/O virtual addresses the tests map; physical pages come from the same offsets into RAM. */
export const SRC = 0x10_0000;
export const DST = 0x20_0000;
export const CR = 0x30_0000;
export const RING = 0x40_0000;

/** Map [iova, iova+len) for `pasid` (-1: none) to RAM at `ramOff`; returns the physical address. */
export function mapBuf(f: Fixture, iova: number, ramOff: number, len: number, pasid = -1, perms: 'r' | 'rw' = 'rw'): number {
  const pa = f.ram(ramOff);
  f.agent.map(f.rid, pasid, iova, pa, Math.ceil(len / PAGE) * PAGE, perms);
  return pa;
}

/** The usual buffers without PASID: source and destination (16 KiB each) and a page of completion records. */
export function buffers(f: Fixture, len = 4 * PAGE) {
  const src = mapBuf(f, SRC, 0x10_0000, len);
  const dst = mapBuf(f, DST, 0x20_0000, len);
  const cr = mapBuf(f, CR, 0x30_0000, PAGE);
  return { src, dst, cr };
}

/** Bytes of guest physical memory. */
export function readPa(f: Fixture, pa: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  f.mem.readInto(pa, b);
  return b;
}
