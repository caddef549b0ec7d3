import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import type { Scheduler } from '../../../src/sim/scheduler.ts';
import { encodeCommand, SYNC_CS, type CmdName, type CmdValues } from '../cmd.ts';
import { CERROR, GERROR, SMMU_REG, SMMU_REGS } from '../regs.ts';
import { queueFull } from '../queue.ts';

const ENTRY_BYTES = 16;
/** How long (virtual ns) a CMD_SYNC may take before the driver gives up, as Linux's ARM_SMMU_POLL_TIMEOUT_US. */
const SYNC_TIMEOUT_NS = 1_000_000;

/**
 * The driver side of the command queue (arm_smmu_cmdq_issue_cmdlist): write
 * commands at PROD, publish PROD, and complete batches with a CMD_SYNC whose
 * MSI write lands on the SYNC entry itself ("MSI polling": the driver waits
 * for the entry's first word to be overwritten with the MSI data, 0).
 */
export class CommandQueue {
  prod = 0;
  errors = 0;
  timeouts = 0;
  /** CMD_SYNCs that reported CERROR_ATC_INV_SYNC (an ATC invalidation never completed). */
  atcTimeouts = 0;
  commandsIssued = 0;
  /** A command's bytes, written to the queue in one access (queue_write's copy). */
  private readonly cmdBytes = new Uint8Array(ENTRY_BYTES);
  private readonly cmdView = new DataView(this.cmdBytes.buffer);
  /** Entries in the queue, and the bits of PROD/CONS that hold index and wrap flag. */
  private readonly entries: number;
  private readonly indexMask: number;

  constructor(
    private readonly mmio: PhysMem,
    private readonly regBase: number,
    private readonly mem: PhysMem,
    readonly base: number,
    readonly log2: number,
    private readonly scheduler: Scheduler,
    private readonly onError: (cerror: number, cmdWords: Uint32Array) => void,
  ) {
    this.entries = 2 ** log2;
    this.indexMask = 2 * this.entries - 1;
  }

  private cons(): number {
    return this.mmio.read32(this.regBase + SMMU_REG.CMDQ_CONS);
  }

  /** Queue commands without waiting (they run when PROD is published). */
  issue(cmds: readonly Uint32Array[]): void {
    for (const c of cmds) this.put(c);
    this.publish();
  }

  /** Issue commands followed by CMD_SYNC and wait for it (arm_smmu_cmdq_issue_cmdlist with sync). */
  issueSync(cmds: readonly Uint32Array[] = []): boolean {
    for (const c of cmds) this.put(c);
    const syncAt = this.entryAddr(this.prod);
    // CS=SIG_IRQ with MSIAddr pointing at this entry: the SMMU's completion write zeroes its first word.
    this.put(encodeCommand('SYNC', { CS: SYNC_CS.IRQ, MSIData: 0, MSIAddr: syncAt / 4, MSIAttr: 0xf }));
    this.publish();
    // (No named closure here: this runs for every page response.)
    if (this.mem.read32(syncAt) === 0) return true;
    const deadline = this.scheduler.now + SYNC_TIMEOUT_NS;
    this.scheduler.runUntil(() => this.mem.read32(syncAt) === 0 || this.scheduler.now >= deadline || this.stalledOnError());
    if (this.mem.read32(syncAt) === 0) return true;
    this.timeouts++;
    return false;
  }

  /** Queue one encoded command without waiting (the words are copied into the queue). */
  issueWords(cmd: Uint32Array): void {
    this.put(cmd);
    this.publish();
  }

  issueOne<N extends CmdName>(op: N, fields: CmdValues<N> = {}, sync = true): boolean {
    const c = encodeCommand(op, fields);
    if (sync) return this.issueSync([c]);
    this.issue([c]);
    return true;
  }

  private entryAddr(index: number): number {
    return this.base + (index % this.entries) * ENTRY_BYTES;
  }

  private put(cmd: Uint32Array): void {
    // A full queue is drained by publishing what is there first (the SMMU consumes synchronously).
    if (queueFull(this.prod, this.cons() & this.indexMask, this.log2)) this.publish();
    const a = this.entryAddr(this.prod);
    const v = this.cmdView;
    for (let i = 0; i < 4; i++) v.setUint32(4 * i, cmd[i] ?? 0, true);
    this.mem.writeFrom(a, this.cmdBytes);
    this.prod = (this.prod + 1) & this.indexMask;
    this.commandsIssued++;
  }

  private publish(): void {
    this.mmio.write32(this.regBase + SMMU_REG.CMDQ_PROD, this.prod);
    this.stalledOnError();
  }

  /**
   * A command the SMMU refused stops the queue (CMDQ_CONS.ERR, GERROR.CMDQ_ERR).
   * Like Linux's arm_smmu_cmdq_skip_err, report it, replace it with a SYNC
   * and acknowledge the error so the queue runs on. CERROR_ATC_INV_SYNC is
   * an ATC invalidation that timed out: CONS is on the CMD_SYNC, which stays
   * and is consumed again (it may well time out again).
   */
  private stalledOnError(): boolean {
    const gerror = this.mmio.read32(this.regBase + SMMU_REG.GERROR);
    const gerrorn = this.mmio.read32(this.regBase + SMMU_REG.GERRORN);
    if (((gerror ^ gerrorn) & GERROR.CMDQ_ERR) === 0) return false;
    // CONS says where and why only when the queue stopped (register reads have no side effects).
    const cons = this.cons();
    this.errors++;
    const err = SMMU_REGS.get('CMDQ_CONS', cons, 'ERR');
    const at = this.entryAddr(SMMU_REGS.get('CMDQ_CONS', cons, 'RD'));
    const words = new Uint32Array(4);
    for (let i = 0; i < 4; i++) words[i] = this.mem.read32(at + 4 * i);
    this.onError(err === 0 ? CERROR.ILL : err, words);
    if (err === CERROR.ATC_INV_SYNC) {
      this.atcTimeouts++;
    } else {
      const sync = encodeCommand('SYNC', { CS: SYNC_CS.NONE });
      for (let i = 0; i < 4; i++) this.mem.write32(at + 4 * i, sync[i]!);
    }
    this.mmio.write32(this.regBase + SMMU_REG.GERRORN, (gerrorn ^ GERROR.CMDQ_ERR) >>> 0);
    // Kick the queue again so it consumes from the replaced entry on.
    this.mmio.write32(this.regBase + SMMU_REG.CMDQ_PROD, this.prod);
    return true;
  }
}
