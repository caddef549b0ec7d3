/**
 * Nested translation glue: a TableAddrTranslator that sends every stage-1
 * table address through a stage-2 walker, as SMMUv3 (S1 + S2) and VT-d
 * (first stage nested on second stage) do for their stage-1 walks.
 */
import { ACCESS_READ, ACCESS_WRITE, WalkResult, type PageTableWalker, type TableAddrTranslator } from './types.ts';

export class NestedTableTranslator implements TableAddrTranslator {
  private readonly s2 = new WalkResult();

  constructor(private readonly stage2: PageTableWalker) {}

  translateTableAddr(addr: number, write: boolean, r: WalkResult): number {
    const ok = this.stage2.walk(addr, write ? ACCESS_WRITE : ACCESS_READ, this.s2);
    r.memReads += this.s2.memReads;
    r.memWrites += this.s2.memWrites;
    if (!ok) {
      r.s2FaultKind = this.s2.fault;
      r.s2FaultLevel = this.s2.faultLevel;
      return -1;
    }
    return this.s2.outputAddr;
  }
}
