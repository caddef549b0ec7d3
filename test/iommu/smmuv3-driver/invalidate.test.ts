import t from 'tap';
import { decodeLayout } from '../../../src/hw/layout.ts';
import { CMD_LAYOUTS, CMD_OP, cmdOpcode } from '../../../iommu/smmuv3/cmd.ts';
import { atcInvCommand, tlbiRangeCommands } from '../../../iommu/smmuv3/driver/invalidate.ts';

const opcode = cmdOpcode;
/** The named fields of a command, decoded through its opcode's layout (a name it lacks reads undefined). */
const fields = (w: Uint32Array, names: string[]) => {
  const all: Record<string, number> = decodeLayout(CMD_LAYOUTS[opcode(w)]!, w);
  return Object.fromEntries(names.map((n) => [n, all[n]]));
};

t.test('TLBI_NH_VA by range (RIL): the odd part of the page count first, each command NUM+1 blocks of 2^SCALE pages', async (t) => {
  const cmds = tlbiRangeCommands('TLBI_NH_VA', { ASID: 7, Leaf: 1 }, 0x10_0000, 5 * 4096, 4096, true, true)!;
  t.same(cmds.map((c) => fields(c, ['ASID', 'VMID', 'Leaf', 'Address', 'TG', 'SCALE', 'NUM', 'TTL'])), [
    { ASID: 7, VMID: 0, Leaf: 1, Address: 0x100, TG: 1, SCALE: 0, NUM: 4, TTL: 3 },
  ]);
  const big = tlbiRangeCommands('TLBI_NH_VA', { ASID: 7, Leaf: 1 }, 0, 33 * 4096, 4096, true, true)!;
  t.same(big.map((c) => fields(c, ['Address', 'SCALE', 'NUM'])), [{ Address: 0, SCALE: 0, NUM: 0 }, { Address: 1, SCALE: 5, NUM: 0 }], '1 page, then 32');
});

t.test('TLBI_S2_IPA carries the VMID; without RIL one command per page, and none past 512 pages (invalidate the VMID)', async (t) => {
  const cmds = tlbiRangeCommands('TLBI_S2_IPA', { VMID: 9, Leaf: 0 }, 0x2000, 2 * 4096, 4096, false, false)!;
  t.same(cmds.map((c) => [opcode(c), ...Object.values(fields(c, ['VMID', 'Address', 'TG']))]), [
    [CMD_OP.TLBI_S2_IPA, 9, 2, 0],
    [CMD_OP.TLBI_S2_IPA, 9, 3, 0],
  ]);
  t.equal(tlbiRangeCommands('TLBI_S2_IPA', { VMID: 9, Leaf: 0 }, 0, 513 * 4096, 4096, false, false), null);
});

t.test('CMD_ATC_INV: a power-of-two span covering the range, or everything', async (t) => {
  const c = atcInvCommand(0x100, 3, 0x5000, 0x3000);
  t.same(fields(c, ['StreamID', 'SSV', 'SubstreamID', 'Address', 'Size']), { StreamID: 0x100, SSV: 1, SubstreamID: 3, Address: 4, Size: 2 });
  const all = atcInvCommand(0x100, -1, 0, 0);
  t.same(fields(all, ['SSV', 'Size']), { SSV: 0, Size: 52 });
});
