import type { CompletionStatus, DmaTransaction } from './transaction.ts';

/**
 * What an IOMMU gives the root complex: translation of one piece of a
 * bus-master transaction. The root complex asks for the translation of
 * `addr` (inside `txn`) and performs the memory access itself, piece by
 * piece, for as many bytes as each answer covers. With no remapper attached
 * the root complex passes addresses through unchanged.
 */
export interface TranslationAnswer {
  /** Output (physical) address of the input address asked for. */
  pa: number;
  /** Bytes from the input address that map contiguously to `pa`. */
  length: number;
  /** On failure: the completion status to return and the fault's name. */
  status: CompletionStatus;
  fault: string;
  /**
   * Success without memory access (SMMUv3 CD.A=0 / GBPA-style RAZ/WI): the
   * piece completes successfully, reads return zeros, writes are dropped.
   */
  discard: boolean;
  /**
   * Virtual ns the translation took beyond an IOTLB hit (DESIGN.md §3): the
   * remapper adds its table fetches and page-walk reads here, as its options
   * price them (e.g. SMMUv3/VT-d `walkReadNs`, `tableFetchNs`); a hit adds
   * nothing. The root complex zeroes it before asking and adds it to the
   * transaction's `latencyNs`.
   */
  latencyNs: number;
}

export interface DmaRemapper {
  /** Fill `out`; return false (with out.status/out.fault) when the access must abort. */
  translate(txn: DmaTransaction, addr: number, out: TranslationAnswer): boolean;
}

export function newTranslationAnswer(): TranslationAnswer {
  return { pa: 0, length: 0, status: 'SC', fault: '', discard: false, latencyNs: 0 };
}
