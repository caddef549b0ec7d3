/* errno-sweep.c: every argument class the kernel checks, on edu at $EDU_BDF:
 *
 *   errno-sweep type1     VFIO_IOMMU_MAP_DMA / UNMAP_DMA on a type1 container,
 *                         the group and container ioctls around them
 *   errno-sweep dirty     type1 dirty tracking (VFIO_IOMMU_DIRTY_PAGES, UNMAP_DMA with
 *                         GET_DIRTY_BITMAP) and vaddr updates (MAP/UNMAP_DMA FLAG_VADDR)
 *   errno-sweep domain    the IOAS calls again once the device is attached (a domain:
 *                         pinning, page alignment, reserved ranges, the aperture), attach
 *                         refusals, HWPT replace
 *   errno-sweep iommufd   IOMMU_IOAS_MAP / UNMAP / COPY / IOVA_RANGES /
 *                         ALLOW_IOVAS, IOMMU_HWPT_ALLOC, IOMMU_GET_HW_INFO,
 *                         IOMMU_DESTROY, IOMMU_IOAS_ALLOC
 *   errno-sweep cdev      VFIO_DEVICE_BIND_IOMMUFD / ATTACH / DETACH_IOMMUFD_PT
 *                         on the device cdev, the group it blocks, and the
 *                         device ioctls' header checks
 *
 * One line per call: "E <mode> <case> -> <rc> [<errno name>] [fields]". All
 * u64 arguments are passed as u64 (never through a pointer), so a 32-bit
 * build asks the kernel the same questions as a 64-bit one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/vfio.h>
#include <linux/iommufd.h>

static const char *mode;
static const char *en(int e) { const char *s = strerrorname_np(e); return s ? s : "E?"; }
#define E(name, call, ...) do { errno = 0; long rc_ = (call); int e_ = errno; printf("E %s %s -> %ld%s%s", mode, name, rc_ < 0 ? -1L : rc_, rc_ < 0 ? " " : "", rc_ < 0 ? en(e_) : ""); __VA_OPT__(printf(__VA_ARGS__);) putchar('\n'); fflush(stdout); } while (0)

static const char *bdf, *group;
static uint8_t *mem;          /* 16 pages, read/write, populated */
static uint8_t *rom;          /* 2 pages, read-only */
static uint64_t hole;         /* a page nothing maps */
static uint8_t *half;         /* a page, then a page nothing maps */
#define VA(p) ((uint64_t)(uintptr_t)(p))

static void memory(void)
{
	/* 2 MiB aligned, so IOVAs the kernel picks (aligned to at most the user address's alignment) do not depend on where mmap put it */
	uint8_t *raw = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mem = (uint8_t *)(((uintptr_t)raw + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
	memset(mem, 1, 16 * 4096);
	rom = mmap(NULL, 2 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	void *h = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(h, 4096);
	hole = VA(h);
	half = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	munmap(half + 4096, 4096);
}

static int cdev_open(void)
{
	char p[256], cdev[300] = "";
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	DIR *d = opendir(p);
	struct dirent *e;
	while (d && (e = readdir(d))) if (!strncmp(e->d_name, "vfio", 4)) snprintf(cdev, sizeof(cdev), "/dev/vfio/devices/%s", e->d_name);
	if (d) closedir(d);
	return open(cdev, O_RDWR);
}
static int group_open(void)
{
	char p[64];
	snprintf(p, sizeof(p), "/dev/vfio/%s", group);
	return open(p, O_RDWR);
}

/* ======================= type1 ======================= */
static int c = -1;
static struct vfio_iommu_type1_dma_map m;
static struct vfio_iommu_type1_dma_unmap u;
static int M(uint32_t argsz, uint32_t flags, uint64_t va, uint64_t iova, uint64_t size)
{
	m = (struct vfio_iommu_type1_dma_map){ .argsz = argsz, .flags = flags, .vaddr = va, .iova = iova, .size = size };
	return ioctl(c, VFIO_IOMMU_MAP_DMA, &m);
}
static int U(uint32_t argsz, uint32_t flags, uint64_t iova, uint64_t size)
{
	u = (struct vfio_iommu_type1_dma_unmap){ .argsz = argsz, .flags = flags, .iova = iova, .size = size };
	return ioctl(c, VFIO_IOMMU_UNMAP_DMA, &u);
}

static void type1(void)
{
	const uint32_t RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, MS = sizeof(m), US = sizeof(u);
	c = open("/dev/vfio/vfio", O_RDWR);
	int g = group_open();
	E("map before SET_IOMMU", M(MS, RW, VA(mem), 0x100000, 0x1000));
	E("get_info before SET_IOMMU", ({ struct vfio_iommu_type1_info i = { .argsz = sizeof(i) }; ioctl(c, VFIO_IOMMU_GET_INFO, &i); }));
	E("check_extension 0", ioctl(c, VFIO_CHECK_EXTENSION, 0));
	E("check_extension TYPE1v2", ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU));
	E("check_extension UNMAP_ALL", ioctl(c, VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL));
	E("check_extension UPDATE_VADDR", ioctl(c, VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR));
	E("check_extension 99", ioctl(c, VFIO_CHECK_EXTENSION, 99));
	E("container unknown ioctl", ioctl(c, _IO(VFIO_TYPE, VFIO_BASE + 60)));
	struct vfio_group_status st = { .argsz = sizeof(st) };
	E("group.get_status", ioctl(g, VFIO_GROUP_GET_STATUS, &st), " flags=0x%x", st.flags);
	st.argsz = 4;
	E("group.get_status argsz 4", ioctl(g, VFIO_GROUP_GET_STATUS, &st));
	E("group.get_device_fd without container", ioctl(g, VFIO_GROUP_GET_DEVICE_FD, bdf));
	int bad = -1;
	E("group.set_container fd -1", ioctl(g, VFIO_GROUP_SET_CONTAINER, &bad));
	int efd = eventfd(0, 0);
	E("group.set_container an eventfd", ioctl(g, VFIO_GROUP_SET_CONTAINER, &efd));
	E("group.unset_container without one", ioctl(g, VFIO_GROUP_UNSET_CONTAINER));
	E("set_iommu before any group", ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	E("group.set_container", ioctl(g, VFIO_GROUP_SET_CONTAINER, &c));
	E("group.set_container again", ioctl(g, VFIO_GROUP_SET_CONTAINER, &c));
	E("group.get_device_fd before SET_IOMMU", ioctl(g, VFIO_GROUP_GET_DEVICE_FD, bdf));
	E("set_iommu 99", ioctl(c, VFIO_SET_IOMMU, 99));
	E("set_iommu NOIOMMU", ioctl(c, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU));
	E("set_iommu TYPE1v2", ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	E("set_iommu TYPE1v2 again", ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	E("group.get_device_fd bad name", ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:00:1f.7"));
	int dev;
	E("group.get_device_fd", (dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, bdf)) < 0 ? -1 : 0);
	E("group.get_device_fd twice", ({ int d2 = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, bdf); if (d2 >= 0) close(d2); d2 < 0 ? d2 : 0; }));
	E("group.unset_container with a device open", ioctl(g, VFIO_GROUP_UNSET_CONTAINER));
	struct { struct vfio_iommu_type1_info i; char caps[256]; } info = { .i = { .argsz = sizeof(struct vfio_iommu_type1_info) } };
	E("get_info argsz = header", ioctl(c, VFIO_IOMMU_GET_INFO, &info.i), " argsz=%u flags=0x%x cap_offset=%u", info.i.argsz, info.i.flags, info.i.cap_offset);
	info.i.argsz = 8;
	E("get_info argsz 8", ioctl(c, VFIO_IOMMU_GET_INFO, &info.i));

	/* MAP_DMA */
	E("map ok 0x400000 +0x4000", M(MS, RW, VA(mem), 0x400000, 0x4000));
	E("map argsz 8", M(8, RW, VA(mem + 0x4000), 0x500000, 0x1000));
	E("map argsz larger", M(MS + 64, RW, VA(mem + 0x4000), 0x500000, 0x1000));
	U(US, 0, 0x500000, 0x1000);
	E("map flags 0", M(MS, 0, VA(mem + 0x4000), 0x500000, 0x1000));
	E("map WRITE only", M(MS, VFIO_DMA_MAP_FLAG_WRITE, VA(mem + 0x4000), 0x500000, 0x1000));
	U(US, 0, 0x500000, 0x1000);
	E("map READ only", M(MS, VFIO_DMA_MAP_FLAG_READ, VA(mem + 0x4000), 0x500000, 0x1000));
	U(US, 0, 0x500000, 0x1000);
	E("map unknown flag bit 3", M(MS, RW | 8, VA(mem + 0x4000), 0x500000, 0x1000));
	E("map unknown flag bit 31", M(MS, RW | 0x80000000u, VA(mem + 0x4000), 0x500000, 0x1000));
	E("map VADDR flag, nothing to update", M(MS, VFIO_DMA_MAP_FLAG_VADDR, VA(mem + 0x4000), 0x500000, 0x1000));
	E("map VADDR|READ", M(MS, VFIO_DMA_MAP_FLAG_VADDR | VFIO_DMA_MAP_FLAG_READ, VA(mem), 0x400000, 0x4000));
	E("map size 0", M(MS, RW, VA(mem), 0x500000, 0));
	E("map size 0x800", M(MS, RW, VA(mem), 0x500000, 0x800));
	E("map size 0x1800", M(MS, RW, VA(mem), 0x500000, 0x1800));
	E("map iova +0x800", M(MS, RW, VA(mem), 0x500800, 0x1000));
	E("map vaddr +0x800", M(MS, RW, VA(mem) + 0x800, 0x500000, 0x1000));
	E("map iova+size wraps", M(MS, RW, VA(mem), 0xfffffffffffff000ull, 0x2000));
	E("map vaddr+size wraps", M(MS, RW, 0xfffffffffffff000ull, 0x500000, 0x2000));
	E("map iova ends at 2^64", M(MS, RW, VA(mem + 0x4000), 0xfffffffffffff000ull, 0x1000));
	E("map size 2^63", M(MS, RW, VA(mem), 0x500000, 1ull << 63));
	E("map iova 2^39 (past a 39-bit aperture)", M(MS, RW, VA(mem + 0x4000), 1ull << 39, 0x1000));
	U(US, 0, 1ull << 39, 0x1000);
	E("map iova 2^48", M(MS, RW, VA(mem + 0x4000), 1ull << 48, 0x1000));
	E("map iova 2^52", M(MS, RW, VA(mem + 0x4000), 1ull << 52, 0x1000));
	E("map iova 0xfee00000 (MSI window)", M(MS, RW, VA(mem + 0x4000), 0xfee00000ull, 0x1000));
	E("map range ending in the MSI window", M(MS, RW, VA(mem + 0x4000), 0xfedff000ull, 0x2000));
	E("map iova 0xfef00000 (after it)", M(MS, RW, VA(mem + 0x4000), 0xfef00000ull, 0x1000));
	U(US, 0, 0xfef00000ull, 0x1000);
	E("map overlap start", M(MS, RW, VA(mem + 0x4000), 0x3ff000, 0x2000));
	E("map overlap inside", M(MS, RW, VA(mem + 0x4000), 0x401000, 0x1000));
	E("map overlap end", M(MS, RW, VA(mem + 0x4000), 0x403000, 0x2000));
	E("map covering an existing one", M(MS, RW, VA(mem + 0x4000), 0x3ff000, 0x6000));
	E("map exact duplicate", M(MS, RW, VA(mem), 0x400000, 0x4000));
	E("map adjacent below", M(MS, RW, VA(mem + 0x4000), 0x3ff000, 0x1000));
	E("map adjacent above", M(MS, RW, VA(mem + 0x5000), 0x404000, 0x1000));
	E("map vaddr unmapped", M(MS, RW, hole, 0x600000, 0x1000));
	E("map vaddr NULL", M(MS, RW, 0, 0x600000, 0x1000));
	E("map vaddr read-only, WRITE asked", M(MS, RW, VA(rom), 0x600000, 0x1000));
	E("map vaddr read-only, READ only", M(MS, VFIO_DMA_MAP_FLAG_READ, VA(rom), 0x600000, 0x1000));
	E("map half mapped vaddr", M(MS, RW, VA(half), 0x700000, 0x2000));
	E("map same vaddr twice at other iova", M(MS, RW, VA(mem), 0x800000, 0x1000));

	/* UNMAP_DMA */
	E("unmap argsz 8", U(8, 0, 0x800000, 0x1000));
	E("unmap unknown flag", U(US, 0x80, 0x800000, 0x1000));
	E("unmap size 0", U(US, 0, 0x800000, 0));
	E("unmap iova +0x800", U(US, 0, 0x800800, 0x1000));
	E("unmap size 0x800", U(US, 0, 0x800000, 0x800));
	E("unmap nothing there", U(US, 0, 0x900000, 0x1000), " size=0x%llx", (unsigned long long)u.size);
	E("unmap bisect start", U(US, 0, 0x400000, 0x1000), " size=0x%llx", (unsigned long long)u.size);
	E("unmap bisect end", U(US, 0, 0x403000, 0x1000), " size=0x%llx", (unsigned long long)u.size);
	E("unmap overlapping start", U(US, 0, 0x3fe000, 0x3000), " size=0x%llx", (unsigned long long)u.size);
	E("unmap iova+size wraps", U(US, 0, 0xfffffffffffff000ull, 0x2000));
	E("unmap size 2^63", U(US, 0, 0x900000, 1ull << 63), " size=0x%llx", (unsigned long long)u.size);
	E("unmap ALL with iova", U(US, VFIO_DMA_UNMAP_FLAG_ALL, 0x400000, 0));
	E("unmap ALL with size", U(US, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0x1000));
	E("unmap ALL|GET_DIRTY_BITMAP", U(US, VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 0, 0));
	E("unmap GET_DIRTY_BITMAP, not tracking", U(US, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 0x800000, 0x1000));
	E("unmap VADDR", U(US, VFIO_DMA_UNMAP_FLAG_VADDR, 0x800000, 0x1000));
	E("map VADDR update after unmap VADDR", M(MS, VFIO_DMA_MAP_FLAG_VADDR, VA(mem + 0x8000), 0x800000, 0x1000));
	E("unmap two whole mappings", U(US, 0, 0x800000, 0x200000), " size=0x%llx", (unsigned long long)u.size);
	E("unmap ALL", U(US, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0), " size=0x%llx", (unsigned long long)u.size);
	E("unmap ALL again", U(US, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0), " size=0x%llx", (unsigned long long)u.size);
	struct vfio_iommu_type1_dirty_bitmap db = { .argsz = sizeof(db), .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START };
	E("dirty_pages START", ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &db));
	db.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
	E("dirty_pages START|STOP", ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &db));
	db.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
	E("dirty_pages STOP", ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &db));
	db.flags = 0;
	E("dirty_pages no flag", ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &db));
	if (dev >= 0) close(dev);
	E("group.unset_container", ioctl(g, VFIO_GROUP_UNSET_CONTAINER));
	E("map after the last group left", M(MS, RW, VA(mem), 0x400000, 0x1000));
	int g2;
	E("open the group a second time", (g2 = group_open()) < 0 ? -1 : 0);
	close(g);
	close(c);
}

/* ======================= type1 dirty tracking and vaddr updates ======================= */
static uint64_t bits[4];
static int dirty_get(uint32_t argsz, uint64_t iova, uint64_t size, uint64_t pgsize, uint64_t bsize, void *data)
{
	char buf[sizeof(struct vfio_iommu_type1_dirty_bitmap) + sizeof(struct vfio_iommu_type1_dirty_bitmap_get)];
	memset(buf, 0, sizeof(buf));
	struct vfio_iommu_type1_dirty_bitmap *d = (void *)buf;
	struct vfio_iommu_type1_dirty_bitmap_get *g = (void *)d->data;
	d->argsz = argsz;
	d->flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	g->iova = iova;
	g->size = size;
	g->bitmap.pgsize = pgsize;
	g->bitmap.size = bsize;
	g->bitmap.data = data;
	memset(bits, 0, sizeof(bits));
	return ioctl(c, VFIO_IOMMU_DIRTY_PAGES, d);
}
static int dirty_flags(uint32_t flags)
{
	struct vfio_iommu_type1_dirty_bitmap d = { .argsz = sizeof(d), .flags = flags };
	return ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &d);
}
static int unmap_bitmap(uint32_t argsz, uint64_t iova, uint64_t size, uint64_t pgsize, uint64_t bsize, void *data)
{
	char buf[sizeof(struct vfio_iommu_type1_dma_unmap) + sizeof(struct vfio_bitmap)];
	memset(buf, 0, sizeof(buf));
	struct vfio_iommu_type1_dma_unmap *um = (void *)buf;
	struct vfio_bitmap *b = (void *)um->data;
	um->argsz = argsz;
	um->flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	um->iova = iova;
	um->size = size;
	b->pgsize = pgsize;
	b->size = bsize;
	b->data = data;
	memset(bits, 0, sizeof(bits));
	int rc = ioctl(c, VFIO_IOMMU_UNMAP_DMA, um);
	u.size = um->size;
	return rc;
}

static void dirty(void)
{
	const uint32_t RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, MS = sizeof(m), US = sizeof(u);
	const uint32_t DS = sizeof(struct vfio_iommu_type1_dirty_bitmap) + sizeof(struct vfio_iommu_type1_dirty_bitmap_get);
	const uint32_t UBS = sizeof(struct vfio_iommu_type1_dma_unmap) + sizeof(struct vfio_bitmap);
	c = open("/dev/vfio/vfio", O_RDWR);
	int g = group_open();
	ioctl(g, VFIO_GROUP_SET_CONTAINER, &c);
	E("set_iommu TYPE1v2", ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	int dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, bdf);
	E("map 0x100000 +0x4000", M(MS, RW, VA(mem), 0x100000, 0x4000));
	E("map 0x200000 +0x2000", M(MS, RW, VA(mem + 0x4000), 0x200000, 0x2000));
	E("get bitmap before START", dirty_get(DS, 0x100000, 0x4000, 0x1000, 8, bits));
	E("dirty_pages argsz 8", ({ struct vfio_iommu_type1_dirty_bitmap d = { .argsz = 8, .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START }; ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &d); }));
	E("dirty_pages unknown flag", dirty_flags(1u << 5));
	E("dirty_pages START|GET_BITMAP", dirty_flags(VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP));
	E("START", dirty_flags(VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	E("START again", dirty_flags(VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	E("get bitmap", dirty_get(DS, 0x100000, 0x4000, 0x1000, 8, bits), " bits=0x%llx", (unsigned long long)bits[0]);
	E("get bitmap again", dirty_get(DS, 0x100000, 0x4000, 0x1000, 8, bits), " bits=0x%llx", (unsigned long long)bits[0]);
	E("get bitmap argsz without the range", dirty_get(sizeof(struct vfio_iommu_type1_dirty_bitmap), 0x100000, 0x4000, 0x1000, 8, bits));
	E("get bitmap pgsize 0x2000", dirty_get(DS, 0x100000, 0x4000, 0x2000, 8, bits));
	E("get bitmap pgsize 0", dirty_get(DS, 0x100000, 0x4000, 0, 8, bits));
	E("get bitmap iova +0x800", dirty_get(DS, 0x100800, 0x4000, 0x1000, 8, bits));
	E("get bitmap size 0", dirty_get(DS, 0x100000, 0, 0x1000, 8, bits));
	E("get bitmap part of a mapping", dirty_get(DS, 0x101000, 0x1000, 0x1000, 8, bits));
	E("get bitmap beyond a mapping", dirty_get(DS, 0x100000, 0x5000, 0x1000, 8, bits));
	E("get bitmap over two mappings", dirty_get(DS, 0x100000, 0x102000, 0x1000, 8, bits));
	E("get bitmap of nothing mapped", dirty_get(DS, 0x300000, 0x1000, 0x1000, 8, bits));
	E("get bitmap bitmap size 0", dirty_get(DS, 0x100000, 0x4000, 0x1000, 0, bits));
	E("get bitmap bitmap size 4", dirty_get(DS, 0x100000, 0x4000, 0x1000, 4, bits));
	E("get bitmap data unmapped", dirty_get(DS, 0x100000, 0x4000, 0x1000, 8, (void *)(uintptr_t)hole));
	E("get bitmap data NULL", dirty_get(DS, 0x100000, 0x4000, 0x1000, 8, NULL));
	E("unmap GET_DIRTY_BITMAP argsz without the bitmap", unmap_bitmap(US, 0x200000, 0x2000, 0x1000, 8, bits));
	E("unmap GET_DIRTY_BITMAP pgsize 0x2000", unmap_bitmap(UBS, 0x200000, 0x2000, 0x1000 * 2, 8, bits));
	E("unmap GET_DIRTY_BITMAP bitmap size 0", unmap_bitmap(UBS, 0x200000, 0x2000, 0x1000, 0, bits));
	E("unmap GET_DIRTY_BITMAP data unmapped", unmap_bitmap(UBS, 0x200000, 0x2000, 0x1000, 8, (void *)(uintptr_t)hole));
	E("unmap GET_DIRTY_BITMAP", unmap_bitmap(UBS, 0x200000, 0x2000, 0x1000, 8, bits), " size=0x%llx bits=0x%llx", (unsigned long long)u.size, (unsigned long long)bits[0]);
	E("unmap GET_DIRTY_BITMAP of nothing", unmap_bitmap(UBS, 0x200000, 0x2000, 0x1000, 8, bits), " size=0x%llx bits=0x%llx", (unsigned long long)u.size, (unsigned long long)bits[0]);
	E("STOP", dirty_flags(VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	E("get bitmap after STOP", dirty_get(DS, 0x100000, 0x4000, 0x1000, 8, bits));
	E("STOP again", dirty_flags(VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	E("unmap GET_DIRTY_BITMAP after STOP", unmap_bitmap(UBS, 0x100000, 0x4000, 0x1000, 8, bits));
	/* VFIO_DMA_MAP_FLAG_VADDR / VFIO_DMA_UNMAP_FLAG_VADDR (vfio_iommu_type1 vaddr updates) */
	E("map VADDR on a mapping whose vaddr is valid", M(MS, VFIO_DMA_MAP_FLAG_VADDR, VA(mem + 0x8000), 0x100000, 0x4000));
	E("unmap VADDR", U(US, VFIO_DMA_UNMAP_FLAG_VADDR, 0x100000, 0x4000), " size=0x%llx", (unsigned long long)u.size);
	E("unmap VADDR again", U(US, VFIO_DMA_UNMAP_FLAG_VADDR, 0x100000, 0x4000), " size=0x%llx", (unsigned long long)u.size);
	E("map while a vaddr is invalid", M(MS, RW, VA(mem + 0x8000), 0x300000, 0x1000));
	E("map VADDR with READ", M(MS, VFIO_DMA_MAP_FLAG_VADDR | VFIO_DMA_MAP_FLAG_READ, VA(mem + 0x8000), 0x100000, 0x4000));
	E("map VADDR other size", M(MS, VFIO_DMA_MAP_FLAG_VADDR, VA(mem + 0x8000), 0x100000, 0x2000));
	E("map VADDR other iova", M(MS, VFIO_DMA_MAP_FLAG_VADDR, VA(mem + 0x8000), 0x101000, 0x4000));
	E("map VADDR unmapped vaddr", M(MS, VFIO_DMA_MAP_FLAG_VADDR, hole, 0x100000, 0x4000));
	E("map VADDR", M(MS, VFIO_DMA_MAP_FLAG_VADDR, VA(mem + 0x8000), 0x100000, 0x4000));
	E("map after the vaddr is valid again", M(MS, RW, VA(mem + 0x8000), 0x300000, 0x1000));
	E("unmap VADDR|ALL", U(US, VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_ALL, 0, 0), " size=0x%llx", (unsigned long long)u.size);
	E("unmap VADDR|GET_DIRTY_BITMAP", U(US, VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 0x100000, 0x4000));
	E("unmap ALL while vaddrs are invalid", U(US, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0), " size=0x%llx", (unsigned long long)u.size);
	if (dev >= 0) close(dev);
	close(g);
	close(c);
}

/* ======================= iommufd ======================= */
static int fd = -1;
static uint32_t ioas, ioas2, devid;

static int IM(uint32_t size, uint32_t flags, uint32_t id, uint64_t va, uint64_t len, uint64_t iova, uint64_t *out)
{
	struct iommu_ioas_map a = { .size = size, .flags = flags, .ioas_id = id, .user_va = va, .length = len, .iova = iova };
	int rc = ioctl(fd, IOMMU_IOAS_MAP, &a);
	if (out) *out = a.iova;
	return rc;
}
static uint64_t unmapped;
static int IU(uint32_t id, uint64_t iova, uint64_t len)
{
	struct iommu_ioas_unmap a = { .size = sizeof(a), .ioas_id = id, .iova = iova, .length = len };
	int rc = ioctl(fd, IOMMU_IOAS_UNMAP, &a);
	unmapped = a.length;
	return rc;
}
static uint64_t copied;
static int IC(uint32_t size, uint32_t flags, uint32_t dst, uint32_t src, uint64_t len, uint64_t dst_iova, uint64_t src_iova)
{
	struct iommu_ioas_copy a = { .size = size, .flags = flags, .dst_ioas_id = dst, .src_ioas_id = src, .length = len, .dst_iova = dst_iova, .src_iova = src_iova };
	int rc = ioctl(fd, IOMMU_IOAS_COPY, &a);
	copied = a.dst_iova;
	return rc;
}
static int ALLOW(uint32_t id, const uint64_t *r, uint32_t n)
{
	struct iommu_ioas_allow_iovas a = { .size = sizeof(a), .ioas_id = id, .num_iovas = n, .allowed_iovas = VA(r) };
	return ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &a);
}
static uint32_t alloc_ioas(void)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	return ioctl(fd, IOMMU_IOAS_ALLOC, &a) < 0 ? 0 : a.out_ioas_id;
}
static int destroy(uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };
	return ioctl(fd, IOMMU_DESTROY, &d);
}

static void ranges(const char *name, uint32_t id, uint32_t num)
{
	uint64_t r[2 * 8] = { 0 };
	struct iommu_ioas_iova_ranges a = { .size = sizeof(a), .ioas_id = id, .num_iovas = num, .allowed_iovas = VA(r) };
	errno = 0;
	int rc = ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &a);
	int e = errno;
	printf("E %s %s -> %d%s%s num_iovas=%u alignment=0x%llx", mode, name, rc < 0 ? -1 : rc, rc < 0 ? " " : "", rc < 0 ? en(e) : "", a.num_iovas,
	       (unsigned long long)a.out_iova_alignment);
	for (uint32_t i = 0; i < a.num_iovas && i < num && i < 8; i++) printf(" [0x%llx-0x%llx]", (unsigned long long)r[2 * i], (unsigned long long)r[2 * i + 1]);
	putchar('\n');
	fflush(stdout);
}

static void hw_info(const char *name, uint32_t size, uint32_t flags, uint32_t id, uint32_t len, uint16_t reserved)
{
	uint8_t data[64];
	memset(data, 0xee, sizeof(data));
	struct iommu_hw_info h = { .size = size, .flags = flags, .dev_id = id, .data_len = len, .data_uptr = VA(data), .__reserved = { reserved } };
	E(name, ioctl(fd, IOMMU_GET_HW_INFO, &h), " data_len=%u type=%u data[0]=0x%02x data[24]=0x%02x", h.data_len, h.out_data_type, data[0], data[24]);
}

static uint32_t hwpt(const char *name, uint32_t size, uint32_t flags, uint32_t dev, uint32_t pt, uint32_t type, uint32_t len, uint32_t reserved)
{
	struct iommu_hwpt_alloc h = { .size = size, .flags = flags, .dev_id = dev, .pt_id = pt, .data_type = type, .data_len = len, .data_uptr = VA(mem), .__reserved = reserved };
	errno = 0;
	int rc = ioctl(fd, IOMMU_HWPT_ALLOC, &h);
	int e = errno;
	printf("E %s %s -> %d%s%s\n", mode, name, rc < 0 ? -1 : rc, rc < 0 ? " " : "", rc < 0 ? en(e) : "");
	fflush(stdout);
	return rc < 0 ? 0 : h.out_hwpt_id;
}

static int dev = -1;
static int bind_dev(int iommu)
{
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommu };
	int rc = ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b);
	devid = b.out_devid;
	return rc;
}
static int attach_pt(uint32_t argsz, uint32_t flags, uint32_t pt)
{
	struct vfio_device_attach_iommufd_pt a = { .argsz = argsz, .flags = flags, .pt_id = pt };
	return ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
}
static int detach_pt(uint32_t argsz, uint32_t flags)
{
	struct vfio_device_detach_iommufd_pt a = { .argsz = argsz, .flags = flags };
	return ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &a);
}

static void iommufd(void)
{
	const uint32_t F = IOMMU_IOAS_MAP_FIXED_IOVA, R = IOMMU_IOAS_MAP_READABLE, W = IOMMU_IOAS_MAP_WRITEABLE, FRW = F | R | W;
	const uint32_t MS = sizeof(struct iommu_ioas_map);
	uint64_t iova = 0;
	fd = open("/dev/iommu", O_RDWR);
	/* IOAS_ALLOC and DESTROY */
	struct iommu_ioas_alloc ia = { .size = 4 };
	E("ioas_alloc size 4", ioctl(fd, IOMMU_IOAS_ALLOC, &ia));
	ia = (struct iommu_ioas_alloc){ .size = sizeof(ia), .flags = 1 };
	E("ioas_alloc flags 1", ioctl(fd, IOMMU_IOAS_ALLOC, &ia));
	struct { struct iommu_ioas_alloc a; uint32_t extra; } big = { .a = { .size = sizeof(big) }, .extra = 1 };
	E("ioas_alloc larger struct, nonzero tail", ioctl(fd, IOMMU_IOAS_ALLOC, &big));
	big.extra = 0;
	E("ioas_alloc larger struct, zero tail", ioctl(fd, IOMMU_IOAS_ALLOC, &big));
	destroy(big.a.out_ioas_id);
	ioas = alloc_ioas();
	ioas2 = alloc_ioas();
	E("two ioas after one destroyed", 0, " ids %u %u", ioas, ioas2);
	E("unknown ioctl 0x3bff", ioctl(fd, _IO(IOMMUFD_TYPE, 0xff)));
	E("destroy 9999", destroy(9999));
	E("destroy 0", destroy(0));
	struct iommu_destroy dsz = { .size = 4, .id = ioas };
	E("destroy size 4", ioctl(fd, IOMMU_DESTROY, &dsz));

	/* a device to give the IOAS its reserved regions and the HWPT calls a dev_id */
	dev = cdev_open();
	E("bind", bind_dev(fd));

	/* IOAS_MAP */
	E("map ok 0x400000 +0x4000", IM(MS, FRW, ioas, VA(mem), 0x4000, 0x400000, NULL));
	E("map size 16", IM(16, FRW, ioas, VA(mem + 0x4000), 0x1000, 0x500000, NULL));
	E("map flags 0", IM(MS, 0, ioas, VA(mem + 0x4000), 0x1000, 0x500000, NULL));
	E("map FIXED only", IM(MS, F, ioas, VA(mem + 0x4000), 0x1000, 0x500000, NULL));
	E("map WRITEABLE only", IM(MS, F | W, ioas, VA(mem + 0x4000), 0x1000, 0x500000, NULL));
	IU(ioas, 0x500000, 0x1000);
	E("map unknown flag 0x10", IM(MS, FRW | 0x10, ioas, VA(mem + 0x4000), 0x1000, 0x500000, NULL));
	E("map length 0", IM(MS, FRW, ioas, VA(mem + 0x4000), 0, 0x500000, NULL));
	E("map length 0x800", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x800, 0x500000, NULL));
	E("map iova +0x800", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, 0x500800, NULL));
	E("map user_va +0x800", IM(MS, FRW, ioas, VA(mem + 0x4000) + 0x800, 0x1000, 0x500000, NULL));
	E("map user_va and iova +0x800", IM(MS, FRW, ioas, VA(mem + 0x4000) + 0x800, 0x1000, 0x500800, NULL));
	E("map iova+length wraps", IM(MS, FRW, ioas, VA(mem), 0x2000, 0xfffffffffffff000ull, NULL));
	E("map user_va+length wraps", IM(MS, FRW, ioas, 0xfffffffffffff000ull, 0x2000, 0x500000, NULL));
	E("map length 2^63", IM(MS, FRW, ioas, VA(mem), 1ull << 63, 0x500000, NULL));
	E("map ioas 9999", IM(MS, FRW, 9999, VA(mem + 0x4000), 0x1000, 0x500000, NULL));
	E("map ioas id of the device", IM(MS, FRW, devid, VA(mem + 0x4000), 0x1000, 0x500000, NULL));
	E("map overlap", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x2000, 0x403000, NULL));
	E("map exact duplicate", IM(MS, FRW, ioas, VA(mem), 0x4000, 0x400000, NULL));
	E("map iova 2^39", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, 1ull << 39, NULL));
	IU(ioas, 1ull << 39, 0x1000);
	E("map iova 2^48", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, 1ull << 48, NULL));
	E("map iova 0xfee00000 (MSI window)", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, 0xfee00000ull, NULL));
	E("map range ending in the MSI window", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x2000, 0xfedff000ull, NULL));
	E("map user_va unmapped", IM(MS, FRW, ioas, hole, 0x1000, 0x600000, NULL));
	E("map user_va NULL", IM(MS, FRW, ioas, 0, 0x1000, 0x600000, NULL));
	E("map read-only memory, WRITEABLE", IM(MS, FRW, ioas, VA(rom), 0x1000, 0x600000, NULL));
	E("map read-only memory, READABLE only", IM(MS, F | R, ioas, VA(rom), 0x1000, 0x600000, NULL));
	E("map half mapped user_va", IM(MS, FRW, ioas, VA(half), 0x2000, 0x700000, NULL));
	E("map without FIXED_IOVA", IM(MS, R | W, ioas, VA(mem + 0x8000), 0x1000, 0, &iova), " iova=0x%llx", (unsigned long long)iova);
	E("map without FIXED_IOVA, 0x3000", IM(MS, R | W, ioas, VA(mem + 0x8000), 0x3000, 0, &iova), " iova=0x%llx", (unsigned long long)iova);
	E("map into an IOAS with no device", IM(MS, FRW, ioas2, VA(mem), 0x1000, 0xfee00000ull, NULL));

	/* IOAS_UNMAP */
	struct iommu_ioas_unmap us = { .size = 8, .ioas_id = ioas, .iova = 0x400000, .length = 0x1000 };
	E("unmap size 8", ioctl(fd, IOMMU_IOAS_UNMAP, &us));
	E("unmap length 0", IU(ioas, 0x400000, 0));
	E("unmap nothing there", IU(ioas, 0x900000, 0x1000));
	E("unmap bisect", IU(ioas, 0x401000, 0x1000));
	E("unmap iova +0x800", IU(ioas, 0x400800, 0x1000));
	E("unmap length 0x800", IU(ioas, 0x400000, 0x800));
	E("unmap wraps", IU(ioas, 0xfffffffffffff000ull, 0x2000));
	E("unmap ioas 9999", IU(9999, 0x400000, 0x4000));
	E("unmap covering one and a hole", IU(ioas, 0x3ff000, 0x6000), " length=0x%llx", (unsigned long long)unmapped);
	E("map ok again", IM(MS, FRW, ioas, VA(mem), 0x4000, 0x400000, NULL));

	/* IOAS_COPY */
	const uint32_t CS = sizeof(struct iommu_ioas_copy), CF = IOMMU_IOAS_MAP_FIXED_IOVA | R | W;
	E("copy ok 0x400000 -> ioas2 0x100000", IC(CS, CF, ioas2, ioas, 0x4000, 0x100000, 0x400000));
	E("copy size 16", IC(16, CF, ioas2, ioas, 0x1000, 0x200000, 0x400000));
	E("copy flags 0", IC(CS, 0, ioas2, ioas, 0x1000, 0x200000, 0x400000));
	E("copy unknown flag", IC(CS, CF | 0x100, ioas2, ioas, 0x1000, 0x200000, 0x400000));
	E("copy length 0", IC(CS, CF, ioas2, ioas, 0, 0x200000, 0x400000));
	E("copy src not mapped", IC(CS, CF, ioas2, ioas, 0x1000, 0x200000, 0x900000));
	E("copy src bisects", IC(CS, CF, ioas2, ioas, 0x1000, 0x200000, 0x401000));
	E("copy src ioas 9999", IC(CS, CF, ioas2, 9999, 0x1000, 0x200000, 0x400000));
	E("copy dst ioas 9999", IC(CS, CF, 9999, ioas, 0x1000, 0x200000, 0x400000));
	E("copy dst overlaps", IC(CS, CF, ioas2, ioas, 0x4000, 0x102000, 0x400000));
	E("copy dst unaligned", IC(CS, CF, ioas2, ioas, 0x4000, 0x200800, 0x400000));
	E("copy src wraps", IC(CS, CF, ioas2, ioas, 0x2000, 0x200000, 0xfffffffffffff000ull));
	E("copy dst wraps", IC(CS, CF, ioas2, ioas, 0x4000, 0xfffffffffffff000ull, 0x400000));
	E("copy to the same ioas", IC(CS, CF, ioas, ioas, 0x4000, 0x600000, 0x400000));
	E("copy without FIXED_IOVA", IC(CS, R | W, ioas2, ioas, 0x4000, 0, 0x400000), " dst_iova=0x%llx", (unsigned long long)copied);
	E("copy to the MSI window", IC(CS, CF, ioas, ioas, 0x1000, 0xfee00000ull, 0x400000));

	/* IOVA_RANGES */
	ranges("iova_ranges num 8", ioas, 8);
	ranges("iova_ranges num 1", ioas, 1);
	ranges("iova_ranges num 0", ioas, 0);
	ranges("iova_ranges of the IOAS with no device", ioas2, 8);
	struct iommu_ioas_iova_ranges rr = { .size = 8, .ioas_id = ioas };
	E("iova_ranges size 8", ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &rr));
	rr = (struct iommu_ioas_iova_ranges){ .size = sizeof(rr), .ioas_id = ioas, .num_iovas = 2, .allowed_iovas = hole };
	E("iova_ranges to an unmapped buffer", ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &rr));
	rr = (struct iommu_ioas_iova_ranges){ .size = sizeof(rr), .ioas_id = 9999, .num_iovas = 2, .allowed_iovas = VA(mem) };
	E("iova_ranges ioas 9999", ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &rr));
	rr = (struct iommu_ioas_iova_ranges){ .size = sizeof(rr), .ioas_id = ioas, .__reserved = 1 };
	E("iova_ranges __reserved", ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &rr));

	/* ALLOW_IOVAS */
	static uint64_t a1[] = { 0x100000, 0x1fffff }, a2[] = { 0x100000, 0x1fffff, 0x180000, 0x2fffff }, a3[] = { 0x200000, 0x100000 },
		a4[] = { 0x400000, 0x4fffff }, a5[] = { 0x100000, 0x100fff, 0x101000, 0x101fff }, a6[] = { 0x100800, 0x1017ff };
	E("allow overlapping ranges", ALLOW(ioas2, a2, 2));
	E("allow start > last", ALLOW(ioas2, a3, 1));
	E("allow excluding a mapping", ALLOW(ioas2, a4, 1));
	E("allow unaligned range", ALLOW(ioas2, a6, 1));
	E("allow adjacent ranges", ALLOW(ioas2, a5, 2));
	ranges("iova_ranges after allow", ioas2, 8);
	E("allow none", ALLOW(ioas2, NULL, 0));
	E("allow ioas 9999", ALLOW(9999, a1, 1));
	E("allow from an unmapped buffer", ({ struct iommu_ioas_allow_iovas a = { .size = sizeof(a), .ioas_id = ioas2, .num_iovas = 1, .allowed_iovas = hole }; ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &a); }));
	E("allow on the device's ioas covering a mapping", ALLOW(ioas, a4, 1));
	E("map outside the allowed ranges", IM(MS, FRW, ioas, VA(mem + 0x8000), 0x1000, 0x600000, NULL));
	ranges("iova_ranges with the device and allow", ioas, 8);
	E("allow none on the device's ioas", ALLOW(ioas, NULL, 0));

	/* GET_HW_INFO */
	hw_info("hw_info ok", sizeof(struct iommu_hw_info), 0, devid, 64, 0);
	hw_info("hw_info data_len 8", sizeof(struct iommu_hw_info), 0, devid, 8, 0);
	hw_info("hw_info data_len 0", sizeof(struct iommu_hw_info), 0, devid, 0, 0);
	hw_info("hw_info size 8", 8, 0, devid, 64, 0);
	hw_info("hw_info dev 9999", sizeof(struct iommu_hw_info), 0, 9999, 64, 0);
	hw_info("hw_info dev is an ioas", sizeof(struct iommu_hw_info), 0, ioas, 64, 0);
	hw_info("hw_info __reserved", sizeof(struct iommu_hw_info), 0, devid, 64, 1);
	hw_info("hw_info unknown flag", sizeof(struct iommu_hw_info), 0x80, devid, 64, 0);
	{
		uint8_t data[64];
		struct iommu_hw_info h = { .size = sizeof(h), .flags = IOMMU_HW_INFO_FLAG_INPUT_TYPE, .dev_id = devid, .data_len = 64, .data_uptr = VA(data), .in_data_type = IOMMU_HW_INFO_TYPE_ARM_SMMUV3 };
		E("hw_info INPUT_TYPE smmuv3", ioctl(fd, IOMMU_GET_HW_INFO, &h));
		h = (struct iommu_hw_info){ .size = sizeof(h), .flags = IOMMU_HW_INFO_FLAG_INPUT_TYPE, .dev_id = devid, .data_len = 64, .data_uptr = VA(data), .in_data_type = IOMMU_HW_INFO_TYPE_INTEL_VTD };
		E("hw_info INPUT_TYPE vtd", ioctl(fd, IOMMU_GET_HW_INFO, &h), " data_len=%u type=%u", h.data_len, h.out_data_type);
		h = (struct iommu_hw_info){ .size = sizeof(h), .flags = IOMMU_HW_INFO_FLAG_INPUT_TYPE, .dev_id = devid, .data_len = 64, .data_uptr = VA(data), .in_data_type = IOMMU_HW_INFO_TYPE_DEFAULT };
		E("hw_info INPUT_TYPE default", ioctl(fd, IOMMU_GET_HW_INFO, &h), " data_len=%u type=%u", h.data_len, h.out_data_type);
		h = (struct iommu_hw_info){ .size = sizeof(h), .dev_id = devid, .data_len = 64, .data_uptr = hole };
		E("hw_info data to an unmapped buffer", ioctl(fd, IOMMU_GET_HW_INFO, &h));
	}

	/* HWPT_ALLOC */
	const uint32_t HS = sizeof(struct iommu_hwpt_alloc);
	uint32_t h1 = hwpt("hwpt ok on the ioas", HS, 0, devid, ioas, 0, 0, 0);
	hwpt("hwpt size 8", 8, 0, devid, ioas, 0, 0, 0);
	hwpt("hwpt dev 9999", HS, 0, 9999, ioas, 0, 0, 0);
	hwpt("hwpt dev is the ioas", HS, 0, ioas, ioas, 0, 0, 0);
	hwpt("hwpt pt 9999", HS, 0, devid, 9999, 0, 0, 0);
	hwpt("hwpt pt is the device", HS, 0, devid, devid, 0, 0, 0);
	hwpt("hwpt unknown flag 0x80", HS, 0x80, devid, ioas, 0, 0, 0);
	hwpt("hwpt __reserved", HS, 0, devid, ioas, 0, 0, 1);
	hwpt("hwpt data_type VTD_S1 on an ioas", HS, 0, devid, ioas, IOMMU_HWPT_DATA_VTD_S1, 0, 0);
	hwpt("hwpt data_type 99", HS, 0, devid, ioas, 99, 0, 0);
	hwpt("hwpt data_len without data_type", HS, 0, devid, ioas, 0, 8, 0);
	hwpt("hwpt PASID flag", HS, IOMMU_HWPT_ALLOC_PASID, devid, ioas, 0, 0, 0);
	hwpt("hwpt FAULT_ID_VALID, fault 0", HS, IOMMU_HWPT_FAULT_ID_VALID, devid, ioas, 0, 0, 0);
	uint32_t parent = hwpt("hwpt NEST_PARENT", HS, IOMMU_HWPT_ALLOC_NEST_PARENT, devid, ioas, 0, 0, 0);
	uint32_t dirty = hwpt("hwpt DIRTY_TRACKING", HS, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, devid, ioas, 0, 0, 0);
	hwpt("hwpt on a paging hwpt", HS, 0, devid, h1, 0, 0, 0);
	/* the same on an IOAS whose areas are page aligned (the one above has 0x800-aligned areas: EADDRINUSE) */
	uint32_t clean = alloc_ioas();
	E("map on a clean ioas", IM(MS, FRW, clean, VA(mem), 0x4000, 0x400000, NULL));
	uint32_t c1 = hwpt("hwpt on the clean ioas", HS, 0, devid, clean, 0, 0, 0);
	uint32_t c2 = hwpt("hwpt PASID flag on the clean ioas", HS, IOMMU_HWPT_ALLOC_PASID, devid, clean, 0, 0, 0);
	uint32_t c3 = hwpt("hwpt NEST_PARENT on the clean ioas", HS, IOMMU_HWPT_ALLOC_NEST_PARENT, devid, clean, 0, 0, 0);
	uint32_t c4 = hwpt("hwpt DIRTY_TRACKING on the clean ioas", HS, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, devid, clean, 0, 0, 0);
	hwpt("hwpt FAULT_ID_VALID, fault 0, on the clean ioas", HS, IOMMU_HWPT_FAULT_ID_VALID, devid, clean, 0, 0, 0);
	E("destroy the clean ioas with hwpts on it", destroy(clean));
	if (c1) E("destroy hwpt", destroy(c1));
	if (c2) destroy(c2);
	if (c3) destroy(c3);
	if (c4) destroy(c4);
	E("destroy the clean ioas", destroy(clean));
	E("destroy the ioas with hwpts on it", destroy(ioas));
	E("destroy hwpt", destroy(h1));
	E("destroy hwpt twice", destroy(h1));
	if (parent) destroy(parent);
	if (dirty) destroy(dirty);
	E("destroy a device id", destroy(devid));
	E("destroy ioas2", destroy(ioas2));
	E("unmap all", IU(ioas, 0, UINT64_MAX), " length=0x%llx", (unsigned long long)unmapped);
	close(dev);
	E("destroy the ioas after the device closed", destroy(ioas));
	close(fd);
}

/* ======================= iommufd with a domain ======================= */
static void domain(void)
{
	const uint32_t F = IOMMU_IOAS_MAP_FIXED_IOVA, R = IOMMU_IOAS_MAP_READABLE, W = IOMMU_IOAS_MAP_WRITEABLE, FRW = F | R | W;
	const uint32_t MS = sizeof(struct iommu_ioas_map);
	uint64_t iova = 0;
	fd = open("/dev/iommu", O_RDWR);
	dev = cdev_open();
	E("bind", bind_dev(fd));
	ioas = alloc_ioas();
	E("map before attach, 0x800 aligned", IM(MS, FRW, ioas, VA(mem), 0x800, 0x300800, NULL));
	E("attach with a 0x800-aligned area", attach_pt(sizeof(struct vfio_device_attach_iommufd_pt), 0, ioas));
	E("unmap it", IU(ioas, 0x300800, 0x800));
	E("map before attach, in the MSI window", IM(MS, FRW, ioas, VA(mem), 0x1000, 0xfee00000ull, NULL));
	E("attach with an area in the MSI window", attach_pt(sizeof(struct vfio_device_attach_iommufd_pt), 0, ioas));
	E("unmap it", IU(ioas, 0xfee00000ull, 0x1000));
	/* More than the process has: without a domain nothing is pinned (iopt_alloc_user_pages keeps nothing per page); filling a domain pins, up to the first page it lacks. */
	E("map before attach, 256 GiB at 2^38", IM(MS, FRW, ioas, VA(mem), 1ull << 38, 1ull << 38, NULL));
	E("attach with a 256 GiB area the process lacks", attach_pt(sizeof(struct vfio_device_attach_iommufd_pt), 0, ioas));
	E("unmap it", IU(ioas, 1ull << 38, 1ull << 38), " length=0x%llx", (unsigned long long)unmapped);
	E("attach", attach_pt(sizeof(struct vfio_device_attach_iommufd_pt), 0, ioas));
	ranges("iova_ranges with a domain", ioas, 8);
	E("map 256 GiB at 2^38, more than the process has", IM(MS, FRW, ioas, VA(mem), 1ull << 38, 1ull << 38, NULL));
	E("unmap where it failed", IU(ioas, 1ull << 38, 1ull << 38));
	E("map ok 0x400000 +0x4000", IM(MS, FRW, ioas, VA(mem), 0x4000, 0x400000, NULL));
	E("map iova +0x800", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, 0x500800, NULL));
	E("map length 0x800", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x800, 0x500000, NULL));
	E("map user_va +0x800", IM(MS, FRW, ioas, VA(mem + 0x4000) + 0x800, 0x1000, 0x500000, NULL));
	E("map iova 0xfee00000 (MSI window)", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, 0xfee00000ull, NULL));
	E("map range ending in the MSI window", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x2000, 0xfedff000ull, NULL));
	E("map iova 0xfef00000 (after it)", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, 0xfef00000ull, NULL));
	IU(ioas, 0xfef00000ull, 0x1000);
	E("map iova 2^39 - 0x1000 (last page of a 39-bit aperture)", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, (1ull << 39) - 0x1000, NULL));
	IU(ioas, (1ull << 39) - 0x1000, 0x1000);
	E("map iova 2^39", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, 1ull << 39, NULL));
	IU(ioas, 1ull << 39, 0x1000);
	E("map iova 2^48", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, 1ull << 48, NULL));
	E("map iova 2^63", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1000, 1ull << 63, NULL));
	E("map user_va unmapped", IM(MS, FRW, ioas, hole, 0x1000, 0x600000, NULL));
	E("map user_va NULL", IM(MS, FRW, ioas, 0, 0x1000, 0x600000, NULL));
	E("map read-only memory, WRITEABLE", IM(MS, FRW, ioas, VA(rom), 0x1000, 0x600000, NULL));
	E("map read-only memory, READABLE only", IM(MS, F | R, ioas, VA(rom), 0x1000, 0x600000, NULL));
	E("map half mapped user_va", IM(MS, FRW, ioas, VA(half), 0x2000, 0x700000, NULL));
	E("map length 2^63", IM(MS, FRW, ioas, VA(mem), 1ull << 63, 0x800000, NULL));
	/* Which rule answers first when several fail: the length's alignment, then the IOVA's, then wrapping. */
	E("map iova unaligned and wrapping", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x2000, 0xffffffffffffe800ull, NULL));
	E("map length unaligned and wrapping", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1800, 0xfffffffffffff000ull, NULL));
	E("map aligned and wrapping", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x2000, 0xfffffffffffff000ull, NULL));
	E("map length unaligned in the MSI window", IM(MS, FRW, ioas, VA(mem + 0x4000), 0x1800, 0xfee00000ull, NULL));
	E("map without FIXED_IOVA", IM(MS, R | W, ioas, VA(mem + 0x8000), 0x1000, 0, &iova), " iova=0x%llx", (unsigned long long)iova);
	E("map without FIXED_IOVA, 0x3000", IM(MS, R | W, ioas, VA(mem + 0x8000), 0x3000, 0, &iova), " iova=0x%llx", (unsigned long long)iova);
	E("map without FIXED_IOVA, 2 MiB-aligned 0x200000", IM(MS, R | W, ioas, VA(mem), 0x200000, 0, &iova), " iova=0x%llx", (unsigned long long)iova);
	E("unmap bisect", IU(ioas, 0x401000, 0x1000));
	E("unmap iova +0x800", IU(ioas, 0x400800, 0x1000));
	E("unmap covering one and a hole", IU(ioas, 0x3ff000, 0x6000), " length=0x%llx", (unsigned long long)unmapped);
	E("map ok again", IM(MS, FRW, ioas, VA(mem), 0x4000, 0x400000, NULL));
	uint32_t other = alloc_ioas();
	const uint32_t CS = sizeof(struct iommu_ioas_copy), CF = F | R | W;
	E("copy into the attached ioas from another", IC(CS, CF, ioas, other, 0x1000, 0x900000, 0x400000));
	E("copy from the attached ioas", IC(CS, CF, other, ioas, 0x4000, 0x100000, 0x400000));
	E("copy back into the MSI window", IC(CS, CF, ioas, other, 0x1000, 0xfee00000ull, 0x100000));
	E("copy back unaligned", IC(CS, CF, ioas, other, 0x1000, 0x900800, 0x100000));
	E("copy back unaligned and wrapping", IC(CS, CF, ioas, other, 0x2000, 0xffffffffffffe800ull, 0x100000));
	E("copy back aligned and wrapping", IC(CS, CF, ioas, other, 0x2000, 0xfffffffffffff000ull, 0x100000));
	E("copy back", IC(CS, CF, ioas, other, 0x4000, 0x900000, 0x100000));
	static uint64_t a1[] = { 0x100000, 0x1fffff }, a2[] = { 0x0, 0xffffffffffffffffull }, a3[] = { 0x400000, 0x4fffff, 0x900000, 0x9fffff };
	E("allow a range excluding a mapping", ALLOW(ioas, a1, 1));
	E("allow everything", ALLOW(ioas, a2, 1));
	ranges("iova_ranges after allowing everything", ioas, 8);
	E("allow two ranges covering the mappings", ALLOW(ioas, a3, 2));
	ranges("iova_ranges after allowing two", ioas, 8);
	E("map outside the allowed ranges", IM(MS, FRW, ioas, VA(mem + 0x8000), 0x1000, 0x600000, NULL));
	E("map without FIXED_IOVA inside the allowed ranges", IM(MS, R | W, ioas, VA(mem + 0x8000), 0x1000, 0, &iova), " iova=0x%llx", (unsigned long long)iova);
	E("allow none", ALLOW(ioas, NULL, 0));
	uint32_t h = hwpt("hwpt on the attached ioas", sizeof(struct iommu_hwpt_alloc), 0, devid, ioas, 0, 0, 0);
	E("attach the hwpt (replace)", attach_pt(sizeof(struct vfio_device_attach_iommufd_pt), 0, h));
	E("destroy the auto hwpt's ioas", destroy(ioas));
	E("attach the ioas again (a new auto hwpt)", attach_pt(sizeof(struct vfio_device_attach_iommufd_pt), 0, ioas));
	E("destroy the hwpt", destroy(h));
	E("detach", detach_pt(sizeof(struct vfio_device_detach_iommufd_pt), 0));
	E("unmap all", IU(ioas, 0, UINT64_MAX), " length=0x%llx", (unsigned long long)unmapped);
	E("destroy the ioas", destroy(ioas));
	E("destroy the other", destroy(other));
	close(dev);
	close(fd);
}

/* ======================= cdev ======================= */
static void cdev(void)
{
	fd = open("/dev/iommu", O_RDWR);
	E("open cdev", (dev = cdev_open()) < 0 ? -1 : 0);
	struct vfio_device_info di = { .argsz = sizeof(di) };
	E("get_info before bind", ioctl(dev, VFIO_DEVICE_GET_INFO, &di));
	E("attach before bind", attach_pt(sizeof(struct vfio_device_attach_iommufd_pt), 0, 1));
	E("detach before bind", detach_pt(sizeof(struct vfio_device_detach_iommufd_pt), 0));
	E("reset before bind", ioctl(dev, VFIO_DEVICE_RESET));
	E("pread before bind", pread(dev, &di, 4, 0));
	struct vfio_device_bind_iommufd b = { .argsz = 8, .iommufd = fd };
	E("bind argsz 8", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b));
	b = (struct vfio_device_bind_iommufd){ .argsz = 16, .iommufd = fd };
	E("bind argsz 16 (before token_uuid_ptr)", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b), " out_devid=%u", b.out_devid);
	if (b.out_devid) {
		close(dev);
		dev = cdev_open();
	}
	b = (struct vfio_device_bind_iommufd){ .argsz = sizeof(b), .flags = 0x80, .iommufd = fd };
	E("bind unknown flag", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b));
	b = (struct vfio_device_bind_iommufd){ .argsz = sizeof(b), .iommufd = -1 };
	E("bind iommufd -1", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b));
	b = (struct vfio_device_bind_iommufd){ .argsz = sizeof(b), .iommufd = 999 };
	E("bind iommufd 999 (not open)", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b));
	int efd = eventfd(0, 0);
	b = (struct vfio_device_bind_iommufd){ .argsz = sizeof(b), .iommufd = efd };
	E("bind an eventfd", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b));
	b = (struct vfio_device_bind_iommufd){ .argsz = sizeof(b), .flags = VFIO_DEVICE_BIND_FLAG_TOKEN, .iommufd = fd, .token_uuid_ptr = VA(mem) };
	E("bind with a token, no VF", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b));
	if (b.out_devid) { close(dev); dev = cdev_open(); }

	/* the group while the cdev is open but not bound, then bound */
	int g;
	E("open the group, cdev open and not bound", (g = group_open()) < 0 ? -1 : 0);
	E("bind while the group is open", bind_dev(fd));
	if (g >= 0) close(g);
	E("bind", bind_dev(fd), " dev_id=%u", devid);
	E("bind again", bind_dev(fd));
	E("open the group while bound", (g = group_open()) < 0 ? -1 : 0);
	if (g >= 0) close(g);
	int dev2;
	E("open the cdev a second time", (dev2 = cdev_open()) < 0 ? -1 : 0);
	if (dev2 >= 0) {
		int save = dev;
		dev = dev2;
		E("bind the second fd", bind_dev(fd));
		dev = save;
		close(dev2);
	}

	/* device ioctls now work; their header checks */
	di = (struct vfio_device_info){ .argsz = 8 };
	E("get_info argsz 8", ioctl(dev, VFIO_DEVICE_GET_INFO, &di));
	di = (struct vfio_device_info){ .argsz = sizeof(di) };
	E("get_info", ioctl(dev, VFIO_DEVICE_GET_INFO, &di), " flags=0x%x num_regions=%u num_irqs=%u", di.flags, di.num_regions, di.num_irqs);
	struct vfio_region_info ri = { .argsz = 8, .index = 0 };
	E("region_info argsz 8", ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri));
	ri = (struct vfio_region_info){ .argsz = sizeof(ri), .index = 9 };
	E("region_info index 9", ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri));
	ri = (struct vfio_region_info){ .argsz = sizeof(ri), .index = 1 };
	E("region_info bar1 (absent)", ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri), " size=0x%llx flags=0x%x", (unsigned long long)ri.size, ri.flags);
	struct vfio_irq_info ii = { .argsz = 8, .index = 0 };
	E("irq_info argsz 8", ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii));
	ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = 5 };
	E("irq_info index 5", ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii));
	ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = VFIO_PCI_ERR_IRQ_INDEX };
	E("irq_info ERR", ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii), " flags=0x%x count=%u", ii.flags, ii.count);
	ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = VFIO_PCI_REQ_IRQ_INDEX };
	E("irq_info REQ", ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii), " flags=0x%x count=%u", ii.flags, ii.count);
	ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX };
	E("irq_info MSIX", ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii), " flags=0x%x count=%u", ii.flags, ii.count);
	struct vfio_irq_set is = { .argsz = 8 };
	E("set_irqs argsz 8", ioctl(dev, VFIO_DEVICE_SET_IRQS, &is));
	is = (struct vfio_irq_set){ .argsz = sizeof(is), .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, .index = 9 };
	E("set_irqs index 9", ioctl(dev, VFIO_DEVICE_SET_IRQS, &is));
	is = (struct vfio_irq_set){ .argsz = sizeof(is), .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, .index = 0, .count = 1 };
	E("set_irqs two data types", ioctl(dev, VFIO_DEVICE_SET_IRQS, &is));
	is = (struct vfio_irq_set){ .argsz = sizeof(is), .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, .index = VFIO_PCI_MSI_IRQ_INDEX, .start = 1, .count = 1 };
	E("set_irqs MSI start 1 (one vector)", ioctl(dev, VFIO_DEVICE_SET_IRQS, &is));
	is = (struct vfio_irq_set){ .argsz = sizeof(is), .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, .index = VFIO_PCI_MSIX_IRQ_INDEX, .count = 1 };
	E("set_irqs MSIX (none)", ioctl(dev, VFIO_DEVICE_SET_IRQS, &is));
	is = (struct vfio_irq_set){ .argsz = sizeof(is), .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, .index = VFIO_PCI_ERR_IRQ_INDEX, .count = 1 };
	E("set_irqs ERR, DATA_NONE", ioctl(dev, VFIO_DEVICE_SET_IRQS, &is));
	struct vfio_pci_hot_reset_info hr = { .argsz = 8 };
	E("hot_reset_info argsz 8", ioctl(dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, &hr));
	hr = (struct vfio_pci_hot_reset_info){ .argsz = sizeof(hr) };
	E("hot_reset_info", ioctl(dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, &hr), " flags=0x%x count=%u", hr.flags, hr.count);
	struct vfio_pci_hot_reset hreset = { .argsz = 8 };
	E("hot_reset argsz 8", ioctl(dev, VFIO_DEVICE_PCI_HOT_RESET, &hreset));
	hreset = (struct vfio_pci_hot_reset){ .argsz = sizeof(hreset), .flags = 1 };
	E("hot_reset flags 1", ioctl(dev, VFIO_DEVICE_PCI_HOT_RESET, &hreset));
	hreset = (struct vfio_pci_hot_reset){ .argsz = sizeof(hreset) };
	E("hot_reset no groups", ioctl(dev, VFIO_DEVICE_PCI_HOT_RESET, &hreset));
	E("reset (edu has no reset)", ioctl(dev, VFIO_DEVICE_RESET));
	struct vfio_device_feature ft = { .argsz = sizeof(ft), .flags = VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET };
	E("feature probe 0", ioctl(dev, VFIO_DEVICE_FEATURE, &ft));
	ft.argsz = 4;
	E("feature argsz 4", ioctl(dev, VFIO_DEVICE_FEATURE, &ft));
	E("device unknown ioctl", ioctl(dev, _IO(VFIO_TYPE, VFIO_BASE + 60)));
	E("device group ioctl", ioctl(dev, VFIO_GROUP_GET_STATUS, &di));
	E("mmio pread before attach", pread(dev, &ri, 4, 0));

	/* attach / detach */
	uint32_t ioas_a = alloc_ioas(), ioas_b = alloc_ioas();
	const uint32_t AS = sizeof(struct vfio_device_attach_iommufd_pt), DS = sizeof(struct vfio_device_detach_iommufd_pt);
	E("attach argsz 4", attach_pt(4, 0, ioas_a));
	E("attach unknown flag", attach_pt(AS, 0x80, ioas_a));
	E("attach PASID flag", attach_pt(AS, VFIO_DEVICE_ATTACH_PASID, ioas_a));
	E("attach pt 9999", attach_pt(AS, 0, 9999));
	E("attach pt is the device", attach_pt(AS, 0, devid));
	E("detach while not attached", detach_pt(DS, 0));
	E("attach ioas", attach_pt(AS, 0, ioas_a));
	E("attach the same ioas again", attach_pt(AS, 0, ioas_a));
	E("attach another ioas (replace)", attach_pt(AS, 0, ioas_b));
	E("destroy the replaced ioas", destroy(ioas_a));
	E("destroy the attached ioas", destroy(ioas_b));
	E("detach argsz 4", detach_pt(4, 0));
	E("detach unknown flag", detach_pt(DS, 0x80));
	E("detach PASID flag", detach_pt(DS, VFIO_DEVICE_DETACH_PASID));
	E("detach", detach_pt(DS, 0));
	E("detach again", detach_pt(DS, 0));
	E("destroy the ioas after detach", destroy(ioas_b));
	E("destroy the bound device id", destroy(devid));
	close(dev);
	E("open the group after the cdev closed", (g = group_open()) < 0 ? -1 : 0);
	E("open the cdev while the group is open", (dev = cdev_open()) < 0 ? -1 : 0);
	E("bind while the group is open", bind_dev(fd));
	int c2 = open("/dev/vfio/vfio", O_RDWR);
	E("group.set_container", ioctl(g, VFIO_GROUP_SET_CONTAINER, &c2));
	E("set_iommu TYPE1v2", ioctl(c2, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	int gd;
	E("group.get_device_fd", (gd = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, bdf)) < 0 ? -1 : 0);
	if (gd >= 0) {
		struct vfio_device_bind_iommufd bb = { .argsz = sizeof(bb), .iommufd = fd };
		E("bind on a group's device fd", ioctl(gd, VFIO_DEVICE_BIND_IOMMUFD, &bb));
		close(gd);
	}
	close(c2);
	close(g);
	close(dev);
	close(fd);
}

int main(int argc, char **argv)
{
	bdf = getenv("EDU_BDF");
	group = getenv("EDU_GROUP");
	if (argc < 2 || !bdf || !group) { fprintf(stderr, "usage: EDU_BDF=... EDU_GROUP=... %s type1|iommufd|cdev\n", argv[0]); return 2; }
	mode = argv[1];
	memory();
	if (!strcmp(mode, "type1")) type1();
	else if (!strcmp(mode, "iommufd")) iommufd();
	else if (!strcmp(mode, "cdev")) cdev();
	else if (!strcmp(mode, "domain")) domain();
	else if (!strcmp(mode, "dirty")) dirty();
	else return 2;
	printf("E %s done\n", mode);
	return 0;
}
