/**
 * VT-d driver fixture: a q35-vtd board with the VT-d model at iommuBase as
 * the root complex's remapper, a Host with the driver registered, and
 * endpoints brought under the kernel (probed, grouped) and claimed by a user.
 */
import { Board } from '../../../machines/board.ts';
import { VtdDriver } from '../../../iommu/vtd/driver/driver.ts';
import { VtdIommu, type VtdOptions } from '../../../iommu/vtd/vtd.ts';
import { Host } from '../../../src/host/host.ts';
import type { IommuGroup } from '../../../src/iommu-core/group.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import { BareFunction } from '../../pci/helpers.ts';
import { AtsTestEndpoint } from '../vtd/endpoint.ts';

export function machine(opts: VtdOptions = {}) {
  const board = new Board('q35-vtd', { ramBytes: 512 * 2 ** 20 });
  const vtd = new VtdIommu(board, board.sysmem, opts);
  board.sysmemRoot.addSubregion(board.layout.iommuBase, vtd.region, 1);
  board.rc.remapper = vtd;
  const host = new Host(board);
  const driver = new VtdDriver(host, board.layout.iommuBase);
  host.iommu.registerDriver(driver);
  /** Plug `dev` at slot `slot`, enable bus mastering, probe it and claim its group. */
  const add = <D extends PciFunction>(dev: D, slot: number): { dev: D; group: IommuGroup; owner: object } => {
    board.rc.plug(dev, slot);
    dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
    const r = host.addPciDevice(dev);
    if (r !== 0) throw new Error(`addPciDevice: ${r}`);
    const group = host.iommu.groupOf(dev)!;
    const owner = {};
    if (host.iommu.claimDmaOwner(group, owner) !== 0) throw new Error('claim');
    return { dev, group, owner };
  };
  return { board, vtd, host, driver, add };
}

/** The machine with one bare endpoint at 00:01.0, claimed, and 16 pages of RAM. */
export function bare(opts: VtdOptions = {}) {
  const m = machine(opts);
  const { dev, group, owner } = m.add(new BareFunction('ep'), 1);
  const ram = m.host.allocator.allocPages(4)!;
  return { ...m, dev, group, owner, ram };
}

/** The machine with an ATS/PRI/PASID endpoint at 00:02.0, claimed. */
export function atsDevice(opts: VtdOptions = {}) {
  const m = machine(opts);
  const { dev, group, owner } = m.add(new AtsTestEndpoint(m.board.scheduler, 'ats-ep'), 2);
  const ram = m.host.allocator.allocPages(4)!;
  return { ...m, ep: dev, group, owner, ram };
}
