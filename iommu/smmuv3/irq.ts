/**
 * Interrupts and global errors (§3.18 "Interrupts and notifications", §7.5
 * "Global error recording and SMMU_GERROR"). Each source (Event queue, PRI
 * queue, GERROR, CMD_SYNC completion) is an MSI when its address is non-zero
 * and IDR0.MSI == 1, otherwise the wired line. Which of the two an
 * implementation with both asserts when an MSI is configured is this model's
 * choice: only the MSI (the wired line stands for "no MSI configured").
 *
 * A GERROR bit is active while it differs from GERRORN; the SMMU activates an
 * error by toggling GERROR, software acknowledges by toggling GERRORN.
 */
import type { InjectionPoint } from '../../src/fault/injector.ts';
import type { FieldRef, RegRef, RegisterFile } from '../../src/hw/register-file.ts';
import { MEMTX_OK, type PhysMem } from '../../src/memory/phys-mem.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { Tracer } from '../../src/trace/tracer.ts';
import { GERROR, IRQ_CTRL, type GerrorName, type SmmuRegMap } from './regs.ts';

export type Smmuv3IrqLine = 'eventq' | 'priq' | 'gerror' | 'cmdq-sync';

const QUEUE_IRQ = {
  eventq: { enable: IRQ_CTRL.EVENTQ_IRQEN, abt: GERROR.MSI_EVENTQ_ABT_ERR },
  priq: { enable: IRQ_CTRL.PRIQ_IRQEN, abt: GERROR.MSI_PRIQ_ABT_ERR },
  gerror: { enable: IRQ_CTRL.GERROR_IRQEN, abt: GERROR.MSI_GERROR_ABT_ERR },
} as const;

const GERROR_NAMES = new Map<number, string>(Object.entries(GERROR).map(([k, v]) => [v, k]));

export class Interrupts {
  private readonly scratch = new Uint8Array(4);
  /** *_IRQ_CFG0.ADDR of each queue line, resolved once (read per interrupt). */
  private readonly cfgAddrs: Readonly<Record<keyof typeof QUEUE_IRQ, FieldRef>>;
  /** *_IRQ_CFG1 (the MSI data) of each queue line, and the registers read per interrupt or error check, resolved once. */
  private readonly cfgData: Readonly<Record<keyof typeof QUEUE_IRQ, RegRef>>;
  private readonly gerror: RegRef;
  private readonly gerrorn: RegRef;
  private readonly irqCtrlAck: RegRef;

  constructor(
    private readonly regs: RegisterFile<SmmuRegMap>,
    private readonly mem: PhysMem,
    private readonly msiPoint: InjectionPoint,
    private readonly wired: ((line: Smmuv3IrqLine) => void) | undefined,
    private readonly tracer: Tracer,
    private readonly source: string,
    private readonly msiCount: Counter,
  ) {
    this.cfgAddrs = {
      eventq: regs.fieldRef('EVENTQ_IRQ_CFG0', 'ADDR'), priq: regs.fieldRef('PRIQ_IRQ_CFG0', 'ADDR'),
      gerror: regs.fieldRef('GERROR_IRQ_CFG0', 'ADDR'),
    };
    this.cfgData = { eventq: regs.ref('EVENTQ_IRQ_CFG1'), priq: regs.ref('PRIQ_IRQ_CFG1'), gerror: regs.ref('GERROR_IRQ_CFG1') };
    this.gerror = regs.ref('GERROR');
    this.gerrorn = regs.ref('GERRORN');
    this.irqCtrlAck = regs.ref('IRQ_CTRLACK');
  }

  /** Is global error `bit` active (GERROR != GERRORN)? */
  gerrorActive(bit: number): boolean {
    return ((this.gerror.get() ^ this.gerrorn.get()) & bit) !== 0;
  }

  /** Activate a global error (no effect while it is already active) and signal it. */
  activateGerror(bit: number): void {
    if (this.gerrorActive(bit)) return;
    this.regs.set('GERROR', (this.regs.get('GERROR') ^ bit) >>> 0);
    this.tracer.trace('smmuv3.gerror', this.source, { name: GERROR_NAMES.get(bit) ?? String(bit), active: true });
    // A failing GERROR MSI is itself reported without another MSI (bounded).
    this.signal('gerror', bit !== GERROR.MSI_GERROR_ABT_ERR);
  }

  activateGerrorByName(name: GerrorName): void {
    this.activateGerror(GERROR[name]);
  }

  /** Raise a queue or GERROR interrupt if IRQ_CTRL enables it. */
  signal(line: 'eventq' | 'priq' | 'gerror', msiAllowed = true): void {
    const q = QUEUE_IRQ[line];
    if ((this.irqCtrlAck.get() & q.enable) === 0) return;
    // *_IRQ_CFG0.ADDR: the MSI's address (bits 55:52 are RES0 with a 52-bit OAS).
    const addr = this.cfgAddrs[line].get() * 4;
    if (addr !== 0 && msiAllowed) {
      if (!this.msi(line, addr, this.cfgData[line].get())) this.activateGerror(q.abt);
    } else {
      this.raiseWired(line);
    }
  }

  /** CMD_SYNC completion with CS == SIG_IRQ (§4.7.3): MSIData to MSIAddr, or the wired line. */
  syncComplete(msiAddr: number, msiData: number): void {
    if (msiAddr !== 0) {
      if (!this.msi('cmdq-sync', msiAddr, msiData)) this.activateGerror(GERROR.MSI_CMDQ_ABT_ERR);
    } else {
      this.raiseWired('cmdq-sync');
    }
  }

  private raiseWired(line: Smmuv3IrqLine): void {
    this.tracer.trace('smmuv3.irq', this.source, { line, msi: false, addr: 0, data: 0, ok: this.wired !== undefined });
    this.wired?.(line);
  }

  /** A 32-bit MSI write; false when it aborted (injected, or nothing accepted it). */
  private msi(line: Smmuv3IrqLine, addr: number, data: number): boolean {
    const p = this.msiPoint;
    const a = p.check(p.armed ? { line, addr, data } : undefined);
    let ok = true;
    if (a?.kind === 'fail') ok = false;
    else if (a?.kind !== 'drop') {
      const s = this.scratch;
      s[0] = data & 0xff;
      s[1] = (data >>> 8) & 0xff;
      s[2] = (data >>> 16) & 0xff;
      s[3] = (data >>> 24) & 0xff;
      ok = this.mem.writeFrom(addr, s) === MEMTX_OK;
    }
    this.msiCount.value++;
    if (this.tracer.wants('smmuv3.irq')) this.tracer.trace('smmuv3.irq', this.source, { line, msi: true, addr, data: data >>> 0, ok });
    return ok;
  }

}
