/*
 * An iommufd page-fault handler in user space: the DMA engine is attached to
 * an IOPF-capable HWPT with a fault queue (IOMMU_FAULT_QUEUE_ALLOC,
 * IOMMU_HWPT_ALLOC with IOMMU_HWPT_FAULT_ID_VALID) and nothing is mapped up
 * front. A MEMMOVE then faults on every page it touches: the engine's page
 * requests (PRI) reach the queue, the handler reads the struct
 * iommu_hwpt_pgfault records, maps each page with IOMMU_IOAS_MAP and answers
 * each group with a struct iommu_hwpt_page_response; the engine retries and
 * the copy completes. poll() waits on the queue and on the completion
 * interrupt together (the machine runs while it waits).
 *
 * On virt-smmuv3 page requests reach the queue only with the posted SMMUv3
 * PRI series' driver (mainline Linux 7.3's arm-smmu-v3 services no PRI).
 *
 *   ioemu cc -O2 -o iommufd-fault-queue.wasm examples/c/iommufd-fault-queue.c
 *   ioemu exec iommufd-fault-queue.wasm [bdf]
 *   ioemu exec --machine virt-smmuv3 --param smmu-pri=posted-series iommufd-fault-queue.wasm
 */
#include "vfio-common.h"
#include <ioemu/dma-engine.h>

#define IOVA 0x40000000ull /* the device's view of the area below, mapped page by page on demand */
#define PAGE 4096
#define PAGES 5 /* 2 source pages, 2 destination pages, 1 for the completion record */
#define SRC 0
#define DST (2 * PAGE)
#define REC (4 * PAGE)
#define LEN (2 * PAGE)

int main(int argc, char **argv)
{
	const char *bdf = argc > 1 ? argv[1] : "0000:00:01.0";
	struct vdev v;
	vdev_open_iommufd(&v, bdf);

	struct iommu_fault_alloc fa = { .size = sizeof(fa) };
	CHECK(ioctl(v.iommufd, IOMMU_FAULT_QUEUE_ALLOC, &fa) == 0, "IOMMU_FAULT_QUEUE_ALLOC");
	struct iommu_hwpt_alloc ha = { .size = sizeof(ha), .flags = IOMMU_HWPT_FAULT_ID_VALID, .dev_id = v.devid, .pt_id = v.ioas,
				       .data_type = IOMMU_HWPT_DATA_NONE, .fault_id = fa.out_fault_id };
	CHECK(ioctl(v.iommufd, IOMMU_HWPT_ALLOC, &ha) == 0, "IOMMU_HWPT_ALLOC with fault queue %u", fa.out_fault_id);
	vdev_attach(&v, ha.out_hwpt_id);
	printf("attached to HWPT %u with fault queue %u (fd %u); nothing mapped\n", ha.out_hwpt_id, fa.out_fault_id, fa.out_fault_fd);

	uint8_t *mem = dma_alloc(PAGES * PAGE, 0);
	for (int i = 0; i < LEN; i++)
		mem[SRC + i] = (uint8_t)(i * 7 + 1);
	int irq;
	vdev_msix(&v, &irq, 1);
	vdev_enable(&v);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_REG_GENCTRL, DMAE_GENCTRL_ENABLE);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_VECTOR), 0);
	vdev_wr32(&v, DMAE_BAR_REGS, DMAE_WQ_REG(0, DMAE_WQ_CFG), DMAE_WQ_CFG_ENABLE);

	/* One MEMMOVE through the portal of WQ 0, in IOVA space. */
	struct dmae_desc d = { { 0 } };
	DMAE_SET(d.w, DMAE_DESC_OPCODE, DMAE_OP_MEMMOVE);
	DMAE_SET(d.w, DMAE_DESC_RCR, 1);
	DMAE_SET(d.w, DMAE_DESC_RCI, 1);
	DMAE_SET(d.w, DMAE_DESC_COMPL_LO, (uint32_t)(IOVA + REC));
	DMAE_SET(d.w, DMAE_DESC_SRC_LO, (uint32_t)(IOVA + SRC));
	DMAE_SET(d.w, DMAE_DESC_DST_LO, (uint32_t)(IOVA + DST));
	DMAE_SET(d.w, DMAE_DESC_LENGTH, LEN);
	CHECK(pwrite(v.device, &d, sizeof(d), v.region[DMAE_BAR_PORTALS]) == sizeof(d), "portal write");
	CHECK(vdev_rd32(&v, DMAE_BAR_PORTALS, DMAE_PORTAL_STATUS) == DMAE_PORTAL_STATUS_ACCEPTED, "descriptor not accepted");

	int mapped[PAGES] = { 0 };
	int faults = 0, groups = 0, done = 0;
	while (!done) {
		struct pollfd p[2] = { { fa.out_fault_fd, POLLIN, 0 }, { irq, POLLIN, 0 } };
		CHECK(poll(p, 2, 1000) > 0, "poll: neither a fault nor the completion within 1 s");
		if (p[0].revents & POLLIN) {
			struct iommu_hwpt_pgfault rec[8];
			ssize_t n = read(fa.out_fault_fd, rec, sizeof(rec));
			CHECK(n > 0 && n % sizeof(rec[0]) == 0, "read fault queue");
			for (unsigned i = 0; i < n / sizeof(rec[0]); i++) {
				uint64_t page = rec[i].addr & ~(uint64_t)(PAGE - 1);
				unsigned idx = (unsigned)((page - IOVA) / PAGE);
				CHECK(page >= IOVA && idx < PAGES, "fault outside the area: 0x%" PRIx64, (uint64_t)rec[i].addr);
				faults++;
				printf("  fault: dev_id %u addr 0x%" PRIx64 " %s%s\n", rec[i].dev_id, (uint64_t)rec[i].addr,
				       rec[i].perm & IOMMU_PGFAULT_PERM_WRITE ? "write" : "read",
				       rec[i].flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE ? " (last of its group)" : "");
				if (!mapped[idx]) {
					CHECK(vdev_map(&v, mem + idx * PAGE, page, PAGE) == 0, "IOMMU_IOAS_MAP 0x%" PRIx64, page);
					mapped[idx] = 1;
				}
				/* One response per group: after its last request. */
				if (rec[i].flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) {
					struct iommu_hwpt_page_response resp = { .cookie = rec[i].cookie, .code = IOMMUFD_PAGE_RESP_SUCCESS };
					CHECK(write(fa.out_fault_fd, &resp, sizeof(resp)) == sizeof(resp), "page response");
					groups++;
				}
			}
		}
		if (p[1].revents & POLLIN) {
			uint64_t n;
			CHECK(read(irq, &n, 8) == 8, "read eventfd");
			done = 1;
		}
	}
	struct dmae_completion *cr = (struct dmae_completion *)(mem + REC);
	int success = DMAE_GET(cr->w, DMAE_CR_STATUS) == DMAE_STATUS_SUCCESS;
	int same = memcmp(mem + SRC, mem + DST, LEN) == 0;
	printf("MEMMOVE of %d bytes into unmapped IOVA space: %s after %d page faults in %d groups, destination %s\n", LEN,
	       success ? "SUCCESS" : "FAILED", faults, groups, same ? "verified" : "WRONG");
	close(fa.out_fault_fd);
	vdev_close(&v);
	if (!success || !same || faults == 0) {
		printf("FAIL\n");
		return 1;
	}
	printf("PASS\n");
	return 0;
}
