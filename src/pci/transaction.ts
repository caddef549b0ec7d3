/**
 * A DMA as it leaves a device (DESIGN.md §3): who issued it (requester ID,
 * optional PASID prefix with privileged/execute bits), what kind of address it
 * carries (PCIe AT field), where, how long, and which direction.
 */
export type AddressType = 'untranslated' | 'translation-request' | 'translated';

/** PCIe completion status: Successful Completion, Unsupported Request, Completer Abort. */
export type CompletionStatus = 'SC' | 'UR' | 'CA';

/** No PASID TLP prefix. */
export const NO_PASID = -1;

export interface DmaTransaction {
  requesterId: number;
  /** PASID of the TLP prefix, or NO_PASID. */
  pasid: number;
  privileged: boolean;
  exec: boolean;
  at: AddressType;
  addr: number;
  length: number;
  write: boolean;
  /**
   * Virtual ns the fabric charged this transaction so far (the IOMMU's table
   * fetches and page-walk reads on a miss; nothing on an IOTLB hit). The root
   * complex adds to it; a device that models timing reads it after the
   * transaction and charges it to the work that issued it. Devices that
   * reuse a transaction object reset it.
   */
  latencyNs?: number;
}

export interface DmaCompletion {
  status: CompletionStatus;
  /**
   * Why it failed: the IOMMU's fault or event name (e.g. 'F_TRANSLATION'),
   * 'BUS_MASTER_DISABLED', 'UNSUPPORTED_REQUEST' for an address nothing
   * decodes, 'COMPLETER_ABORT' for a target that refused. Empty on success.
   */
  fault: string;
}

export const COMPLETION_OK: DmaCompletion = Object.freeze({ status: 'SC', fault: '' }) as DmaCompletion;

export function failed(status: 'UR' | 'CA', fault: string): DmaCompletion {
  return { status, fault };
}

/** Attributes a caller gives a DMA (CONTRACT.md DmaAttrs). */
export interface DmaAttrs {
  pasid?: number;
  privileged?: boolean;
  exec?: boolean;
}

/** A failed DMA: `fault` names the IOMMU's fault or event (e.g. 'F_TRANSLATION'), or why the fabric refused it. */
export type DmaFailure = { ok: false; fault: string };
/** What dmaRead returns: the bytes read, or why not. */
export type DmaReadResult = { ok: true; data: Uint8Array } | DmaFailure;
/** What dmaWrite returns. */
export type DmaWriteResult = { ok: true } | DmaFailure;
/** CONTRACT.md's DmaResult: either of the above. */
export type DmaResult = { ok: true; data?: Uint8Array } | DmaFailure;
