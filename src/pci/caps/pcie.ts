import type { CapabilityList } from '../capability-list.ts';
import type { ConfigSpace } from '../config-space.ts';
import { fieldGet } from '../../hw/layout.ts';
import {
  PCIE,
  PCIE_REGS,
  PCIE_TYPE,
  PCIE_DEVCTL,
  PCIE_DEVSTA,
  PCIE_LNKCTL,
  PCIE_LNKSTA,
  PCIE_DEVCAP2,
  PCIE_DEVCTL2,
} from './pcie-regs.ts';

/** Register layout of the capability (shared with drivers and tests). */
export * from './pcie-regs.ts';

export type PciePortType = 'endpoint' | 'root-port' | 'upstream' | 'downstream' | 'rc-endpoint' | 'pci-bridge';

const TYPE_CODE: Record<PciePortType, number> = {
  endpoint: PCIE_TYPE.ENDPOINT,
  'root-port': PCIE_TYPE.ROOT_PORT,
  upstream: PCIE_TYPE.UPSTREAM,
  downstream: PCIE_TYPE.DOWNSTREAM,
  'rc-endpoint': PCIE_TYPE.RC_ENDPOINT,
  'pci-bridge': PCIE_TYPE.PCI_BRIDGE,
};

/** Reset value of Device Control: Relaxed Ordering and No Snoop on, 128 B payload, 512 B read requests. */
const DEVCTL_DEFAULT = PCIE_REGS.pack('DEVCTL', { RELAX_EN: 1, NOSNOOP_EN: 1, MRRS: 2 });
const DEVCTL_MPS = PCIE_REGS.field('DEVCTL', 'MPS');
const DEVCTL_MRRS = PCIE_REGS.field('DEVCTL', 'MRRS');
const DEVCTL2_COMP_TIMEOUT = PCIE_REGS.field('DEVCTL2', 'COMP_TIMEOUT');
const LNKSTA_CLS = PCIE_REGS.field('LNKSTA', 'CLS');
const LNKSTA_NLW = PCIE_REGS.field('LNKSTA', 'NLW');
/** The capability's version: 2 (PCIe Base 7.5.3.2). */
const PCIE_CAP_VERSION = 2;
/** The error bits of Device Status: its RW1C fields. */
const DEVSTA_ERRORS = PCIE_REGS.w1cMask('DEVSTA');

export type PcieErrorKind = 'correctable' | 'nonfatal' | 'fatal' | 'unsupported-request';
const ERROR_BIT: Record<PcieErrorKind, number> = {
  correctable: PCIE_DEVSTA.CED,
  nonfatal: PCIE_DEVSTA.NFED,
  fatal: PCIE_DEVSTA.FED,
  'unsupported-request': PCIE_DEVSTA.URD,
};

export interface PcieOptions {
  /** Device/Port type: 'rc-endpoint' is a Root Complex Integrated Endpoint. */
  type: PciePortType;
  /** Max_Payload_Size Supported in bytes, 128 to 4096 (default 256). */
  maxPayload?: number;
  /** Function Level Reset capable (default: true for endpoints; ports cannot). */
  flr?: boolean;
  /** 8-bit Tag field supported (default true). */
  extTag?: boolean;
  /** Link speed as the LNKCAP2 vector index (1 = 2.5 GT/s ... 6 = 64 GT/s) and width. */
  link?: { speed?: number; width?: number; portNumber?: number };
  /** Completion Timeout Ranges Supported, a 4-bit mask (default 0xf: ranges A-D). */
  completionTimeoutRanges?: number;
  completionTimeoutDisable?: boolean;
  /** ARI Forwarding Supported (root and downstream ports only). */
  ariForwarding?: boolean;
  ltr?: boolean;
  /** Interrupt Message Number for this capability's own events. */
  interruptMessageNumber?: number;
  /** Software wrote 1 to Initiate Function Level Reset (the bit itself reads 0). */
  onFlr?: () => void;
  /** Software wrote 1 to Retrain Link (ports). */
  onLinkRetrain?: () => void;
}

export class PcieCapability {
  readonly offset: number;
  readonly portType: PciePortType;
  /** Device/Port Type field encoding (PCIE_TYPE). */
  readonly typeCode: number;
  readonly flrCapable: boolean;
  /** Max_Payload_Size Supported, in bytes. */
  readonly maxPayloadSupported: number;
  private readonly cfg: ConfigSpace;
  private readonly opts: PcieOptions;
  private readonly isPort: boolean;
  private readonly hasLink: boolean;
  private readonly lbn: boolean;

  constructor(cfg: ConfigSpace, list: CapabilityList, options: PcieOptions) {
    const type = TYPE_CODE[options.type];
    if (type === undefined) throw new RangeError(`unknown PCIe port type ${String(options.type)}`);
    const mps = options.maxPayload ?? 256;
    const mpsCode = Math.log2(mps / 128);
    if (!Number.isInteger(mpsCode) || mpsCode < 0 || mpsCode > 5) throw new RangeError(`bad Max_Payload_Size ${mps}`);
    this.isPort = options.type === 'root-port' || options.type === 'downstream';
    const endpoint = options.type === 'endpoint' || options.type === 'rc-endpoint';
    if (options.flr === true && !endpoint) throw new RangeError('only endpoints can be FLR capable');
    if (options.ariForwarding === true && !this.isPort) throw new RangeError('ARI forwarding is a downstream port feature');
    this.cfg = cfg;
    this.opts = options;
    this.portType = options.type;
    this.typeCode = type;
    this.flrCapable = options.flr ?? endpoint;
    this.maxPayloadSupported = mps;
    // Root Complex integrated endpoints have no link: their link registers are reserved.
    this.hasLink = options.type !== 'rc-endpoint';
    this.lbn = this.isPort;
    this.offset = list.addStd(PCIE.CAP_ID, PCIE.SIZEOF_V2);
    this.layout(mpsCode);
    this.reset();
    const b = this.offset;
    cfg.onWrite(b + PCIE.DEVCTL, 2, () => this.devctlWritten());
    cfg.onWrite(b + PCIE.LNKCTL, 2, () => this.lnkctlWritten());
  }

  private layout(mpsCode: number): void {
    const { cfg, opts } = this;
    const b = this.offset;
    const irq = opts.interruptMessageNumber ?? 0;
    cfg.set16(b + PCIE.FLAGS, PCIE_REGS.pack('FLAGS', { VERSION: PCIE_CAP_VERSION, TYPE: this.typeCode, IRQ: irq }));
    const extTag = opts.extTag ?? true;
    cfg.set32(
      b + PCIE.DEVCAP,
      PCIE_REGS.pack('DEVCAP', { MPS: mpsCode, EXT_TAG: extTag ? 1 : 0, RBER: 1, FLR: this.flrCapable ? 1 : 0 }),
    );
    const devctlWritable =
      PCIE_DEVCTL.CERE | PCIE_DEVCTL.NFERE | PCIE_DEVCTL.FERE | PCIE_DEVCTL.URRE | PCIE_DEVCTL.RELAX_EN |
      PCIE_DEVCTL.MPS | PCIE_DEVCTL.NOSNOOP_EN | PCIE_DEVCTL.MRRS;
    // Initiate FLR is writable so the hook sees the 1; the hook clears it at once.
    cfg.setWritable(
      b + PCIE.DEVCTL,
      2,
      devctlWritable | (extTag ? PCIE_DEVCTL.EXT_TAG : 0) | (this.flrCapable ? PCIE_DEVCTL.FLR : 0),
    );
    cfg.setW1C(b + PCIE.DEVSTA, 2, DEVSTA_ERRORS);

    if (this.hasLink) {
      const speed = opts.link?.speed ?? 1;
      const width = opts.link?.width ?? 1;
      if (!Number.isInteger(speed) || speed < 1 || speed > 6) throw new RangeError(`bad link speed ${speed}`);
      if (![1, 2, 4, 8, 12, 16, 32].includes(width)) throw new RangeError(`bad link width ${width}`);
      const port = this.isPort ? 1 : 0;
      cfg.set32(
        b + PCIE.LNKCAP,
        PCIE_REGS.pack('LNKCAP', { SLS: speed, MLW: width, DLLLARC: port, LBNC: port, PN: opts.link?.portNumber ?? 0 }),
      );
      const portBits = this.isPort ? PCIE_LNKCTL.LD | PCIE_LNKCTL.RL | PCIE_LNKCTL.LBMIE | PCIE_LNKCTL.LABIE : 0;
      // RCB is set by the root complex (read-only in root ports, reserved in downstream ports).
      const rcb = this.isPort ? 0 : PCIE_LNKCTL.RCB;
      cfg.setWritable(b + PCIE.LNKCTL, 2, PCIE_LNKCTL.ASPMC | PCIE_LNKCTL.CCC | PCIE_LNKCTL.ES | rcb | portBits);
      cfg.set16(b + PCIE.LNKSTA, PCIE_REGS.pack('LNKSTA', { CLS: speed, NLW: width, DLLLA: port }));
      if (this.lbn) cfg.setW1C(b + PCIE.LNKSTA, 2, PCIE_REGS.w1cMask('LNKSTA'));
      // Every speed up to the link's (bit n-1 of the vector: speed n).
      cfg.set32(b + PCIE.LNKCAP2, PCIE_REGS.pack('LNKCAP2', { SLS_VECTOR: 2 ** speed - 1 }));
      cfg.set16(b + PCIE.LNKCTL2, PCIE_REGS.pack('LNKCTL2', { TLS: speed }));
      cfg.setWritable(b + PCIE.LNKCTL2, 2, PCIE_REGS.writableMask('LNKCTL2'));
    }
    if (opts.type === 'root-port') {
      cfg.setWritable(b + PCIE.RTCTL, 2, PCIE_REGS.writableMask('RTCTL'));
      cfg.setW1C(b + PCIE.RTSTA, 4, PCIE_REGS.w1cMask('RTSTA'));
    }

    const ranges = (opts.completionTimeoutRanges ?? 0xf) & PCIE_DEVCAP2.COMP_TMOUT_RANGES;
    const ctoDisable = opts.completionTimeoutDisable ?? true;
    cfg.set32(
      b + PCIE.DEVCAP2,
      PCIE_REGS.pack('DEVCAP2', { COMP_TMOUT_RANGES: ranges, COMP_TMOUT_DIS: ctoDisable ? 1 : 0, ARI: opts.ariForwarding ? 1 : 0, LTR: opts.ltr ? 1 : 0 }),
    );
    cfg.setWritable(
      b + PCIE.DEVCTL2,
      2,
      (ranges !== 0 ? PCIE_DEVCTL2.COMP_TIMEOUT : 0) |
        (ctoDisable ? PCIE_DEVCTL2.COMP_TMOUT_DIS : 0) |
        (opts.ariForwarding ? PCIE_DEVCTL2.ARI : 0) |
        (opts.ltr ? PCIE_DEVCTL2.LTR_EN : 0),
    );
  }

  /** Device control and status back to defaults (what an FLR resets; link state is kept). */
  reset(): void {
    const b = this.offset;
    this.cfg.set16(b + PCIE.DEVCTL, DEVCTL_DEFAULT);
    this.cfg.set16(b + PCIE.DEVSTA, this.cfg.get16(b + PCIE.DEVSTA) & PCIE_DEVSTA.TRPND);
    this.cfg.set16(b + PCIE.DEVCTL2, 0);
  }

  private reg16(r: number): number {
    return this.cfg.get16(this.offset + r);
  }

  get devctl(): number {
    return this.reg16(PCIE.DEVCTL);
  }

  /** Max_Payload_Size in effect, bytes (a value above what is supported is capped). */
  get maxPayloadSize(): number {
    return Math.min(128 << fieldGet(DEVCTL_MPS, this.devctl), this.maxPayloadSupported);
  }

  /** Max_Read_Request_Size, bytes (encodings 6 and 7 are reserved; read as 4096). */
  get maxReadRequestSize(): number {
    return 128 << Math.min(fieldGet(DEVCTL_MRRS, this.devctl), 5);
  }

  get relaxedOrdering(): boolean {
    return (this.devctl & PCIE_DEVCTL.RELAX_EN) !== 0;
  }

  get noSnoop(): boolean {
    return (this.devctl & PCIE_DEVCTL.NOSNOOP_EN) !== 0;
  }

  get extTagEnabled(): boolean {
    return (this.devctl & PCIE_DEVCTL.EXT_TAG) !== 0;
  }

  /** Whether Device Control enables reporting of errors of this kind. */
  reportingEnabled(kind: PcieErrorKind): boolean {
    return (this.devctl & ERROR_BIT[kind]) !== 0; // the enable bits line up with the status bits
  }

  /** Completion Timeout Value encoding (PCIe Base 7.5.3.16; 0 = default 50 us - 50 ms). */
  get completionTimeoutValue(): number {
    return fieldGet(DEVCTL2_COMP_TIMEOUT, this.reg16(PCIE.DEVCTL2));
  }

  get completionTimeoutDisabled(): boolean {
    return (this.reg16(PCIE.DEVCTL2) & PCIE_DEVCTL2.COMP_TMOUT_DIS) !== 0;
  }

  get ariForwardingEnabled(): boolean {
    return (this.reg16(PCIE.DEVCTL2) & PCIE_DEVCTL2.ARI) !== 0;
  }

  get linkSpeed(): number {
    return fieldGet(LNKSTA_CLS, this.reg16(PCIE.LNKSTA));
  }

  get linkWidth(): number {
    return fieldGet(LNKSTA_NLW, this.reg16(PCIE.LNKSTA));
  }

  get linkDisabled(): boolean {
    return (this.reg16(PCIE.LNKCTL) & PCIE_LNKCTL.LD) !== 0;
  }

  /** The device detected an error: set its Device Status bit (software clears it with a 1). */
  reportError(kind: PcieErrorKind): void {
    this.cfg.setBits16(this.offset + PCIE.DEVSTA, ERROR_BIT[kind], true);
  }

  /** The device has (or no longer has) non-posted requests awaiting completion. */
  setTransactionsPending(pending: boolean): void {
    this.cfg.setBits16(this.offset + PCIE.DEVSTA, PCIE_DEVSTA.TRPND, pending);
  }

  private devctlWritten(): void {
    if ((this.devctl & PCIE_DEVCTL.FLR) === 0) return;
    this.cfg.setBits16(this.offset + PCIE.DEVCTL, PCIE_DEVCTL.FLR, false);
    this.opts.onFlr?.();
  }

  private lnkctlWritten(): void {
    const reg = this.offset + PCIE.LNKCTL;
    if ((this.cfg.get16(reg) & PCIE_LNKCTL.RL) === 0) return;
    // Retrain Link always reads 0; retraining completes at once and, as 7.5.3.8 asks, sets LBMS.
    this.cfg.setBits16(reg, PCIE_LNKCTL.RL, false);
    if (this.lbn) this.cfg.setBits16(this.offset + PCIE.LNKSTA, PCIE_LNKSTA.LBMS, true);
    this.opts.onLinkRetrain?.();
  }
}
