import t from 'tap';
import { TEST_MAGIC, TEST_REGS } from '../../devices/test-dma-device.ts';
import { EBUSY, EFAULT, EINVAL, EIO, ENODEV } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { MSI } from '../../src/pci/caps/msi.ts';
import { MSIX } from '../../src/pci/caps/msix.ts';
import { PCIE } from '../../src/pci/caps/pcie-regs.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import {
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfio_device_info,
  vfio_region_info,
  vfio_info_cap_header,
  vfioPciIndexToOffset,
} from '../../src/uapi/vfio.ts';
import { vfio_device_bind_iommufd } from '../../src/uapi/iommufd.ts';
import { setCdevIommufdOps } from '../../src/vfio/module.ts';
import { deviceFd, openTyped, VARIANTS } from './fixture.ts';
import { IrqFunction } from './irq-function.ts';

for (const variant of VARIANTS) {
  t.test(variant.name, async (t) => {

    const RW = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    const CONFIG = vfioPciIndexToOffset(7);
    const BAR = (i: number) => vfioPciIndexToOffset(i);

    function opened(extra = false) {
      const irq = new IrqFunction();
      const f = variant.setup(extra ? { plug: [{ bdf: '0000:00:03.0', fn: irq }] } : {});
      const { p } = f;
      const [c, g] = openTyped(p, f.groupOf(f.dma));
      const d = deviceFd(p, g, f.dma.bdf);
      return { f, p, c, g, d, irq };
    }

    function regionInfo(p: Process, d: number, index: number, argsz = 32) {
      const bytes = new Uint8Array(Math.max(argsz, 32));
      bytes.set(encodeStruct(vfio_region_info, { argsz, index }));
      const r = p.ioctl(d, VFIO_DEVICE_GET_REGION_INFO, bytes);
      return { r, bytes, v: new StructView(vfio_region_info, bytes) };
    }

    const u32 = (b: Uint8Array | number) => (typeof b === 'number' ? b : b.reduce((v, x, i) => v + x * 2 ** (8 * i), 0));
    const le = (v: number, n = 4) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = (v >>> (8 * i)) & 0xff;
      return b;
    };

    t.test('DEVICE_GET_INFO: vfio-pci flags (RESET only with FLR), 9 regions, 5 IRQ indexes; argsz below 16 is EINVAL', async (t) => {
      const { f, p, d } = opened();
      const info = (fd: number, argsz = 24) => {
        const b = encodeStruct(vfio_device_info, { argsz });
        return [p.ioctl(fd, VFIO_DEVICE_GET_INFO, b), new StructView(vfio_device_info, b)] as const;
      };
      const [r, v] = info(d);
      t.equal(r, 0);
      t.equal(v.num('flags'), VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
      t.equal(v.num('num_regions'), 9);
      t.equal(v.num('num_irqs'), 5);
      t.equal(info(d, 15)[0], -EINVAL);
      const [, g2] = openTyped(p, f.groupOf(f.bare));
      const [r2, v2] = info(deviceFd(p, g2, f.bare.bdf), 16);
      t.equal(r2, 0, 'argsz 16 is enough');
      t.equal(v2.num('flags'), VFIO_DEVICE_FLAGS_PCI, 'no FLR, no RESET flag');
    });

    t.test('GET_REGION_INFO: BARs at index << 40 with size and flags, empty halves and absent BARs size 0, ROM empty, config 4K (256 for plain PCI), VGA and beyond EINVAL', async (t) => {
      const { f, p, d } = opened();
      const bar0 = regionInfo(p, d, 0);
      t.equal(bar0.r, 0);
      t.same([bar0.v.big('offset'), bar0.v.big('size'), bar0.v.num('flags')], [0n, 0x1000n, RW | VFIO_REGION_INFO_FLAG_MMAP]);
      const bar1 = regionInfo(p, d, 1);
      t.same([bar1.v.big('offset'), bar1.v.big('size'), bar1.v.num('flags')], [1n << 40n, 0n, 0]);
      const bar3 = regionInfo(p, d, 3);
      t.same([bar3.v.big('size'), bar3.v.num('flags')], [0n, 0], 'upper half of the 64-bit BAR2');
      const rom = regionInfo(p, d, 6);
      t.same([rom.v.big('offset'), rom.v.big('size'), rom.v.num('flags')], [6n << 40n, 0n, 0]);
      const cfg = regionInfo(p, d, 7);
      t.same([cfg.v.big('offset'), cfg.v.big('size'), cfg.v.num('flags')], [7n << 40n, 4096n, RW]);
      t.equal(regionInfo(p, d, 8).r, -EINVAL, 'no VGA');
      t.equal(regionInfo(p, d, 9).r, -EINVAL);
      t.equal(regionInfo(p, d, 0, 31).r, -EINVAL);
      const [, g2] = openTyped(p, f.groupOf(f.bare));
      const bcfg = regionInfo(p, deviceFd(p, g2, f.bare.bdf), 7);
      t.equal(bcfg.v.big('size'), 256n, 'a function without a PCIe capability has 256 bytes');
    });

    t.test('the MSI-X BAR is mmappable whole and says so with the MSIX_MAPPABLE capability (no sparse areas), as vfio-pci since 4.16', async (t) => {
      const { f, p, irq } = opened(true);
      const [, g3] = openTyped(p, f.groupOf(irq));
      const d = deviceFd(p, g3, irq.bdf);
      t.ok(d >= 0);
      const small = regionInfo(p, d, 0);
      t.equal(small.v.num('flags'), RW | VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS);
      t.equal(small.v.num('cap_offset'), 0);
      const need = small.v.num('argsz');
      t.equal(need, 32 + 8, 'room for one 8-byte capability header');
      const full = regionInfo(p, d, 0, need);
      t.equal(full.v.num('cap_offset'), 32);
      const cap = new StructView(vfio_info_cap_header, full.bytes.subarray(32));
      t.same([cap.num('id'), cap.num('version'), cap.num('next')], [VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1, 0]);
      const plain = regionInfo(p, deviceFd(p, openTyped(p, f.groupOf(f.bare))[1], f.bare.bdf), 0);
      t.equal(plain.v.num('flags'), RW | VFIO_REGION_INFO_FLAG_MMAP, 'a BAR without the MSI-X table has no capability');
    });

    t.test('config space: IDs read through; the BARs are virtual (sizing works, writes never reach the device)', async (t) => {
      const { f, p, d } = opened();
      const rd = (off: number, n = 4) => u32(p.pread(d, n, CONFIG + BigInt(off)));
      t.equal(rd(0), (0x10e0 << 16) | 0x1b36);
      const host0 = f.dma.config.get32(CFG.BAR0);
      t.equal(rd(CFG.BAR0), host0, 'initially the host address');
      t.equal(p.pwrite(d, le(0xffffffff), CONFIG + BigInt(CFG.BAR0)), 4);
      t.equal(rd(CFG.BAR0), 0xfffff000, 'sized: ~(size - 1) with the type bits');
      t.equal(f.dma.config.get32(CFG.BAR0), host0, 'the device keeps its host address');
      t.equal(p.pwrite(d, le(0xffffffff), CONFIG + BigInt(CFG.BAR0 + 8)), 4);
      t.equal(p.pwrite(d, le(0xffffffff), CONFIG + BigInt(CFG.BAR0 + 12)), 4);
      t.equal(rd(CFG.BAR0 + 8), 0xfffff004, '64-bit BAR low: size mask and the 64-bit type');
      t.equal(rd(CFG.BAR0 + 12), 0xffffffff, '64-bit BAR high');
      t.equal(p.pwrite(d, le(0xfe00_0000), CONFIG + BigInt(CFG.BAR0)), 4);
      t.equal(rd(CFG.BAR0), 0xfe00_0000);
      t.equal(rd(CFG.BAR0 + 4), 0, 'an absent BAR reads 0');
      t.equal(u32(p.pread(d, 4, BAR(0) + BigInt(TEST_REGS.ID))), TEST_MAGIC, 'the BAR still works at the host address');
    });

    t.test('config space: command bits reach the device (bus master, memory); memory off makes BAR access EIO', async (t) => {
      const { f, p, d } = opened();
      t.equal(p.pwrite(d, le(COMMAND.MEMORY | COMMAND.MASTER, 2), CONFIG + BigInt(CFG.COMMAND)), 2);
      t.equal(f.dma.busMasterEnabled, true);
      t.equal(p.pwrite(d, le(COMMAND.MASTER, 2), CONFIG + BigInt(CFG.COMMAND)), 2);
      t.equal(f.dma.memoryEnabled, false);
      t.equal(p.pread(d, 4, BAR(0)), -EIO);
      t.equal(p.pwrite(d, le(COMMAND.MEMORY | COMMAND.MASTER, 2), CONFIG + BigInt(CFG.COMMAND)), 2);
      t.equal(u32(p.pread(d, 4, BAR(0))), TEST_MAGIC);
    });

    t.test('config space: past its end is EFAULT (256 bytes for a plain PCI function); bytes outside any capability read 0', async (t) => {
      const { f, p, d } = opened();
      t.equal(p.pread(d, 4, CONFIG + 4094n), -EFAULT);
      t.equal(p.pread(d, 4, CONFIG + 4096n), -EFAULT);
      const [, g2] = openTyped(p, f.groupOf(f.bare));
      const db = deviceFd(p, g2, f.bare.bdf);
      t.equal(p.pread(db, 4, CONFIG + 256n), -EFAULT);
      t.same(p.pread(db, 4, CONFIG + 0x80n), new Uint8Array(4));
      t.equal(p.pwrite(db, le(0x1234), CONFIG + 0x80n), 4, 'writes outside capabilities are dropped');
      t.equal(f.bare.config.get32(0x80), 0);
    });

    t.test('config space: the MSI capability is virtual and MSI-X enable cannot be written by the user', async (t) => {
      const { f, p, irq } = opened(true);
      const [, g3] = openTyped(p, f.groupOf(irq));
      const d = deviceFd(p, g3, irq.bdf);
      const msi = irq.caps.findStd(MSI.CAP_ID)!;
      t.equal(p.pwrite(d, le(0xfee0_1000), CONFIG + BigInt(msi + MSI.ADDRESS_LO)), 4);
      t.equal(u32(p.pread(d, 4, CONFIG + BigInt(msi + MSI.ADDRESS_LO))), 0xfee0_1000, 'the user sees what it wrote');
      t.equal(irq.config.get32(msi + MSI.ADDRESS_LO), 0, 'the device does not');
      const msix = irq.caps.findStd(MSIX.CAP_ID)!;
      t.equal(p.pwrite(d, le(0x8000, 2), CONFIG + BigInt(msix + MSIX.FLAGS)), 2);
      t.equal(irq.msix.enabled, false);
    });

    t.test('BAR regions reach the device MMIO through system memory at the BAR address; the MSI-X table reads 0xff and drops writes', async (t) => {
      const { f, p, irq } = opened(true);
      const [, g3] = openTyped(p, f.groupOf(irq));
      const d = deviceFd(p, g3, irq.bdf);
      t.equal(p.pwrite(d, le(0xabcd1234), BAR(0) + 0x10n), 4);
      t.equal(irq.scratch[4], 0xabcd1234);
      t.equal(u32(p.pread(d, 4, BAR(0) + 0x10n)), 0xabcd1234);
      t.same(p.pread(d, 8, BAR(0) + 0x2000n), new Uint8Array(8).fill(0xff), 'the MSI-X table is hidden');
      t.equal(p.pwrite(d, le(0x1234), BAR(0) + 0x2008n), 4);
      t.equal(irq.msix.entry(0).data, 0, 'and protected');
      t.same(p.pread(d, 8, BAR(0) + 0x3800n), new Uint8Array(8), 'the PBA reads through');
      const tail = p.pread(d, 64, BAR(0) + 0x3ff8n);
      t.equal((tail as Uint8Array).length, 8, 'clipped at the BAR end');
      t.equal(p.pread(d, 4, BAR(0) + 0x4000n), -EINVAL, 'past the end');
      t.equal(p.pread(d, 4, BAR(1)), -EINVAL, 'upper half');
      t.equal(p.pwrite(d, le(0), vfioPciIndexToOffset(6)), -EINVAL, 'the ROM is read-only');
      t.equal(p.pread(d, 4, vfioPciIndexToOffset(9)), -EINVAL);
      t.same(p.pread(d, 0, BAR(0)), new Uint8Array(0));
    });

    t.test('DEVICE_RESET does an FLR: device state resets, config and the BARs come back; EINVAL without FLR', async (t) => {
      const { f, p, d } = opened();
      t.equal(p.pwrite(d, le(0x1234), BAR(0) + BigInt(TEST_REGS.SRC)), 4);
      t.equal(p.pwrite(d, le(COMMAND.MEMORY | COMMAND.MASTER, 2), CONFIG + BigInt(CFG.COMMAND)), 2);
      t.equal(p.ioctl(d, VFIO_DEVICE_RESET, 0), 0);
      t.equal(u32(p.pread(d, 4, BAR(0) + BigInt(TEST_REGS.SRC))), 0, 'device registers reset');
      t.equal(u32(p.pread(d, 4, BAR(0) + BigInt(TEST_REGS.ID))), TEST_MAGIC, 'BAR restored');
      t.equal(f.dma.busMasterEnabled, true, 'command restored');
      const exp = f.dma.caps.findStd(PCIE.CAP_ID)!;
      t.equal(p.pwrite(d, le(0x5678), BAR(0) + BigInt(TEST_REGS.SRC)), 4);
      t.equal(p.pwrite(d, le(0x8000, 2), CONFIG + BigInt(exp + PCIE.DEVCTL)), 2, 'Initiate FLR through the virtual config');
      t.equal(u32(p.pread(d, 4, BAR(0) + BigInt(TEST_REGS.SRC))), 0);
      t.equal(u32(p.pread(d, 2, CONFIG + BigInt(exp + PCIE.DEVCTL))) & 0x8000, 0, 'FLR reads 0');
      const [, g2] = openTyped(p, f.groupOf(f.bare));
      t.equal(p.ioctl(deviceFd(p, g2, f.bare.bdf), VFIO_DEVICE_RESET, 0), -EINVAL);
    });

    t.test('closing the last device fd disables the device: bus mastering off', async (t) => {
      const { f, p, d } = opened();
      t.equal(p.pwrite(d, le(COMMAND.MEMORY | COMMAND.MASTER, 2), CONFIG + BigInt(CFG.COMMAND)), 2);
      t.equal(p.close(d), 0);
      t.equal(f.dma.busMasterEnabled, false);
    });

    t.test('the cdev refuses everything until iommufd binds it, then serves the same ioctls; it and the group exclude each other', async (t) => {
      const f = variant.setup();
      const { p } = f;
      const cd = p.open('/dev/vfio/devices/vfio0');
      t.ok(cd >= 0);
      // 7.3 blocks the group when the cdev binds (vfio_df_ioctl_bind_iommufd -> vfio_device_block_group), not at open.
      const g0 = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
      t.ok(g0 >= 0, 'the group opens while the cdev is open but not bound');
      t.equal(p.close(g0), 0);
      t.equal(p.ioctl(cd, VFIO_DEVICE_GET_INFO, encodeStruct(vfio_device_info, { argsz: 24 })), -EINVAL);
      t.equal(p.pread(cd, 4, CONFIG), -EINVAL);
      if (!variant.real) {
        // Under the bare test board no iommufd is loaded: the cdev cannot bind until one registers.
        const arg = () => encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size });
        t.equal(p.ioctl(cd, VFIO_DEVICE_BIND_IOMMUFD, arg()), -ENODEV, 'no iommufd registered');
        setCdevIommufdOps(f.host, { bind: (_file, _fd, _proc, open) => open() });
        t.equal(p.ioctl(cd, VFIO_DEVICE_BIND_IOMMUFD, arg()), 0);
      } else {
        // A real machine has iommufd: bind through /dev/iommu.
        const b = encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd: p.open('/dev/iommu') });
        t.equal(p.ioctl(cd, VFIO_DEVICE_BIND_IOMMUFD, b), 0);
      }
      t.equal(p.open(`/dev/vfio/${f.groupOf(f.dma)}`), -EBUSY, 'the group is blocked while the cdev is bound');
      const b = encodeStruct(vfio_device_info, { argsz: 24 });
      t.equal(p.ioctl(cd, VFIO_DEVICE_GET_INFO, b), 0);
      t.equal(new StructView(vfio_device_info, b).num('num_regions'), 9);
      t.equal(u32(p.pread(cd, 4, CONFIG)), (0x10e0 << 16) | 0x1b36);
      t.equal(p.close(cd), 0);
      const g = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
      t.ok(g >= 0);
      const cd2 = p.open('/dev/vfio/devices/vfio0');
      t.ok(cd2 >= 0, 'the cdev opens while the group is open');
      const again = encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd: variant.real ? p.open('/dev/iommu') : 0 });
      t.equal(p.ioctl(cd2, VFIO_DEVICE_BIND_IOMMUFD, again), -EBUSY, 'but cannot bind while the group is open');
    });
  });
}
