/*
 * The C side of bench/cprog.ts: after the same setup, `calls` round trips
 * of one ioctl. "regioninfo N": VFIO_DEVICE_GET_REGION_INFO on the DMA
 * engine's iommufd cdev (a struct copied in and out, no state changed).
 * "mapunmap N": N IOMMU_IOAS_MAP + IOMMU_IOAS_UNMAP pairs of one 4 KiB page.
 * The benchmark times two runs with different N and takes the difference.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "regioninfo";
	long calls = argc > 2 ? atol(argv[2]) : 0;
	int dev = open("/dev/vfio/devices/vfio0", O_RDWR);
	int iommufd = open("/dev/iommu", O_RDWR);
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	if (dev < 0 || iommufd < 0 || ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind) || ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc))
		return 1;
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = alloc.out_ioas_id };
	if (ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at))
		return 1;
	if (!strcmp(what, "regioninfo")) {
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX };
		for (long i = 0; i < calls; i++)
			if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri))
				return 1;
		return 0;
	}
	uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	struct iommu_ioas_map m = { .size = sizeof(m), .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
				    .ioas_id = alloc.out_ioas_id, .user_va = (uintptr_t)page, .length = 4096, .iova = 0x100000000ull };
	struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = alloc.out_ioas_id, .iova = 0x100000000ull, .length = 4096 };
	for (long i = 0; i < calls; i++)
		if (ioctl(iommufd, IOMMU_IOAS_MAP, &m) || ioctl(iommufd, IOMMU_IOAS_UNMAP, &u))
			return 1;
	return 0;
}
