import t from 'tap';
import { TEST_CMD, TEST_REGS } from '../../devices/test-dma-device.ts';
import { EAGAIN, EBADF, EINVAL, ENOTTY } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import {
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_REQ_IRQ_INDEX,
  vfio_irq_info,
  vfio_irq_set,
  vfioPciIndexToOffset,
} from '../../src/uapi/vfio.ts';
import { deviceFd, map, openTyped, PAGE, VARIANTS } from './fixture.ts';
import { IrqFunction } from './irq-function.ts';

for (const v of VARIANTS) {
  t.test(v.name, async (t) => {

    const TRIGGER = VFIO_IRQ_SET_ACTION_TRIGGER;
    const le = (v: number, n = 4) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = (v >>> (8 * i)) & 0xff;
      return b;
    };

    function irqInfo(p: Process, d: number, index: number, argsz = 16): [number, number, number] {
      const b = encodeStruct(vfio_irq_info, { argsz, index });
      const r = p.ioctl(d, VFIO_DEVICE_GET_IRQ_INFO, b);
      const v = new StructView(vfio_irq_info, b);
      return [r, v.num('flags'), v.num('count')];
    }

    function setIrqs(p: Process, d: number, s: { index: number; flags: number; start?: number; count: number; data?: number[]; dataSize?: number; argsz?: number }): number {
      const per = s.dataSize ?? ((s.flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0 ? 4 : (s.flags & VFIO_IRQ_SET_DATA_BOOL) !== 0 ? 1 : 0);
      const size = vfio_irq_set.size + per * (s.data?.length ?? 0);
      const b = new Uint8Array(size);
      b.set(encodeStruct(vfio_irq_set, { argsz: s.argsz ?? size, flags: s.flags, index: s.index, start: s.start ?? 0, count: s.count }));
      const dv = new DataView(b.buffer);
      (s.data ?? []).forEach((x, i) => (per === 4 ? dv.setInt32(20 + 4 * i, x, true) : dv.setUint8(20 + i, x)));
      return p.ioctl(d, VFIO_DEVICE_SET_IRQS, b);
    }

    const count = (p: Process, efd: number): number => {
      const r = p.read(efd, 8);
      return typeof r === 'number' ? (r === -EAGAIN ? 0 : r) : Number(new DataView(r.buffer).getBigUint64(0, true));
    };

    function withDma() {
      const f = v.setup();
      const { p } = f;
      const [c, g] = openTyped(p, f.groupOf(f.dma));
      const d = deviceFd(p, g, f.dma.bdf);
      return { f, p, c, g, d };
    }

    function withIrqFn() {
      const irq = new IrqFunction();
      const f = v.setup({ plug: [{ bdf: '0000:00:03.0', fn: irq }] });
      const { p } = f;
      const [, g] = openTyped(p, f.groupOf(irq));
      const d = deviceFd(p, g, irq.bdf);
      p.pwrite(d, le(COMMAND.MEMORY | COMMAND.MASTER, 2), vfioPciIndexToOffset(7) + BigInt(CFG.COMMAND));
      return { f, p, d, irq };
    }

    t.test('GET_IRQ_INFO: counts from the capabilities, INTx maskable/automasked, the rest NORESIZE; ERR on every function (7.3); bad index or argsz EINVAL', async (t) => {
      const { f, p, d } = withDma();
      t.same(irqInfo(p, d, VFIO_PCI_INTX_IRQ_INDEX), [0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, 0]);
      t.same(irqInfo(p, d, VFIO_PCI_MSI_IRQ_INDEX), [0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 0], 'no MSI capability');
      t.same(irqInfo(p, d, VFIO_PCI_MSIX_IRQ_INDEX), [0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 4]);
      t.same(irqInfo(p, d, VFIO_PCI_ERR_IRQ_INDEX), [0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1]);
      t.same(irqInfo(p, d, VFIO_PCI_REQ_IRQ_INDEX), [0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1]);
      t.equal(irqInfo(p, d, 5)[0], -EINVAL);
      t.equal(irqInfo(p, d, 0, 15)[0], -EINVAL);
      const [, g2] = openTyped(p, f.groupOf(f.bare));
      // vfio_pci_ioctl_get_irq_info / vfio_pci_get_irq_count in 7.3: the ERR index no longer depends on pci_is_pcie.
      const bare = deviceFd(p, g2, f.bare.bdf);
      t.same(irqInfo(p, bare, VFIO_PCI_ERR_IRQ_INDEX), [0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1], 'not PCIe: still one ERR eventfd');
      const efd = p.eventfd();
      t.equal(setIrqs(p, bare, { index: VFIO_PCI_ERR_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [efd] }), 0, 'and SET_IRQS takes its eventfd');
    });

    t.test(`an MSI-X vector the device raises signals the eventfd SET_IRQS gave it`, async (t) => {
      const { f, p, c, d } = withDma();
      const efd = p.eventfd();
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSIX_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, start: 1, count: 1, data: [efd] }), 0);
      t.equal(f.dma.msix.enabled, true, 'the host enabled MSI-X in the device');
      const va = p.mmap(2 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 2 * PAGE }), 0);
      const bar0 = vfioPciIndexToOffset(0);
      p.pwrite(d, le(COMMAND.MEMORY | COMMAND.MASTER, 2), vfioPciIndexToOffset(7) + BigInt(CFG.COMMAND));
      p.pwrite(d, le(0x10_0000), bar0 + BigInt(TEST_REGS.SRC));
      p.pwrite(d, le(0x10_1000), bar0 + BigInt(TEST_REGS.DST));
      p.pwrite(d, le(64), bar0 + BigInt(TEST_REGS.LEN));
      p.pwrite(d, le(1), bar0 + BigInt(TEST_REGS.IRQ_VECTOR));
      p.pwrite(d, le(TEST_CMD.START), bar0 + BigInt(TEST_REGS.CMD));
      f.board.scheduler.run();
      t.equal(count(p, efd), 1, 'one interrupt');
      t.equal(f.board.counters.get('vfio.irqs'), 1);
    });

    t.test('SET_IRQS validation: one data type, known flags, range inside the count, enough data (EINVAL); MASK/UNMASK on MSI-X are ENOTTY', async (t) => {
      const { p, d } = withDma();
      const efd = p.eventfd();
      const X = VFIO_PCI_MSIX_IRQ_INDEX;
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_DATA_BOOL | TRIGGER, count: 1, data: [efd], dataSize: 4 }), -EINVAL);
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER | (1 << 6), count: 1, data: [efd] }), -EINVAL);
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, start: 3, count: 2, data: [efd, efd] }), -EINVAL);
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, start: 4, count: 0 }), -EINVAL);
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 2, data: [efd] }), -EINVAL, 'argsz short of the data');
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [efd], argsz: 19 }), -EINVAL);
      t.equal(setIrqs(p, d, { index: 5, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 0 }), -EINVAL);
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, count: 1 }), -ENOTTY);
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, count: 1 }), -ENOTTY);
      t.equal(setIrqs(p, d, { index: VFIO_PCI_INTX_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 0 }), -EINVAL, 'no INTx pin');
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 1 }), -EINVAL, 'loopback before enabling');
    });

    t.test('SET_IRQS eventfds: a closed fd is EBADF, a non-eventfd EINVAL, and the failed enable leaves MSI-X off', async (t) => {
      const { f, p, d } = withDma();
      const efd = p.eventfd();
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSIX_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 2, data: [efd, 99] }), -EBADF);
      t.equal(f.dma.msix.enabled, false);
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSIX_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [d] }), -EINVAL);
      t.equal(f.dma.msix.enabled, false);
    });

    t.test('DATA_NONE / DATA_BOOL triggers signal the eventfds (loopback); fd -1 unassigns; count 0 with DATA_NONE disables', async (t) => {
      const { f, p, d } = withDma();
      const e0 = p.eventfd();
      const e1 = p.eventfd();
      const X = VFIO_PCI_MSIX_IRQ_INDEX;
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 2, data: [e0, e1] }), 0);
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 2 }), 0);
      t.same([count(p, e0), count(p, e1)], [1, 1]);
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_BOOL | TRIGGER, count: 2, data: [0, 1] }), 0);
      t.same([count(p, e0), count(p, e1)], [0, 1]);
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, start: 1, count: 1, data: [-1] }), 0);
      t.equal(f.dma.msix.masked(1), true, 'an unassigned vector is masked in the device');
      f.dma.msix.notify(1);
      t.equal(count(p, e1), 0, 'and its interrupts stay pending');
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSI_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 0 }), -EINVAL, 'MSI has no vectors on this device');
      t.equal(setIrqs(p, d, { index: X, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 0 }), 0);
      t.equal(f.dma.msix.enabled, false);
      f.dma.msix.notify(0);
      t.equal(count(p, e0), 0);
    });

    t.test('MSI with per-vector masking: vectors signal their eventfds; MSI and MSI-X exclude each other (EINVAL)', async (t) => {
      const { f, p, d, irq } = withIrqFn();
      const e = [p.eventfd(), p.eventfd()];
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSI_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 2, data: e }), 0);
      t.equal(irq.msi.enabled, true);
      t.equal(irq.msi.allocatedVectors, 2);
      t.equal(irq.msi.notify(1), 'sent');
      t.same([count(p, e[0]!), count(p, e[1]!)], [0, 1]);
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSIX_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [e[0]!] }), -EINVAL);
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSI_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 0 }), 0);
      t.equal(irq.msi.enabled, false);
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSIX_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, start: 5, count: 1, data: [e[0]!] }), 0);
      t.equal(irq.msix.notify(5), 'sent');
      t.equal(count(p, e[0]!), 1);
      void f;
    });

    t.test('ERR and REQ take one eventfd; DATA_NONE with count 1 signals it, count 0 drops it', async (t) => {
      const { p, d } = withDma();
      const e = p.eventfd();
      for (const index of [VFIO_PCI_ERR_IRQ_INDEX, VFIO_PCI_REQ_IRQ_INDEX]) {
        t.equal(setIrqs(p, d, { index, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [e] }), 0);
        t.equal(setIrqs(p, d, { index, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 1 }), 0);
        t.equal(count(p, e), 1);
        t.equal(setIrqs(p, d, { index, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 0 }), 0);
        // vfio_pci_set_ctx_trigger_single: DATA_NONE with no eventfd set, and an fd below -1, are -EINVAL.
        t.equal(setIrqs(p, d, { index, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 1 }), -EINVAL, 'nothing to signal: EINVAL');
        t.equal(setIrqs(p, d, { index, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 0 }), -EINVAL, 'nothing to drop: EINVAL');
        t.equal(count(p, e), 0, 'dropped');
        t.equal(setIrqs(p, d, { index, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [-2] }), -EINVAL, 'fd -2');
      }
    });

    t.test('DEVICE_RESET keeps MSI-X working: the host reprograms the table after the FLR', async (t) => {
      const { f, p, d } = withDma();
      const e = p.eventfd();
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSIX_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [e] }), 0);
      p.pwrite(d, le(COMMAND.MEMORY | COMMAND.MASTER, 2), vfioPciIndexToOffset(7) + BigInt(CFG.COMMAND));
      t.equal(p.ioctl(d, VFIO_DEVICE_RESET, 0), 0);
      t.equal(f.dma.msix.notify(0), 'sent');
      t.equal(count(p, e), 1);
    });

    t.test('GET_IRQ_INFO for INTx: count 1 with an interrupt pin, EVENTFD|MASKABLE|AUTOMASKED', async (t) => {
      const { p, d } = withIrqFn();
      t.same(irqInfo(p, d, VFIO_PCI_INTX_IRQ_INDEX), [0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, 1]);
      t.same(irqInfo(p, d, VFIO_PCI_ERR_IRQ_INDEX), [0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1], 'PCIe: one ERR eventfd');
      t.same(irqInfo(p, d, VFIO_PCI_REQ_IRQ_INDEX), [0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1]);
    });

    t.test('INTx: the line is masked at the device (Interrupt Disable) and the eventfd signalled; UNMASK re-arms it', async (t) => {
      const { f, p, d, irq } = withIrqFn();
      const I = VFIO_PCI_INTX_IRQ_INDEX;
      const e = p.eventfd();
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, count: 1 }), -EINVAL, 'nothing to unmask before enabling');
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [e] }), 0);
      irq.intx.set(true);
      t.equal(count(p, e), 1, 'signalled');
      t.equal(irq.command & COMMAND.INTX_DISABLE, COMMAND.INTX_DISABLE, 'auto-masked in the device');
      t.equal(irq.intx.level, false, 'the line is down while masked');
      irq.intx.set(false);
      irq.intx.set(true);
      t.equal(count(p, e), 0, 'no second interrupt while masked');
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, count: 1 }), 0);
      t.equal(count(p, e), 1, 'still pending at unmask: signalled again, not unmasked');
      t.equal(irq.command & COMMAND.INTX_DISABLE, COMMAND.INTX_DISABLE);
      irq.intx.set(false);
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_UNMASK, count: 1, data: [1] }), 0);
      t.equal(irq.command & COMMAND.INTX_DISABLE, 0, 'served: unmasked');
      irq.intx.set(true);
      t.equal(count(p, e), 1, 'the next interrupt arrives');
      t.ok(f.board.counters.get('vfio.irqs') >= 3);
    });

    t.test('INTx MASK holds the line at the device; loopback triggers; bad ranges EINVAL; INTx and MSI exclude each other; close lets it go', async (t) => {
      const { p, d, irq } = withIrqFn();
      const I = VFIO_PCI_INTX_IRQ_INDEX;
      const e = p.eventfd();
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, start: 0, count: 2, data: [e, e] }), -EINVAL, 'one INTx only');
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [99] }), -EBADF);
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 1 }), -EINVAL, 'loopback before enabling');
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [e] }), 0);
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, count: 1 }), 0);
      irq.intx.set(true);
      t.equal(count(p, e), 0, 'masked by the user: nothing');
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, count: 1 }), 0);
      t.equal(count(p, e), 1, 'pending at unmask: signalled');
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 1 }), 0);
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_BOOL | TRIGGER, count: 1, data: [1] }), 0);
      t.equal(count(p, e), 2, 'DATA_NONE and DATA_BOOL loop back');
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSI_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [e] }), -EINVAL, 'MSI while INTx is on');
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 0 }), 0, 'count 0 disables');
      t.equal(irq.command & COMMAND.INTX_DISABLE, 0, 'disable unmasks at the device');
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSI_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [e] }), 0);
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [e] }), -EINVAL, 'INTx while MSI is on');
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSI_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_NONE | TRIGGER, count: 0 }), 0);
      irq.intx.set(false);
      t.equal(setIrqs(p, d, { index: I, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [e] }), 0);
      t.equal(p.close(d), 0);
      irq.intx.set(true);
      t.equal(count(p, e), 0, 'closed: the handler is gone');
    });

    t.test('closing the device fd turns its interrupts off', async (t) => {
      const { f, p, d } = withDma();
      const e = p.eventfd();
      t.equal(setIrqs(p, d, { index: VFIO_PCI_MSIX_IRQ_INDEX, flags: VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, count: 1, data: [e] }), 0);
      t.equal(p.close(d), 0);
      t.equal(f.dma.msix.enabled, false);
    });
  });
}
