/*
 * The plain test device (no ATS, PRI or PASID) copying a buffer: the driver
 * programs source, destination and length through BAR0 with pwrite, starts
 * the copy, and sleeps in read() on the eventfd that MSI-X vector 0 signals
 * when the device is done; then it checks STATUS and the bytes. The buffers
 * are the process's own memory, mapped for the device at an IOVA.
 *
 *   ioemu cc -O2 -o test-device-copy.wasm examples/c/test-device-copy.c
 *   ioemu exec test-device-copy.wasm [type1|iommufd] [bdf]
 */
#include "vfio-common.h"
#include <ioemu/test-device.h>

#define IOVA 0x200000ull
#define LEN (3 * 4096 + 100)
#define AREA (8 * 4096)
#define DST (4 * 4096)

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "type1";
	const char *bdf = argc > 2 ? argv[2] : "0000:00:03.0";
	struct vdev v;
	if (strcmp(mode, "iommufd") == 0) {
		vdev_open_iommufd(&v, bdf);
		vdev_attach(&v, v.ioas);
	} else {
		vdev_open_type1(&v, bdf);
	}
	CHECK(vdev_rd32(&v, 0, TESTDEV_REG_ID) == TESTDEV_MAGIC, "%s is not the test device", bdf);

	uint8_t *mem = dma_alloc(AREA, 0);
	for (int i = 0; i < LEN; i++)
		mem[i] = (uint8_t)(i ^ 0x5a);
	CHECK(vdev_map(&v, mem, IOVA, AREA) == 0, "map");
	int irq;
	vdev_msix(&v, &irq, 1);
	vdev_enable(&v);

	vdev_wr64(&v, 0, TESTDEV_REG_SRC, IOVA);
	vdev_wr64(&v, 0, TESTDEV_REG_DST, IOVA + DST);
	vdev_wr32(&v, 0, TESTDEV_REG_LEN, LEN);
	vdev_wr32(&v, 0, TESTDEV_REG_IRQ_VECTOR, 0);
	vdev_wr32(&v, 0, TESTDEV_REG_CMD, TESTDEV_CMD_START);
	uint64_t n;
	CHECK(read(irq, &n, 8) == 8, "read eventfd");
	uint32_t status = vdev_rd32(&v, 0, TESTDEV_REG_STATUS);
	uint32_t error = vdev_rd32(&v, 0, TESTDEV_REG_ERROR);
	int same = memcmp(mem, mem + DST, LEN) == 0;
	printf("copy of %d bytes by the test device: STATUS 0x%x%s, ERROR %u, %" PRIu64 " interrupt(s), destination %s\n", LEN, status,
	       status & TESTDEV_STATUS_DONE ? " (DONE)" : "", error, n, same ? "verified" : "WRONG");
	CHECK(vdev_unmap(&v, IOVA, AREA) == 0, "unmap");
	vdev_close(&v);
	if (!(status & TESTDEV_STATUS_DONE) || !same) {
		printf("FAIL\n");
		return 1;
	}
	printf("PASS (%s)\n", mode);
	return 0;
}
