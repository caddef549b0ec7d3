/**
 * Fault queues (drivers/iommu/iommufd/fault.c): IOMMU_FAULT_QUEUE_ALLOC
 * makes a fault object and an fd. A HWPT allocated with
 * IOMMU_HWPT_FAULT_ID_VALID hands its I/O page-fault groups here; read()
 * returns whole groups as struct iommu_hwpt_pgfault records (one cookie per
 * group) and write() of struct iommu_hwpt_page_response answers them.
 * Groups still unanswered when the fd closes, the object goes or a device
 * detaches are answered Invalid.
 */
import { EINVAL, ESPIPE } from '../uapi/errno.ts';
import { IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID, type IopfHandler } from '../iommu-core/iopf.ts';
import type { PageRequest, PageResponseCode } from '../iommu-core/types.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import {
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMU_PGFAULT_PERM_EXEC,
  IOMMU_PGFAULT_PERM_PRIV,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
} from '../uapi/iommufd.ts';
import { encodeStruct, StructView } from '../uapi/struct.ts';
import { EventqFile } from './eventq-file.ts';
import { IommufdObject, type IommufdCtx } from './objects.ts';

interface FaultGroup {
  dev: PciFunction;
  devId: number;
  requests: readonly PageRequest[];
  respond: (code: PageResponseCode) => void;
  cookie: number;
}

export class FaultQueue extends IommufdObject {
  readonly type = 'fault';
  private readonly deliver: FaultGroup[] = [];
  private readonly response = new Map<number, FaultGroup>();
  fileOpen = false;

  constructor(readonly ctx: IommufdCtx) {
    super();
  }

  /** The domain's iopf handler: queue the group for read(). */
  handler(devId: (dev: PciFunction) => number): IopfHandler {
    return (dev, requests, respond) => {
      this.deliver.push({ dev, devId: devId(dev), requests, respond, cookie: 0 });
    };
  }

  get readable(): boolean {
    return this.deliver.length > 0;
  }

  get pending(): number {
    return this.deliver.length + this.response.size;
  }

  /**
   * iommufd_fault_fops_read(): whole groups, as many as fit; a count that
   * is not a multiple of the record is -ESPIPE, and one too small for the
   * first waiting group (0 included) -EINVAL. Each group read takes the
   * lowest free cookie from 1 (xa_alloc, XA_FLAGS_ALLOC1).
   */
  read(length: number): Uint8Array | number {
    const sz = iommu_hwpt_pgfault.size;
    if (length % sz !== 0) return -ESPIPE;
    const out: Uint8Array[] = [];
    let done = 0;
    while (this.deliver.length > 0) {
      const g = this.deliver[0]!;
      if (done >= length || g.requests.length * sz > length - done) {
        if (done === 0) return -EINVAL;
        break;
      }
      this.deliver.shift();
      g.cookie = this.allocCookie();
      this.response.set(g.cookie, g);
      for (const r of g.requests) {
        let perm = 0;
        if (r.read) perm |= IOMMU_PGFAULT_PERM_READ;
        if (r.write) perm |= IOMMU_PGFAULT_PERM_WRITE;
        if (r.exec) perm |= IOMMU_PGFAULT_PERM_EXEC;
        if (r.priv) perm |= IOMMU_PGFAULT_PERM_PRIV;
        // iommufd_compose_fault_message() copies prm.flags as the driver reported them.
        let flags = 0;
        if (r.pasid >= 0) flags |= IOMMU_PGFAULT_FLAGS_PASID_VALID;
        if (r.last) flags |= IOMMU_PGFAULT_FLAGS_LAST_PAGE;
        if (r.needsPasid) flags |= IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID;
        out.push(
          encodeStruct(iommu_hwpt_pgfault, {
            flags,
            dev_id: g.devId,
            pasid: r.pasid >= 0 ? r.pasid : 0,
            grpid: r.grpid,
            perm,
            addr: BigInt(r.addr),
            length: 0,
            cookie: g.cookie,
          }),
        );
        done += sz;
      }
    }
    const buf = new Uint8Array(done);
    let off = 0;
    for (const b of out) {
      buf.set(b, off);
      off += b.length;
    }
    return buf;
  }

  /** xa_alloc() on fault->response: the lowest free cookie from 1. */
  private allocCookie(): number {
    let c = 1;
    while (this.response.has(c)) c++;
    return c;
  }

  write(data: Uint8Array): number {
    const sz = iommu_hwpt_page_response.size;
    if (data.length % sz !== 0) return -ESPIPE;
    let done = 0;
    let rc = 0;
    while (done < data.length) {
      const v = new StructView(iommu_hwpt_page_response, data.subarray(done, done + sz));
      const code = v.num('code');
      if (code !== IOMMUFD_PAGE_RESP_SUCCESS && code !== IOMMUFD_PAGE_RESP_INVALID) {
        rc = -EINVAL;
        break;
      }
      const g = this.response.get(v.num('cookie'));
      if (g === undefined) {
        rc = -EINVAL;
        break;
      }
      this.response.delete(g.cookie);
      g.respond(code === IOMMUFD_PAGE_RESP_SUCCESS ? 'success' : 'invalid');
      done += sz;
    }
    return done === 0 ? rc : done;
  }

  /** Answer Invalid every group (of one device, or all) not answered yet. */
  autoRespond(dev?: PciFunction): void {
    for (let i = this.deliver.length - 1; i >= 0; i--) {
      const g = this.deliver[i]!;
      if (dev !== undefined && g.dev !== dev) continue;
      this.deliver.splice(i, 1);
      g.respond('invalid');
    }
    for (const [c, g] of [...this.response]) {
      if (dev !== undefined && g.dev !== dev) continue;
      this.response.delete(c);
      g.respond('invalid');
    }
  }

  /** Closing the fd answers Invalid every group still pending. */
  fileReleased(): void {
    this.autoRespond();
    this.fileOpen = false;
  }

  destroy(): void {
    this.autoRespond();
  }
}

/** The anon-inode file "[iommufd-pgfault]" of a fault queue: the common event queue file (eventq-file.ts). */
export class FaultFile extends EventqFile {
  constructor(readonly fault: FaultQueue) {
    super(fault);
    fault.fileOpen = true;
  }
}
