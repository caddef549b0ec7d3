import { IOMMU_MMIO, IOMMU_WRITE } from '../iommu-core/io-pgtable.ts';
import type { IommuDomain } from '../iommu-core/domain.ts';
import { Attachment } from '../lib/attachment.ts';

/**
 * Software-managed MSI windows (iommu_get_msi_cookie / iommu_dma_prepare_msi
 * of drivers/iommu/dma-iommu.c). When a group reports an IOMMU_RESV_SW_MSI
 * region, type1 gives its domain an MSI cookie at that base; when an MSI is
 * set up for a device in the domain, the interrupt controller's doorbell page
 * is mapped at the next free page of the window and the device is programmed
 * with that IOVA. Without a cookie (hardware MSI windows, as on x86, where
 * the IOMMU passes the interrupt range through) the device gets the doorbell's
 * physical address.
 *
 * This belongs to the IOMMU core's DMA layer; it lives here until the core
 * grows it.
 */
interface MsiCookie {
  base: number;
  length: number;
  granule: number;
  /** Doorbell page PA -> IOVA it is mapped at. */
  pages: Map<number, number>;
}

const cookies = new Attachment<IommuDomain, MsiCookie>('msi cookie');

/** iommu_get_msi_cookie(). */
export function setMsiCookie(domain: IommuDomain, base: number, length: number): void {
  if (cookies.has(domain)) return;
  cookies.set(domain, { base, length, granule: Math.max(domain.minPageSize, 4096), pages: new Map() });
}

export function hasMsiCookie(domain: IommuDomain): boolean {
  return cookies.has(domain);
}

/**
 * iommu_dma_prepare_msi() + compose: the address a device in `domain` must
 * write to reach `doorbell`, mapping the doorbell page on first use. Returns
 * the doorbell itself without a cookie, or a negative errno.
 */
export function msiAddressFor(domain: IommuDomain | undefined, doorbell: number): number {
  const c = domain === undefined ? undefined : cookies.get(domain);
  if (c === undefined || domain === undefined) return doorbell;
  const page = Math.floor(doorbell / c.granule) * c.granule;
  let iova = c.pages.get(page);
  if (iova === undefined) {
    iova = c.base + c.pages.size * c.granule;
    if (iova + c.granule > c.base + c.length) return -28;
    const r = domain.map(iova, page, c.granule, IOMMU_WRITE | IOMMU_MMIO);
    if (r < 0) return r;
    c.pages.set(page, iova);
  }
  return iova + (doorbell - page);
}
