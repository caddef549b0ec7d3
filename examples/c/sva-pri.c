/*
 * Shared Virtual Addressing with PRI: the process binds the DMA engine to
 * its own address space (VFIO_IOMMU_BIND on its type1 container gives a
 * PASID), points work queue 0 at that PASID and hands the device plain
 * pointers: no MAP_DMA, no pinning. The destination and the completion
 * record were never touched, so they have no pages yet: every first write
 * makes the engine's ATS translation fail, the engine sends a page request
 * (PRI), the IOMMU queues it, the host's I/O page-fault handler faults the
 * page into the process and answers, and the engine retries. The process
 * then reads what the device wrote, through its own pointers.
 *
 * VFIO_IOMMU_BIND is the SVA bind proposal ioemu's kernel implements; Linux
 * 7.3's <linux/vfio.h> lacks it, so a native build gets it from here.
 *
 * On virt-smmuv3 this needs the posted SMMUv3 PRI series' driver: mainline
 * Linux 7.3's arm-smmu-v3 services no page request.
 *
 *   ioemu cc -O2 -o sva-pri.wasm examples/c/sva-pri.c
 *   ioemu exec sva-pri.wasm [pages] [bdf]
 *   ioemu exec --machine virt-smmuv3 --param smmu-pri=posted-series sva-pri.wasm [pages]
 */
#include "vfio-common.h"
#include <ioemu/dma-engine.h>

#ifndef VFIO_IOMMU_BIND
/* The SVA bind proposal ("vfio: Add support for Shared Virtual Addressing"): VFIO_BASE + 22/23. */
struct vfio_iommu_type1_bind {
	__u32 argsz;
	__u32 flags;
	__u8 data[];
};
#define VFIO_IOMMU_BIND_PROCESS (1 << 0)
struct vfio_iommu_type1_bind_process {
	__u32 flags;
	__u32 pasid;
	__s32 pid;
};
#define VFIO_IOMMU_BIND_PID (1 << 0)
#define VFIO_IOMMU_BIND _IO(VFIO_TYPE, VFIO_BASE + 22)
#define VFIO_IOMMU_UNBIND _IO(VFIO_TYPE, VFIO_BASE + 23)
#endif

#define PAGE 4096

int main(int argc, char **argv)
{
	int pages = argc > 1 ? atoi(argv[1]) : 8;
	const char *bdf = argc > 2 ? argv[2] : "0000:00:01.0";
	struct vdev v;
	vdev_open_type1(&v, bdf);

	/* The header, then the process to bind (this one: no VFIO_IOMMU_BIND_PID). */
	union {
		struct vfio_iommu_type1_bind hdr;
		uint8_t bytes[sizeof(struct vfio_iommu_type1_bind) + sizeof(struct vfio_iommu_type1_bind_process)];
	} bind = { .hdr = { .argsz = sizeof(bind), .flags = VFIO_IOMMU_BIND_PROCESS } };
	struct vfio_iommu_type1_bind_process *process = (struct vfio_iommu_type1_bind_process *)bind.hdr.data;
	CHECK(ioctl(v.container, VFIO_IOMMU_BIND, &bind) == 0, "VFIO_IOMMU_BIND");
	uint32_t pasid = process->pasid;
	printf("VFIO_IOMMU_BIND: the engine shares this process's address space as PASID %u\n", pasid);

	int irq;
	vdev_msix(&v, &irq, 1);
	vdev_enable(&v);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_REG_GENCTRL, DMAE_GENCTRL_ENABLE);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_VECTOR), 0);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_PASID), pasid | DMAE_WQ_PASID_PV);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_CFG), DMAE_WQ_CFG_ENABLE);
	CHECK(vdev_rd32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_STATUS)) & DMAE_WQ_STATUS_ENABLED, "WQ 0 did not enable (ERROR 0x%x)",
	      vdev_rd32(&v, DMAE_BAR_REGS, DMAE_REG_ERROR));

	/* The source is faulted in up front (MAP_POPULATE); the destination and the record are not. */
	size_t len = (size_t)pages * PAGE;
	uint8_t *src = dma_alloc(len, MAP_POPULATE);
	uint8_t *dst = dma_alloc(len, 0);
	uint8_t *rec = dma_alloc(PAGE, 0);
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 31 + 7);

	struct dmae_desc d = { { 0 } };
	DMAE_SET(d.w, DMAE_DESC_OPCODE, DMAE_OP_MEMMOVE);
	DMAE_SET(d.w, DMAE_DESC_RCR, 1);
	DMAE_SET(d.w, DMAE_DESC_RCI, 1);
	DMAE_SET(d.w, DMAE_DESC_COMPL_LO, (uint32_t)(uintptr_t)rec);
	DMAE_SET(d.w, DMAE_DESC_COMPL_HI, (uint32_t)((uint64_t)(uintptr_t)rec >> 32));
	DMAE_SET(d.w, DMAE_DESC_SRC_LO, (uint32_t)(uintptr_t)src);
	DMAE_SET(d.w, DMAE_DESC_SRC_HI, (uint32_t)((uint64_t)(uintptr_t)src >> 32));
	DMAE_SET(d.w, DMAE_DESC_DST_LO, (uint32_t)(uintptr_t)dst);
	DMAE_SET(d.w, DMAE_DESC_DST_HI, (uint32_t)((uint64_t)(uintptr_t)dst >> 32));
	DMAE_SET(d.w, DMAE_DESC_LENGTH, (uint32_t)len);
	CHECK(pwrite(v.device, &d, sizeof(d), v.region[DMAE_BAR_PORTALS]) == sizeof(d), "portal write");
	CHECK(vdev_rd32(&v, DMAE_BAR_PORTALS, DMAE_PORTAL_STATUS) == DMAE_PORTAL_STATUS_ACCEPTED, "descriptor not accepted");

	uint64_t n;
	CHECK(read(irq, &n, 8) == 8, "read eventfd (the completion interrupt)");
	struct dmae_completion *cr = (struct dmae_completion *)rec;
	int success = DMAE_GET(cr->w, DMAE_CR_STATUS) == DMAE_STATUS_SUCCESS;
	int same = memcmp(src, dst, len) == 0;
	printf("MEMMOVE of %d pages between process pointers (PASID %u): %s, destination %s\n", pages, pasid,
	       success ? "SUCCESS" : "FAILED", same ? "verified" : "WRONG");

	CHECK(ioctl(v.container, VFIO_IOMMU_UNBIND, &bind) == 0, "VFIO_IOMMU_UNBIND");
	vdev_close(&v);
	if (!success || !same) {
		printf("FAIL\n");
		return 1;
	}
	printf("PASS\n");
	return 0;
}
