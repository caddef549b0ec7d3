/*
 * A user-space driver for ioemu's DMA engine, as DPDK/SPDK drivers are
 * written: the process owns the device through VFIO, either a type1
 * container or the iommufd cdev, and reaches it only through the device fd.
 *  - registers: pread/pwrite at the offsets VFIO_DEVICE_GET_REGION_INFO gave;
 *  - DMA addresses are IOVAs: the driver's buffers, descriptor ring and
 *    completion records live in its own memory, mapped for the device;
 *  - completions interrupt through MSI-X vector 0 into an eventfd, read
 *    blocking (the emulated machine runs while the read waits).
 *
 *   ioemu cc -O2 -o dma-engine-vfio.wasm examples/c/dma-engine-vfio.c
 *   ioemu exec dma-engine-vfio.wasm [type1|iommufd] [bdf]
 */
#include "vfio-common.h"
#include <ioemu/dma-engine.h>

#define IOVA 0x1000000000ull /* where the driver maps its memory for the device */
#define AREA (64 * 1024)
#define SRC 0
#define DST (16 * 1024)
#define RING (48 * 1024) /* 8 descriptor slots */
#define RECORDS (56 * 1024) /* one 32-byte completion record per descriptor */
#define SLOTS 8
#define CHUNK 1024

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "type1";
	const char *bdf = argc > 2 ? argv[2] : "0000:00:02.0";
	int descriptors = 4;
	struct vdev v;

	if (strcmp(mode, "iommufd") == 0) {
		vdev_open_iommufd(&v, bdf);
		vdev_attach(&v, v.ioas);
	} else {
		vdev_open_type1(&v, bdf);
	}
	CHECK(vdev_rd32(&v, DMAE_BAR_REGS, DMAE_REG_ID) == DMAE_MAGIC, "%s is not the DMA engine", bdf);

	uint8_t *mem = dma_alloc(AREA, 0);
	CHECK(vdev_map(&v, mem, IOVA, AREA) == 0, "map %d KiB at IOVA 0x%llx", AREA / 1024, IOVA);
	int irq;
	vdev_msix(&v, &irq, 1);
	vdev_enable(&v);
	printf("64 KiB mapped at IOVA 0x%llx, MSI-X vector 0 on eventfd %d, bus master on\n", IOVA, irq);

	/* The engine, then work queue 0 with a ring in IOVA space raising vector 0. */
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_REG_GENCTRL, DMAE_GENCTRL_ENABLE);
	vdev_wr64(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_RING_BASE), IOVA + RING);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_RING_SIZE), SLOTS);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_VECTOR), 0);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_PASID), 0);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_CFG), DMAE_WQ_CFG_ENABLE);
	CHECK(vdev_rd32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_STATUS)) & DMAE_WQ_STATUS_ENABLED, "WQ 0 did not enable (ERROR 0x%x)",
	      vdev_rd32(&v, DMAE_BAR_REGS, DMAE_REG_ERROR));

	for (int i = 0; i < descriptors * CHUNK; i++)
		mem[SRC + i] = (uint8_t)(i * 13 + 5);
	memset(mem + RECORDS, 0, SLOTS * DMAE_COMPLETION_BYTES);
	struct dmae_desc *ring = (struct dmae_desc *)(mem + RING);
	for (int i = 0; i < descriptors; i++) {
		struct dmae_desc d = { { 0 } };
		uint64_t src = IOVA + SRC + i * CHUNK, dst = IOVA + DST + i * CHUNK, rec = IOVA + RECORDS + i * DMAE_COMPLETION_BYTES;
		DMAE_SET(d.w, DMAE_DESC_OPCODE, DMAE_OP_MEMMOVE);
		DMAE_SET(d.w, DMAE_DESC_RCR, 1);
		DMAE_SET(d.w, DMAE_DESC_RCI, 1);
		DMAE_SET(d.w, DMAE_DESC_COMPL_LO, (uint32_t)rec);
		DMAE_SET(d.w, DMAE_DESC_COMPL_HI, (uint32_t)(rec >> 32));
		DMAE_SET(d.w, DMAE_DESC_SRC_LO, (uint32_t)src);
		DMAE_SET(d.w, DMAE_DESC_SRC_HI, (uint32_t)(src >> 32));
		DMAE_SET(d.w, DMAE_DESC_DST_LO, (uint32_t)dst);
		DMAE_SET(d.w, DMAE_DESC_DST_HI, (uint32_t)(dst >> 32));
		DMAE_SET(d.w, DMAE_DESC_LENGTH, CHUNK);
		ring[i] = d;
	}
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_TAIL), descriptors);

	/* One interrupt per descriptor: the eventfd counts them. */
	uint64_t interrupts = 0;
	while (interrupts < (uint64_t)descriptors) {
		uint64_t n;
		CHECK(read(irq, &n, 8) == 8, "read eventfd");
		interrupts += n;
	}
	int ok = 0;
	for (int i = 0; i < descriptors; i++) {
		struct dmae_completion *cr = (struct dmae_completion *)(mem + RECORDS + i * DMAE_COMPLETION_BYTES);
		ok += DMAE_GET(cr->w, DMAE_CR_STATUS) == DMAE_STATUS_SUCCESS;
	}
	int same = memcmp(mem + SRC, mem + DST, descriptors * CHUNK) == 0;
	printf("%d MEMMOVEs of %d bytes through an %d-slot ring: %d completion records SUCCESS, %" PRIu64 " interrupts, destination %s\n",
	       descriptors, CHUNK, SLOTS, ok, interrupts, same ? "verified" : "WRONG");

	CHECK(vdev_unmap(&v, IOVA, AREA) == 0, "unmap");
	vdev_close(&v);
	munmap(mem, AREA);
	if (ok != descriptors || !same) {
		printf("FAIL\n");
		return 1;
	}
	printf("PASS (%s)\n", mode);
	return 0;
}
