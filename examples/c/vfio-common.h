/*
 * vfio-common.h: the VFIO plumbing ioemu's C examples share, written as a
 * user-space driver writes it against Linux's uapi headers only (DPDK's and
 * QEMU's VFIO code follow the same steps). Every helper reports what failed
 * and exits 1, so each example reads as the sequence it performs.
 *
 * Builds with "ioemu cc" (for ioemu) and natively with gcc against Linux's
 * headers (plus "ioemu cc --headers" for <ioemu/...>).
 */
#ifndef VFIO_COMMON_H
#define VFIO_COMMON_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

static inline const char *errname(int e)
{
	const char *s = strerrorname_np(e);
	return s ? s : "E?";
}

/* Fail loudly: what was asked, and the errno the kernel answered. */
#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			int e_ = errno;                                        \
			fprintf(stderr, "FAILED: ");                           \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, " (errno %s)\n", errname(e_));         \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* One vfio-pci device, owned through a type1 container or an iommufd. */
struct vdev {
	const char *bdf;
	int container; /* type1: /dev/vfio/vfio; -1 with iommufd */
	int group;
	int iommufd; /* iommufd: /dev/iommu; -1 with type1 */
	int device;
	uint32_t devid, ioas;
	uint64_t region[VFIO_PCI_NUM_REGIONS]; /* file offset of each region */
};

static inline void vdev_regions(struct vdev *v)
{
	for (unsigned i = 0; i < VFIO_PCI_NUM_REGIONS; i++) {
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = i };
		if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &ri) == 0)
			v->region[i] = ri.offset;
	}
}

/* The legacy path: group from sysfs, container, type1v2 (QEMU's vfio/container.c order). */
static inline void vdev_open_type1(struct vdev *v, const char *bdf)
{
	char path[PATH_MAX], link[PATH_MAX];
	memset(v, 0, sizeof(*v));
	v->bdf = bdf;
	v->iommufd = -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	CHECK(n > 0, "readlink %s", path);
	link[n] = 0;
	int groupid = atoi(strrchr(link, '/') + 1);
	snprintf(path, sizeof(path), "/dev/vfio/%d", groupid);
	v->group = open(path, O_RDWR);
	CHECK(v->group >= 0, "open %s", path);
	struct vfio_group_status st = { .argsz = sizeof(st) };
	CHECK(ioctl(v->group, VFIO_GROUP_GET_STATUS, &st) == 0, "VFIO_GROUP_GET_STATUS");
	CHECK(st.flags & VFIO_GROUP_FLAGS_VIABLE, "group %d is not viable", groupid);
	v->container = open("/dev/vfio/vfio", O_RDWR);
	CHECK(v->container >= 0, "open /dev/vfio/vfio");
	CHECK(ioctl(v->container, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "VFIO_GET_API_VERSION");
	CHECK(ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0, "VFIO_CHECK_EXTENSION(TYPE1v2)");
	CHECK(ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) == 0, "VFIO_GROUP_SET_CONTAINER");
	CHECK(ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "VFIO_SET_IOMMU");
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	CHECK(v->device >= 0, "VFIO_GROUP_GET_DEVICE_FD(%s)", bdf);
	printf("%s: group %d, container fd %d, device fd %d (VFIO type1)\n", bdf, groupid, v->container, v->device);
	vdev_regions(v);
}

/* The cdev path: /dev/vfio/devices/vfioN from sysfs, bound to an iommufd, attached to a new IOAS. */
static inline void vdev_open_iommufd(struct vdev *v, const char *bdf)
{
	char path[PATH_MAX];
	memset(v, 0, sizeof(*v));
	v->bdf = bdf;
	v->container = -1;
	v->group = -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	DIR *d = opendir(path);
	CHECK(d != NULL, "opendir %s", path);
	struct dirent *e;
	char name[NAME_MAX + 1] = "";
	while ((e = readdir(d)))
		if (strncmp(e->d_name, "vfio", 4) == 0)
			snprintf(name, sizeof(name), "%s", e->d_name);
	closedir(d);
	CHECK(name[0], "no vfio cdev under %s", path);
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	v->device = open(path, O_RDWR);
	CHECK(v->device >= 0, "open %s", path);
	v->iommufd = open("/dev/iommu", O_RDWR);
	CHECK(v->iommufd >= 0, "open /dev/iommu");
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = v->iommufd };
	CHECK(ioctl(v->device, VFIO_DEVICE_BIND_IOMMUFD, &bind) == 0, "VFIO_DEVICE_BIND_IOMMUFD");
	v->devid = bind.out_devid;
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	CHECK(ioctl(v->iommufd, IOMMU_IOAS_ALLOC, &alloc) == 0, "IOMMU_IOAS_ALLOC");
	v->ioas = alloc.out_ioas_id;
	printf("%s: %s bound to iommufd (dev_id %u), IOAS %u\n", bdf, path, v->devid, v->ioas);
	vdev_regions(v);
}

/* Attach the cdev to a page table: the IOAS itself (an automatic domain) or a HWPT. */
static inline void vdev_attach(struct vdev *v, uint32_t pt_id)
{
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = pt_id };
	CHECK(ioctl(v->device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) == 0, "VFIO_DEVICE_ATTACH_IOMMUFD_PT(%u)", pt_id);
}

/* Make `len` bytes at `va` reachable by the device at `iova`, read and write. */
static inline int vdev_map(struct vdev *v, void *va, uint64_t iova, uint64_t len)
{
	if (v->container >= 0) {
		struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
						      .vaddr = (uintptr_t)va, .iova = iova, .size = len };
		return ioctl(v->container, VFIO_IOMMU_MAP_DMA, &m);
	}
	struct iommu_ioas_map m = { .size = sizeof(m),
				    .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
				    .ioas_id = v->ioas, .user_va = (uintptr_t)va, .length = len, .iova = iova };
	return ioctl(v->iommufd, IOMMU_IOAS_MAP, &m);
}

static inline int vdev_unmap(struct vdev *v, uint64_t iova, uint64_t len)
{
	if (v->container >= 0) {
		struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = iova, .size = len };
		return ioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &u);
	}
	struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = v->ioas, .iova = iova, .length = len };
	return ioctl(v->iommufd, IOMMU_IOAS_UNMAP, &u);
}

/* Registers through the region file offsets: WebAssembly cannot mmap a BAR, Linux allows both. */
static inline uint32_t vdev_rd32(struct vdev *v, unsigned bar, uint64_t off)
{
	uint32_t val = 0;
	CHECK(pread(v->device, &val, 4, v->region[bar] + off) == 4, "pread BAR%u+0x%" PRIx64, bar, off);
	return val;
}

static inline void vdev_wr32(struct vdev *v, unsigned bar, uint64_t off, uint32_t val)
{
	CHECK(pwrite(v->device, &val, 4, v->region[bar] + off) == 4, "pwrite BAR%u+0x%" PRIx64, bar, off);
}

static inline void vdev_wr64(struct vdev *v, unsigned bar, uint64_t off, uint64_t val)
{
	CHECK(pwrite(v->device, &val, 8, v->region[bar] + off) == 8, "pwrite BAR%u+0x%" PRIx64, bar, off);
}

/*
 * Memory decoding and Bus Master Enable through the config region: vfio-pci
 * leaves Bus Master off, and a device without it cannot DMA (DPDK's
 * pci_vfio_set_bus_master does the same).
 */
static inline void vdev_enable(struct vdev *v)
{
	uint64_t at = v->region[VFIO_PCI_CONFIG_REGION_INDEX] + PCI_COMMAND;
	uint16_t cmd = 0;
	CHECK(pread(v->device, &cmd, 2, at) == 2, "config read");
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	CHECK(pwrite(v->device, &cmd, 2, at) == 2, "config write");
}

/* MSI-X vector 0..n-1 signalled into eventfds (blocking: read waits for the interrupt). */
static inline void vdev_msix(struct vdev *v, int *fds, unsigned n)
{
	char buf[sizeof(struct vfio_irq_set) + 8 * sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	CHECK(n <= 8, "too many vectors");
	for (unsigned i = 0; i < n; i++) {
		fds[i] = eventfd(0, 0);
		CHECK(fds[i] >= 0, "eventfd");
	}
	set->argsz = sizeof(*set) + n * sizeof(int32_t);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	set->start = 0;
	set->count = n;
	memcpy(set->data, fds, n * sizeof(int32_t));
	CHECK(ioctl(v->device, VFIO_DEVICE_SET_IRQS, set) == 0, "VFIO_DEVICE_SET_IRQS(MSI-X)");
}

static inline void vdev_close(struct vdev *v)
{
	close(v->device);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	if (v->iommufd >= 0)
		close(v->iommufd);
}

/* Fresh anonymous memory, page aligned (what a driver hands the device). */
static inline void *dma_alloc(size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	CHECK(p != MAP_FAILED, "mmap %zu bytes", len);
	return p;
}

#endif
