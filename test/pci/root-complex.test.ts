import t from 'tap';
import { CFG, COMMAND, STATUS } from '../../src/pci/header.ts';
import { PcieRootPort } from '../../src/pci/root-port.ts';
import { formatBdf, parseBdf, requesterId, formatRequesterId } from '../../src/pci/bdf.ts';
import type { DmaRemapper } from '../../src/pci/remapper.ts';
import { BareFunction, newBoard } from './helpers.ts';

t.test('ECAM reaches a function by bus/device/function; absent ones read all-ones', async (t) => {
  const { board, cfg } = newBoard();
  board.rc.plug(new BareFunction('f', { vendorId: 0xabcd, deviceId: 0x1111 }), 5);
  t.equal(cfg.read(0, 5 << 3, CFG.VENDOR_ID, 4), 0x1111abcd);
  t.equal(cfg.read(0, 6 << 3, CFG.VENDOR_ID, 2), 0xffff);
  t.equal(cfg.read(0, (5 << 3) | 1, CFG.VENDOR_ID, 2), 0xffff, 'function 1 absent');
  t.equal(board.sysmem.read32(board.layout.ecamBase + (5 << 15) + 1), 0xffffffff, 'a misaligned ECAM dword is refused (all-ones)');
});

t.test('configuration requests route below a root port only inside its bus range', async (t) => {
  const { board, cfg } = newBoard();
  const port = new PcieRootPort(board.rc);
  board.rc.plug(port, 1);
  const dev = new BareFunction('child', { vendorId: 0x4444 });
  port.secondary.plug(dev, 0);
  t.equal(cfg.read(1, 0, CFG.VENDOR_ID, 2), 0xffff, 'bus 1 unreachable before bus numbers are set');
  cfg.write(0, 8, CFG.SECONDARY_BUS, 1, 1);
  cfg.write(0, 8, CFG.SUBORDINATE_BUS, 1, 1);
  t.equal(cfg.read(1, 0, CFG.VENDOR_ID, 2), 0x4444);
  t.equal(dev.bdf, '0000:01:00.0', 'the device takes the bus number software assigned');
  t.equal(dev.requesterId, 0x100);
});

t.test('a DMA with Bus Master Enable clear is aborted and never reaches memory', async (t) => {
  const { board } = newBoard();
  const f = new BareFunction('f');
  board.rc.plug(f, 1);
  const r = f.dmaWrite(0x1000n, new Uint8Array([1, 2, 3, 4]));
  t.same(r, { ok: false, fault: 'BUS_MASTER_DISABLED' });
  t.equal(board.sysmem.read32(0x1000), 0);
  f.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  t.same(f.dmaWrite(0x1000n, new Uint8Array([1, 2, 3, 4])), { ok: true });
  t.equal(board.sysmem.read32(0x1000), 0x04030201);
  const rd = f.dmaRead(0x1000n, 4);
  t.ok(rd.ok);
  t.same(rd.ok && [...rd.data!], [1, 2, 3, 4]);
});

t.test('a DMA to an address nothing decodes completes with UR and sets Received Master Abort', async (t) => {
  const { board } = newBoard();
  const f = new BareFunction('f');
  board.rc.plug(f, 1);
  f.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  const r = f.dmaRead(0x9000_0000n, 8);
  t.same(r, { ok: false, fault: 'UNSUPPORTED_REQUEST' });
  t.ok(f.config.get16(CFG.STATUS) & STATUS.REC_MASTER_ABORT);
  f.config.write(CFG.STATUS, 2, STATUS.REC_MASTER_ABORT);
  t.notOk(f.config.get16(CFG.STATUS) & STATUS.REC_MASTER_ABORT, 'RW1C');
});

t.test('devices behind a bridge reach memory only while the bridge forwards (its Bus Master Enable)', async (t) => {
  const { board, cfg } = newBoard();
  const port = new PcieRootPort(board.rc);
  board.rc.plug(port, 1);
  const dev = new BareFunction('child');
  port.secondary.plug(dev, 0);
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  t.same(dev.dmaRead(0n, 4), { ok: false, fault: 'BUS_MASTER_DISABLED' });
  cfg.write(0, 8, CFG.COMMAND, 2, COMMAND.MASTER);
  t.ok(dev.dmaRead(0n, 4).ok);
});

t.test('every transaction passes through the remapper, which may redirect or abort it', async (t) => {
  const { board } = newBoard();
  const f = new BareFunction('f');
  board.rc.plug(f, 1);
  f.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  const seen: number[] = [];
  const remapper: DmaRemapper = {
    translate(txn, addr, out) {
      seen.push(txn.requesterId, addr);
      if (addr >= 0x10_0000) {
        out.status = 'UR';
        out.fault = 'F_TRANSLATION';
        return false;
      }
      out.pa = addr + 0x2000_0000;
      out.length = 0x1000 - (addr % 0x1000);
      return true;
    },
  };
  board.rc.remapper = remapper;
  t.ok(f.dmaWrite(0xff8n, new Uint8Array(16).fill(9)).ok);
  t.same(seen, [0x08, 0xff8, 0x08, 0x1000], 'split at the 4 KiB translation boundary');
  t.equal(board.sysmem.read8(0x2000_0ff8), 9);
  t.equal(board.sysmem.read8(0x2000_1007), 9);
  t.same(f.dmaRead(0x10_0000n, 4), { ok: false, fault: 'F_TRANSLATION' });
});

t.test('a remapper answer with discard completes the piece as read-as-zero / write-ignored', async (t) => {
  const { board } = newBoard();
  const f = new BareFunction('f');
  board.rc.plug(f, 1);
  f.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  board.sysmem.write32(0x5000, 0x12345678);
  board.rc.remapper = {
    translate(_txn, addr, out) {
      out.pa = addr;
      out.length = 4096;
      out.discard = true;
      return true;
    },
  };
  const r = f.dmaRead(0x5000n, 4);
  t.same(r.ok && [...r.data!], [0, 0, 0, 0]);
  t.ok(f.dmaWrite(0x5000n, new Uint8Array([9, 9, 9, 9])).ok);
  t.equal(board.sysmem.read32(0x5000), 0x12345678, 'the write was dropped');
});

t.test('an MSI write to the doorbell is delivered with the writer requester ID', async (t) => {
  const { board } = newBoard();
  const f = new BareFunction('f');
  board.rc.plug(f, 2);
  f.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  const got: number[] = [];
  board.msi.on(0x31, (m) => got.push(m.rid, m.addr));
  f.sendMsi(board.layout.msiBase + 0x1000, 0x31);
  t.same(got, [0x10, board.layout.msiBase + 0x1000]);
  t.equal(board.msi.count(0x31), 1);
});

t.test('BDF strings and requester IDs', async (t) => {
  t.equal(formatBdf({ segment: 0, bus: 0x3a, device: 0x1f, fn: 7 }), '0000:3a:1f.7');
  t.same(parseBdf('0000:00:01.0'), { segment: 0, bus: 0, device: 1, fn: 0 });
  t.same(parseBdf('00:02.3'), { segment: 0, bus: 0, device: 2, fn: 3 });
  t.equal(parseBdf('0000:00:20.0'), undefined, 'device 32 does not exist');
  t.equal(parseBdf('junk'), undefined);
  t.equal(requesterId(1, 0x08), 0x108);
  t.equal(formatRequesterId(0x108), '0000:01:01.0');
});

t.test('configuration reads are counted per function and traced one by one only when asked', async (t) => {
  const { board, cfg } = newBoard();
  board.rc.plug(new BareFunction('f', { vendorId: 0xabcd }), 5);
  const reads: number[] = [];
  const writes: number[] = [];
  board.tracer.on('pci.config.read', (r) => void reads.push(r.args.offset));
  board.tracer.on('pci.config.write', (r) => void writes.push(r.args.offset));
  cfg.read(0, 5 << 3, CFG.VENDOR_ID, 2);
  cfg.read(0, 5 << 3, CFG.DEVICE_ID, 2);
  cfg.read(0, 6 << 3, CFG.VENDOR_ID, 2);
  cfg.write(0, 5 << 3, CFG.COMMAND, 2, 0);
  t.equal(board.counters.get('0000:00:05.0.config.reads'), 2, 'each read of the function counted; an absent function counts nothing');
  t.same(reads, [], 'no event per read by default (the host probes config space thousands of times)');
  t.same(writes, [CFG.COMMAND], 'writes change state and are always traced');
  board.rc.traceConfigReads = true;
  cfg.read(0, 5 << 3, CFG.VENDOR_ID, 2);
  t.same(reads, [CFG.VENDOR_ID], 'opted in: one event per read');
  t.equal(board.counters.get('0000:00:05.0.config.reads'), 3);
});
