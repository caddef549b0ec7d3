/**
 * The PCIe Address Translation Services and Page Request Interface protocol
 * between an endpoint and the translation agent (the IOMMU) behind the root
 * complex (PCIe Base 6.0 §10.2–10.4). Upstream: Translation Requests with
 * their Completions, Page Request Messages, Invalidation Completion
 * Messages. Downstream: Invalidation Request Messages and PRG Response
 * Messages. The root complex carries each one between the two sides.
 */

/** A Translation Request (§10.2.2): an untranslated range the device wants translated. */
export interface AtsTranslationRequest {
  requesterId: number;
  /** PASID of the TLP prefix, or -1. */
  pasid: number;
  privileged: boolean;
  exec: boolean;
  addr: number;
  /** Bytes the device asks about (a multiple of 4 KiB); the answer may cover less or more. */
  length: number;
  /** No Write hint (NW): the device only intends to read. */
  noWrite: boolean;
}

/**
 * One Translation Completion entry (§10.2.3). R = W = 0 means the address
 * has no translation the device may use: it should send a page request (PRI)
 * or give up. U = 1: use untranslated requests for this range.
 */
export interface AtsTranslation {
  /** Translated (physical) address of the start of the range: size-aligned. */
  translatedAddr: number;
  /** Untranslated address the entry starts at: size-aligned. */
  untranslatedAddr: number;
  /** Power of two, >= 4096 (the S field encodes it). */
  size: number;
  read: boolean;
  write: boolean;
  exec: boolean;
  priv: boolean;
  /** Untranslated access only. */
  untranslatedOnly: boolean;
  /** Global mapping (valid for every PASID). */
  global: boolean;
}

export interface AtsTranslationCompletion {
  /** 'SC' with entries, 'UR' when ATS is not allowed for the function, 'CA' on an error. */
  status: 'SC' | 'UR' | 'CA';
  entries: AtsTranslation[];
  /**
   * Virtual ns the translation agent spent on the request beyond its IOTLB
   * (table fetches, page-walk reads; see TranslationAnswer.latencyNs). The
   * round trip on the link is the endpoint's own cost (e.g. the DMA engine's
   * `timing.atsLatencyNs`). Set on successful completions; absent means 0.
   */
  latencyNs?: number;
}

/** A Page Request Message (§10.4.1). */
export interface PageRequestMessage {
  requesterId: number;
  pasid: number;
  privileged: boolean;
  exec: boolean;
  /** Page address (4 KiB aligned). */
  addr: number;
  read: boolean;
  write: boolean;
  /** Last Request in PRG. */
  last: boolean;
  /** Page Request Group Index (9 bits). */
  prgIndex: number;
  /** A Stop Marker (§10.4.1.2): L=1, R=W=0; no response is expected. */
  stopMarker?: boolean;
}

/** PRG Response codes (§10.4.2.1). */
export type PrgResponseCode = 'success' | 'invalid' | 'failure';

/** A PRG Response Message (§10.4.2), downstream. */
export interface PrgResponse {
  /** -1 when the response carries no PASID. */
  pasid: number;
  prgIndex: number;
  code: PrgResponseCode;
  privileged: boolean;
  exec: boolean;
}

/** An Invalidation Request Message (§10.3.1), downstream. */
export interface AtsInvalidationRequest {
  /** Invalidation Tag (0–31) the completion must echo. */
  itag: number;
  /** -1 when it carries no PASID; with a PASID, only that address space's entries. */
  pasid: number;
  /** Global Invalidate: all PASIDs. */
  global: boolean;
  /** Untranslated address and size of the range (size a power of two >= 4096; 2^64 for "all"). */
  addr: number;
  size: number;
}

/** Implemented by an endpoint that receives ATS/PRI messages from the root complex. */
export interface AtsEndpoint {
  receiveAtsInvalidation(req: AtsInvalidationRequest): void;
  receivePrgResponse(resp: PrgResponse): void;
}

/** Implemented by a translation agent (IOMMU) that takes ATS/PRI traffic from endpoints. */
export interface AtsTranslationAgent {
  atsTranslate(req: AtsTranslationRequest): AtsTranslationCompletion;
  pageRequest(msg: PageRequestMessage): void;
  /** Invalidation Completion Message (§10.3.2): `itagVector` bit n set completes tag n. */
  atsInvalidationCompleted(requesterId: number, itagVector: number, completionCount: number): void;
}

export function isAtsEndpoint(x: unknown): x is AtsEndpoint {
  return typeof (x as AtsEndpoint | undefined)?.receiveAtsInvalidation === 'function';
}

export function isAtsTranslationAgent(x: unknown): x is AtsTranslationAgent {
  return typeof (x as AtsTranslationAgent | undefined)?.atsTranslate === 'function';
}
