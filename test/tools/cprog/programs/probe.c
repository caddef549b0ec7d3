/*
 * probe.c: one C program, many small behaviours of a program run as an
 * ioemu process, chosen by argv[1] (test/tools/cprog/runner.test.ts).
 * Each prints what it saw; the test reads the lines.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/vfio.h>
#include <linux/pci_regs.h>
#include <ioemu/test-device.h>

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

#define OK(cond, what) do { if (!(cond)) { printf("FAILED %s: %s\n", what, strerrorname_np(errno)); return 1; } } while (0)

/* The test device at 00:03.0 through a type1 container; BAR0 and config offsets. */
static int container, device;
static uint64_t bar0, cfg;

static int open_testdev(void)
{
	char link[64];
	ssize_t n = readlink("/sys/bus/pci/devices/0000:00:03.0/iommu_group", link, sizeof(link) - 1);
	OK(n > 0, "readlink");
	link[n] = 0;
	char path[32];
	snprintf(path, sizeof(path), "/dev/vfio/%s", strrchr(link, '/') + 1);
	int group = open(path, O_RDWR);
	container = open("/dev/vfio/vfio", O_RDWR);
	OK(group >= 0 && container >= 0, "open");
	OK(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) == 0, "SET_CONTAINER");
	OK(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "SET_IOMMU");
	device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, "0000:00:03.0");
	OK(device >= 0, "GET_DEVICE_FD");
	struct vfio_region_info r0 = { .argsz = sizeof(r0), .index = VFIO_PCI_BAR0_REGION_INDEX };
	struct vfio_region_info rc = { .argsz = sizeof(rc), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	OK(ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &r0) == 0 && ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &rc) == 0, "REGION_INFO");
	bar0 = r0.offset;
	cfg = rc.offset;
	uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	OK(pwrite(device, &cmd, 2, cfg + PCI_COMMAND) == 2, "bus master");
	return 0;
}

static int map(void *va, uint64_t iova, uint64_t len)
{
	struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
					      .vaddr = (uintptr_t)va, .iova = iova, .size = len };
	return ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
}

/* The device copies len bytes from src to dst (IOVAs); we poll STATUS with a sleep, as a driver without interrupts does. */
static uint32_t device_copy(uint64_t src, uint64_t dst, uint32_t len)
{
	uint32_t start = TESTDEV_CMD_START, st;
	pwrite(device, &src, 8, bar0 + TESTDEV_REG_SRC);
	pwrite(device, &dst, 8, bar0 + TESTDEV_REG_DST);
	pwrite(device, &len, 4, bar0 + TESTDEV_REG_LEN);
	pwrite(device, &start, 4, bar0 + TESTDEV_REG_CMD);
	do {
		usleep(1);
		pread(device, &st, 4, bar0 + TESTDEV_REG_STATUS);
	} while (st & TESTDEV_STATUS_BUSY);
	return st;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	if (!strcmp(what, "args")) {
		printf("argc=%d argv0=%s argv1=%s env=%s pid=%d uid=%d pagesize=%ld/%d\n", argc, argv[0], argv[1], getenv("PROBE") ? getenv("PROBE") : "-",
		       getpid(), (int)getuid(), sysconf(_SC_PAGESIZE), getpagesize());
		return 42;
	}
	if (!strcmp(what, "errno")) {
		int fd = open("/dev/nothing", O_RDWR);
		printf("open: %d %s\n", fd, strerrorname_np(errno));
		printf("ioctl bad fd: %d %s\n", ioctl(77, VFIO_GET_API_VERSION), strerrorname_np(errno));
		int c = open("/dev/vfio/vfio", O_RDWR);
		printf("SET_IOMMU before a group: %d %s\n", ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), strerrorname_np(errno));
		printf("ioctl on stdout: %d %s\n", ioctl(1, VFIO_GET_API_VERSION), strerrorname_np(errno));
		int r = open("/sys/new-file", O_RDWR | O_CREAT, 0644);
		printf("create: %d %s\n", r, strerrorname_np(errno));
		return 0;
	}
	if (!strcmp(what, "sysfs")) {
		FILE *f = fopen("/sys/bus/pci/devices/0000:00:03.0/device", "r");
		char line[32] = "";
		if (f && fgets(line, sizeof(line), f))
			printf("device id: %s", line);
		if (f)
			fclose(f);
		DIR *d = opendir("/sys/bus/pci/devices");
		struct dirent *e;
		int n = 0;
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.')
				n++;
		if (d)
			closedir(d);
		printf("devices: %d\n", n);
		printf("access /dev/iommu: %d\n", access("/dev/iommu", F_OK));
		return 0;
	}
	if (!strcmp(what, "time")) {
		uint64_t t0 = now_ns();
		usleep(2500);
		uint64_t t1 = now_ns();
		int ev = eventfd(0, EFD_NONBLOCK);
		struct pollfd p = { ev, POLLIN, 0 };
		int r = poll(&p, 1, 7);
		uint64_t t2 = now_ns();
		printf("usleep(2500): %llu ns; poll of an idle eventfd for 7 ms: %d after %llu ns\n", (unsigned long long)(t1 - t0), r,
		       (unsigned long long)(t2 - t1));
		return 0;
	}
	if (!strcmp(what, "hang")) {
		int ev = eventfd(0, 0);
		uint64_t v;
		printf("reading an eventfd nobody signals\n");
		fflush(stdout);
		read(ev, &v, 8);
		printf("unreachable\n");
		return 0;
	}
	if (!strcmp(what, "abort"))
		abort();
	if (!strcmp(what, "dma")) {
		/* The device writes into the program's memory; the program reads it with no call in between. */
		if (open_testdev())
			return 1;
		uint8_t *mem = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(mem, 0x5a, 4096);
		OK(map(mem, 0x100000, 2 * 4096) == 0, "MAP_DMA");
		uint32_t st = device_copy(0x100000, 0x101000, 4096);
		int same = memcmp(mem, mem + 4096, 4096) == 0;
		printf("copy: status 0x%x, destination %s\n", st, same ? "equals the source" : "WRONG");
		/* Grow the memory (the WebAssembly buffer is replaced), then DMA into the same pages again. */
		void *big = malloc(48u << 20);
		memset(mem, 0x33, 4096);
		st = device_copy(0x100000, 0x101000, 4096);
		printf("after the memory grew: status 0x%x, destination %s (%s)\n", st, mem[4096] == 0x33 && mem[8191] == 0x33 ? "equals the source" : "WRONG",
		       big ? "grown" : "no growth");
		return 0;
	}
	if (!strcmp(what, "pinned-munmap")) {
		/* A page still mapped for DMA when the program unmaps it keeps its bytes for the device (as Linux's pin does). */
		if (open_testdev())
			return 1;
		uint8_t *old = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(old, 0xaa, 4096);
		OK(map(old, 0x100000, 4096) == 0, "MAP_DMA old");
		OK(munmap(old, 4096) == 0, "munmap");
		uint8_t *again = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		printf("the next mmap %s the same address, and reads %s\n", again == old ? "reuses" : "does not reuse", again[0] == 0 ? "zero" : "old bytes");
		memset(again, 0xbb, 4096);
		uint8_t *dst = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		OK(map(dst, 0x200000, 4096) == 0, "MAP_DMA dst");
		device_copy(0x100000, 0x200000, 4096);
		printf("the device read 0x%02x from the unmapped page (the program's new page holds 0x%02x)\n", dst[0], again[0]);
		/* And the kernel sees the unmapped range as unmapped: */
		OK(munmap(dst, 4096) == 0, "munmap dst");
		printf("MAP_DMA of an unmapped range: %d %s\n", map(dst, 0x300000, 4096), strerrorname_np(errno));
		return 0;
	}
	if (!strcmp(what, "huge")) {
		/* MAP_HUGETLB: a 2 MiB page, one run of physically contiguous memory behind the program's bytes. */
		if (open_testdev())
			return 1;
		uint8_t *h = mmap(NULL, 2u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		OK(h != MAP_FAILED, "mmap MAP_HUGETLB");
		printf("huge page at a 2 MiB boundary: %s\n", ((uintptr_t)h & ((2u << 20) - 1)) == 0 ? "yes" : "no");
		memset(h + 0x1ff000, 0x77, 4096);
		OK(map(h, 0x40000000, 2u << 20) == 0, "MAP_DMA of the huge page");
		uint32_t st = device_copy(0x40000000 + 0x1ff000, 0x40000000, 4096);
		printf("copy inside the huge page: status 0x%x, %s\n", st, h[0] == 0x77 && h[4095] == 0x77 ? "verified" : "WRONG");
		return 0;
	}
	if (!strcmp(what, "dirty")) {
		/* vfio_bitmap.data is a pointer: 4 bytes here, 8 in the kernel's struct. Its upper half holds garbage on purpose. */
		if (open_testdev())
			return 1;
		struct vfio_iommu_type1_dirty_bitmap start = { .argsz = sizeof(start), .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START };
		OK(ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &start) == 0, "DIRTY_PAGES START");
		uint8_t *mem = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		OK(map(mem, 0x100000, 4 * 4096) == 0, "MAP_DMA");
		device_copy(0x100000, 0x102000, 4096);
		uint64_t bits = 0;
		uint64_t buf[(sizeof(struct vfio_iommu_type1_dirty_bitmap) + sizeof(struct vfio_iommu_type1_dirty_bitmap_get)) / 8];
		memset(buf, 0xee, sizeof(buf));
		struct vfio_iommu_type1_dirty_bitmap *hdr = (struct vfio_iommu_type1_dirty_bitmap *)buf;
		struct vfio_iommu_type1_dirty_bitmap_get *get = (struct vfio_iommu_type1_dirty_bitmap_get *)hdr->data;
		hdr->argsz = sizeof(buf);
		hdr->flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
		get->iova = 0x100000;
		get->size = 4 * 4096;
		get->bitmap.pgsize = 4096;
		get->bitmap.size = sizeof(bits);
		get->bitmap.data = &bits;
		OK(ioctl(container, VFIO_IOMMU_DIRTY_PAGES, buf) == 0, "DIRTY_PAGES GET_BITMAP");
		printf("dirty bitmap: 0x%llx\n", (unsigned long long)bits);
		return 0;
	}
	printf("unknown probe \"%s\"\n", what);
	return 2;
}
