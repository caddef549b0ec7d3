/* edu-driver.c: a user-space driver for QEMU's edu device (1234:11e8) at
 * $EDU_BDF, over VFIO type1 (group + container) or the iommufd cdev:
 * identity from sysfs and config space, every region and IRQ index the
 * device reports, BAR0 accesses of each size, factorial, MSI and INTx
 * through eventfds, and DMA through the IOMMU: a round trip, to and from
 * unmapped IOVAs, to a read-only IOVA, the 28-bit DMA mask, after unmap,
 * and (iommufd) while detached and after attaching a new HWPT.
 *
 *   edu-driver type1|iommufd
 *
 * One fact per line ("D <mode> <what> <answer>"), no addresses or times, so
 * the output on Linux 7.3 (difftest's rig) and on ioemu compare line by line.
 * Device-side ranges stay inside edu's 4 KiB buffer and below its last byte:
 * QEMU 7.2 aborts on anything else (hw_error).
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
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>
#include <linux/iommufd.h>

static const char *mode;
#define D(...) do { printf("D %s ", mode); printf(__VA_ARGS__); putchar('\n'); fflush(stdout); } while (0)
static const char *en(int e) { const char *s = strerrorname_np(e); return s ? s : "E?"; }
/* "0" or "-1 ENAME" */
static char rcbuf[64];
static const char *rs(long rc) { if (rc < 0) snprintf(rcbuf, sizeof(rcbuf), "-1 %s", en(errno)); else snprintf(rcbuf, sizeof(rcbuf), "%ld", rc); return rcbuf; }

/* ---- kernel log: DMAR fault lines since the last drain ---- */
static int kmsg = -1;
static void kmsg_drain(const char *tag)
{
	char line[1024];
	ssize_t n;
	if (kmsg < 0) return;
	usleep(20000);
	while ((n = read(kmsg, line, sizeof(line) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0) continue;
		line[n] = 0;
		char *msg = strchr(line, ';');
		msg = msg ? msg + 1 : line;
		char *nl = strchr(msg, '\n');
		if (nl) *nl = 0;
		if (strstr(msg, "DMAR") || strstr(msg, "vfio") || strstr(msg, "iommu"))
			D("kmsg[%s] %s", tag, msg);
	}
}

/* ---- device ---- */
static int dev = -1, container = -1, iommufd = -1;
static uint32_t ioas, devid;
static uint64_t cfg_off, bar0_off;

static uint32_t rd32(uint64_t o) { uint32_t v = 0; if (pread(dev, &v, 4, bar0_off + o) != 4) D("bar0 pread4 0x%llx failed %s", (unsigned long long)o, en(errno)); return v; }
static void wr32(uint64_t o, uint32_t v) { if (pwrite(dev, &v, 4, bar0_off + o) != 4) D("bar0 pwrite4 0x%llx failed %s", (unsigned long long)o, en(errno)); }
static void wr64(uint64_t o, uint64_t v) { if (pwrite(dev, &v, 8, bar0_off + o) != 8) D("bar0 pwrite8 0x%llx failed %s", (unsigned long long)o, en(errno)); }
static uint32_t cfg(uint64_t o, int n) { uint32_t v = 0; if (pread(dev, &v, n, cfg_off + o) != n) D("cfg pread failed %s", en(errno)); return v; }
static void cfgw(uint64_t o, uint32_t v, int n) { if (pwrite(dev, &v, n, cfg_off + o) != n) D("cfg pwrite failed %s", en(errno)); }

static void sysfs_line(const char *bdf, const char *attr)
{
	char p[256], buf[128] = "";
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	FILE *f = fopen(p, "r");
	if (!f) { D("sysfs %s -> %s", attr, en(errno)); return; }
	if (fgets(buf, sizeof(buf), f)) buf[strcspn(buf, "\n")] = 0;
	fclose(f);
	D("sysfs %s %s", attr, buf);
}

/* ---- IOMMU backends ---- */
static int map(uint64_t iova, void *va, uint64_t len, int writable)
{
	if (container >= 0) {
		struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ | (writable ? VFIO_DMA_MAP_FLAG_WRITE : 0),
			.vaddr = (uintptr_t)va, .iova = iova, .size = len };
		return ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
	}
	struct iommu_ioas_map m = { .size = sizeof(m), .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | (writable ? IOMMU_IOAS_MAP_WRITEABLE : 0),
		.ioas_id = ioas, .user_va = (uintptr_t)va, .length = len, .iova = iova };
	return ioctl(iommufd, IOMMU_IOAS_MAP, &m);
}
static int unmap(uint64_t iova, uint64_t len, uint64_t *done)
{
	if (container >= 0) {
		struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = iova, .size = len };
		int rc = ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u);
		*done = u.size;
		return rc;
	}
	struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = ioas, .iova = iova, .length = len };
	int rc = ioctl(iommufd, IOMMU_IOAS_UNMAP, &u);
	*done = u.length;
	return rc;
}

static int setup_type1(const char *bdf, const char *group)
{
	char p[64];
	container = open("/dev/vfio/vfio", O_RDWR);
	D("open container -> %s", container < 0 ? rs(-1) : "ok");
	snprintf(p, sizeof(p), "/dev/vfio/%s", group);
	int g = open(p, O_RDWR);
	D("open group -> %s", g < 0 ? rs(-1) : "ok");
	if (container < 0 || g < 0) return -1;
	D("group.set_container -> %s", rs(ioctl(g, VFIO_GROUP_SET_CONTAINER, &container)));
	D("container.set_iommu TYPE1v2 -> %s", rs(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)));
	dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, bdf);
	D("group.get_device_fd -> %s", dev < 0 ? rs(-1) : "ok");
	return dev < 0 ? -1 : 0;
}

static int attach(uint32_t pt)
{
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = pt };
	int rc = ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at);
	return rc < 0 ? rc : (int)at.pt_id;
}

static int setup_iommufd(const char *bdf)
{
	char p[256], cdev[300] = "";
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	DIR *d = opendir(p);
	struct dirent *e;
	while (d && (e = readdir(d))) if (!strncmp(e->d_name, "vfio", 4)) snprintf(cdev, sizeof(cdev), "/dev/vfio/devices/%s", e->d_name);
	if (d) closedir(d);
	D("vfio-dev entry %s", cdev[0] ? "found" : "(none)");
	iommufd = open("/dev/iommu", O_RDWR);
	dev = open(cdev, O_RDWR);
	D("open iommufd, cdev -> %s, %s", iommufd < 0 ? "fail" : "ok", dev < 0 ? "fail" : "ok");
	if (iommufd < 0 || dev < 0) return -1;
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommufd };
	D("bind -> %s", rs(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b)));
	devid = b.out_devid;
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	D("ioas_alloc -> %s", rs(ioctl(iommufd, IOMMU_IOAS_ALLOC, &a)));
	ioas = a.out_ioas_id;
	int pt = attach(ioas);
	D("attach ioas -> %s", pt < 0 ? rs(-1) : "ok (a new auto HWPT)");
	return pt < 0 ? -1 : 0;
}

/* ---- info ---- */
static const char *const REGION[] = { "bar0", "bar1", "bar2", "bar3", "bar4", "bar5", "rom", "config", "vga" };
static const char *const IRQ[] = { "intx", "msi", "msix", "err", "req" };

static void device_info(const char *bdf)
{
	sysfs_line(bdf, "vendor");
	sysfs_line(bdf, "device");
	sysfs_line(bdf, "class");
	sysfs_line(bdf, "subsystem_vendor");
	sysfs_line(bdf, "subsystem_device");
	struct vfio_device_info di = { .argsz = sizeof(di) };
	int rc = ioctl(dev, VFIO_DEVICE_GET_INFO, &di);
	D("get_info -> %s flags=0x%x num_regions=%u num_irqs=%u", rs(rc), di.flags, di.num_regions, di.num_irqs);
	for (unsigned i = 0; i < di.num_regions && i < 9; i++) {
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = i };
		int rc = ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri);
		D("region %s -> %s size=0x%llx flags=0x%x", REGION[i], rs(rc), (unsigned long long)ri.size, ri.flags);
		if (i == VFIO_PCI_CONFIG_REGION_INDEX) cfg_off = ri.offset;
		if (i == VFIO_PCI_BAR0_REGION_INDEX) bar0_off = ri.offset;
	}
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = di.num_regions };
	D("region index num_regions -> %s", rs(ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri)));
	for (unsigned i = 0; i < di.num_irqs && i < 5; i++) {
		struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = i };
		int rc = ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii);
		D("irq %s -> %s flags=0x%x count=%u", IRQ[i], rs(rc), ii.flags, ii.count);
	}
	struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = di.num_irqs };
	D("irq index num_irqs -> %s", rs(ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii)));

	D("cfg vendor=0x%04x device=0x%04x revision=0x%02x class=0x%06x header=0x%02x", cfg(0, 2), cfg(2, 2), cfg(8, 1), cfg(9, 4) & 0xffffff, cfg(0xe, 1));
	D("cfg subsystem=0x%04x:0x%04x interrupt_pin=%u status=0x%04x", cfg(0x2c, 2), cfg(0x2e, 2), cfg(0x3d, 1), cfg(6, 2));
	for (unsigned pos = cfg(0x34, 1), n = 0; pos && n < 16; pos = cfg(pos + 1, 1), n++)
		D("cfg capability 0x%02x id=0x%02x flags=0x%04x", pos, cfg(pos, 1), cfg(pos + 2, 2));
	D("cfg bar0 low bits=0x%x", cfg(0x10, 4) & 0xf);
	cfgw(4, cfg(4, 2) | 0x6, 2); /* memory space + bus master */
	D("cfg command memory=%u master=%u", cfg(4, 2) >> 1 & 1, cfg(4, 2) >> 2 & 1);
}

static void bar_accesses(void)
{
	D("bar0 id 0x%08x", rd32(0));
	wr32(4, 0x0f0f0001);
	D("bar0 liveness 0x%08x", rd32(4));
	uint64_t q = 0;
	uint16_t h = 0;
	uint8_t b = 0;
	ssize_t n = pread(dev, &q, 8, bar0_off + 0);
	D("bar0 pread8 0x00 -> %zd 0x%016llx", n, (unsigned long long)q);
	wr64(0x80, 0x1122334455667788ull);
	q = 0;
	n = pread(dev, &q, 8, bar0_off + 0x80);
	D("bar0 pread8 0x80 -> %zd 0x%016llx", n, (unsigned long long)q);
	D("bar0 pread4 0x80 0x%08x", rd32(0x80));
	wr64(0x80, 0);
	n = pread(dev, &h, 2, bar0_off + 4);
	D("bar0 pread2 0x04 -> %zd 0x%04x", n, h);
	n = pread(dev, &b, 1, bar0_off + 0);
	D("bar0 pread1 0x00 -> %zd 0x%02x", n, b);
	n = pread(dev, &q, 8, bar0_off + 4);
	D("bar0 pread8 0x04 (4-aligned) -> %zd 0x%016llx", n, (unsigned long long)q);
	D("bar0 unimplemented 0x10 0x%08x", rd32(0x10));
	n = pread(dev, &q, 8, bar0_off + 0x100000 - 4);
	D("bar0 pread8 across the end -> %s", n < 0 ? rs(-1) : "short");
	n = pread(dev, &q, 4, bar0_off + 0x100000);
	D("bar0 pread4 at the end -> %s", n < 0 ? rs(-1) : "data");
	wr32(8, 10);
	for (int i = 0; i < 1000 && (rd32(0x20) & 1); i++) usleep(100);
	D("bar0 factorial 10 -> %u", rd32(8));
}

/* ---- interrupts ---- */
static int set_irq(unsigned index, unsigned action, int fd)
{
	char buf[sizeof(struct vfio_irq_set) + sizeof(int)];
	struct vfio_irq_set *s = (void *)buf;
	s->argsz = sizeof(buf);
	s->index = index;
	s->start = 0;
	if (fd == -2) { s->argsz = sizeof(*s); s->flags = VFIO_IRQ_SET_DATA_NONE | action; s->count = action == VFIO_IRQ_SET_ACTION_TRIGGER ? 0 : 1; }
	else { s->flags = VFIO_IRQ_SET_DATA_EVENTFD | action; s->count = 1; memcpy(s->data, &fd, sizeof(fd)); }
	return ioctl(dev, VFIO_DEVICE_SET_IRQS, s);
}
static uint64_t wait_efd(int efd)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t v = 0;
	if (poll(&p, 1, 2000) == 1 && read(efd, &v, 8) == 8) return v;
	return 0;
}

static void interrupts(void)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	D("msi enable -> %s", rs(set_irq(VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, efd)));
	wr32(0x60, 0x42);
	uint64_t ev = wait_efd(efd);
	D("msi raise 0x42: eventfd %llu, irq status 0x%x", (unsigned long long)ev, rd32(0x24));
	wr32(0x64, 0x42);
	D("msi ack: irq status 0x%x", rd32(0x24));
	wr32(0x20, 0x80);
	wr32(8, 5);
	ev = wait_efd(efd);
	uint32_t fact = rd32(8);
	D("msi factorial 5: eventfd %llu, result %u, irq status 0x%x", (unsigned long long)ev, fact, rd32(0x24));
	wr32(0x64, 1);
	wr32(0x20, 0);
	D("msi disable -> %s", rs(set_irq(VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, -2)));
	D("intx trigger -> %s", rs(set_irq(VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, efd)));
	wr32(0x60, 0x8);
	ev = wait_efd(efd);
	D("intx raise 0x8: eventfd %llu, irq status 0x%x", (unsigned long long)ev, rd32(0x24));
	wr32(0x64, 0x8);
	D("intx unmask -> %s", rs(set_irq(VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, -2)));
	wr32(0x60, 0x10);
	D("intx raise 0x10 again: eventfd %llu", (unsigned long long)wait_efd(efd));
	wr32(0x64, 0x10);
	set_irq(VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, -2);
	D("intx disable -> %s", rs(set_irq(VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, -2)));
	D("err trigger -> %s", rs(set_irq(VFIO_PCI_ERR_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, efd)));
	D("req trigger -> %s", rs(set_irq(VFIO_PCI_REQ_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, efd)));
	D("msix trigger -> %s", rs(set_irq(VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, efd)));
	close(efd);
}

/* ---- DMA ---- */
#define BUF 0x40000u
#define LEN 0x400u
static int dma(uint64_t src, uint64_t dst, uint32_t cnt, int to_ram)
{
	wr64(0x80, src); wr64(0x88, dst); wr64(0x90, cnt);
	wr32(0x98, 1u | (to_ram ? 2u : 0u));
	for (int i = 0; i < 100; i++) {
		if (!(rd32(0x98) & 1)) return 0;
		usleep(10000);
	}
	return -1;
}
static const char *look(const uint8_t *p, size_t n, const uint8_t *pat)
{
	static char bufs[4][64];
	static int next;
	char *s = bufs[next++ & 3];
	size_t i, same = 0;
	for (i = 0; i < n; i++) same += pat && p[i] == pat[i];
	if (pat && same == n) return "the pattern";
	for (i = 1; i < n && p[i] == p[0]; i++) ;
	if (i == n) { snprintf(s, 64, "all 0x%02x", p[0]); return s; }
	snprintf(s, 64, "mixed (%zu of %zu bytes the pattern)", same, n);
	return s;
}

static void dmas(void)
{
	uint8_t *mem = mmap(NULL, 6 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *src = mem, *dst = mem + 4096, *spare = mem + 8192, *ro = mem + 12288;
	uint8_t pat[LEN];
	for (unsigned i = 0; i < LEN; i++) pat[i] = (uint8_t)(i * 11 + 5);
	memcpy(src, pat, LEN);
	memset(dst, 0, 4096); memset(spare, 0x33, 4096); memset(ro, 0x44, 4096);
	D("map 0x100000 +0x3000 rw -> %s", rs(map(0x100000, mem, 0x3000, 1)));
	D("map 0x200000 +0x1000 ro -> %s", rs(map(0x200000, ro, 0x1000, 0)));
	int a = dma(0x100000, BUF, LEN, 0), b = dma(BUF + 0x100, 0x101000, LEN - 0x100, 1);
	D("dma round trip (device offset 0x100) -> %d %d, dst %s", a, b, look(dst, LEN - 0x100, pat + 0x100));
	kmsg_drain("round trip");
	D("dma round trip, dst beyond the count %s", look(dst + LEN - 0x100, 0x100, NULL));
	a = dma(0x100000 + 0x3f8, BUF + 0x10, 8, 0);
	b = dma(BUF + 0x10, 0x101ff8, 8, 1);
	D("dma 8 bytes to the last bytes of a page -> %d %d, bytes %s", a, b, look(dst + 0xff8, 8, pat + 0x3f8));
	a = dma(0x100ffc, BUF, 8, 0);
	D("dma read crossing into the next mapped page -> %d", a);
	memset(dst, 0x55, 4096);
	a = dma(0x900000, BUF, LEN, 0); b = dma(BUF, 0x101000, LEN, 1);
	D("dma from unmapped 0x900000 -> %d, device buffer then %s", a, look(dst, LEN, pat));
	kmsg_drain("from unmapped");
	dma(0x100000, BUF, LEN, 0);
	memset(dst, 0x55, 4096);
	a = dma(BUF, 0x900000, LEN, 1);
	D("dma to unmapped 0x900000 -> %d, mapped pages %s/%s/%s", a, look(dst, 4096, NULL), look(spare, 4096, NULL), look(ro, 4096, NULL));
	kmsg_drain("to unmapped");
	a = dma(BUF, 0x200000, LEN, 1);
	D("dma to read-only 0x200000 -> %d, page %s", a, look(ro, 4096, NULL));
	kmsg_drain("to read-only");
	a = dma(0x200000, BUF, LEN, 0); b = dma(BUF, 0x101000, LEN, 1);
	D("dma from read-only 0x200000 -> %d %d, data %s", a, b, look(dst, LEN, NULL));
	kmsg_drain("from read-only");
	dma(0x100000, BUF, LEN, 0);
	a = dma(BUF, 0x20102000, LEN, 1);
	D("dma to 0x20102000 (28-bit mask) -> %d, iova 0x102000 %s", a, look(spare, LEN, pat));
	kmsg_drain("mask");
	memset(spare, 0x33, 4096);
	a = dma(BUF, 0xff0102000ull, LEN, 1);
	D("dma to 0xff0102000 (28-bit mask) -> %d, iova 0x102000 %s", a, look(spare, LEN, pat));
	/* a transfer that runs from a mapped page into an unmapped one (0x103000) */
	memset(spare, 0x33, 4096);
	memset(dst, 0x55, 4096);
	a = dma(0x102c00, BUF, 0x800, 0); b = dma(BUF, 0x101000, 0x800, 1);
	D("dma read 0x102c00+0x800 into unmapped -> %d %d, first half %s, second half %s", a, b, look(dst, 0x400, NULL), look(dst + 0x400, 0x400, NULL));
	kmsg_drain("read across");
	dma(0x100000, BUF, 0x800, 0);
	a = dma(BUF, 0x102c00, 0x800, 1);
	D("dma write 0x102c00+0x800 into unmapped -> %d, page end %s, page start %s", a, look(spare + 0xc00, 0x400, pat), look(spare, 0xc00, NULL));
	kmsg_drain("write across");
	uint64_t done = 0;
	int rc = unmap(0x101000, 0x1000, &done);
	D("unmap middle page 0x101000 -> %s done=0x%llx", rs(rc), (unsigned long long)done);
	rc = unmap(0x100000, 0x3000, &done);
	D("unmap 0x100000 +0x3000 -> %s done=0x%llx", rs(rc), (unsigned long long)done);
	memset(dst, 0x55, 4096);
	a = dma(BUF, 0x101000, LEN, 1);
	D("dma after unmap -> %d, old page %s", a, look(dst, 4096, NULL));
	kmsg_drain("after unmap");
	D("map again -> %s", rs(map(0x100000, mem, 0x3000, 1)));
	a = dma(BUF, 0x101000, LEN, 1);
	D("dma after map again -> %d, page %s", a, look(dst, LEN, pat));
	kmsg_drain("map again");

	if (iommufd >= 0) {
		struct vfio_device_detach_iommufd_pt dt = { .argsz = sizeof(dt) };
		D("detach -> %s", rs(ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt)));
		memset(dst, 0x55, 4096);
		a = dma(BUF, 0x101000, LEN, 1);
		D("dma while detached -> %d, page %s", a, look(dst, 4096, NULL));
		kmsg_drain("detached");
		struct iommu_hwpt_alloc h = { .size = sizeof(h), .dev_id = devid, .pt_id = ioas };
		D("hwpt_alloc -> %s", rs(ioctl(iommufd, IOMMU_HWPT_ALLOC, &h)));
		int pt = attach(h.out_hwpt_id);
		D("attach hwpt -> %s", pt < 0 ? rs(-1) : pt == (int)h.out_hwpt_id ? "ok (same id)" : "ok (other id)");
		a = dma(BUF, 0x101000, LEN, 1);
		D("dma on the new hwpt -> %d, page %s", a, look(dst, LEN, pat));
		kmsg_drain("new hwpt");
		struct iommu_destroy ds = { .size = sizeof(ds), .id = h.out_hwpt_id };
		D("destroy attached hwpt -> %s", rs(ioctl(iommufd, IOMMU_DESTROY, &ds)));
		pt = attach(ioas);
		D("attach ioas again -> %s", pt < 0 ? rs(-1) : "ok");
		D("destroy hwpt -> %s", rs(ioctl(iommufd, IOMMU_DESTROY, &ds)));
	}
	unmap(0x100000, 0x3000, &done);
	unmap(0x200000, 0x1000, &done);
	munmap(mem, 6 * 4096);
}

int main(int argc, char **argv)
{
	const char *bdf = getenv("EDU_BDF"), *group = getenv("EDU_GROUP");
	if (argc < 2 || !bdf || !group) { fprintf(stderr, "usage: EDU_BDF=... EDU_GROUP=... %s type1|iommufd\n", argv[0]); return 2; }
	mode = argv[1];
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	D("open /dev/kmsg -> %s", kmsg < 0 ? rs(-1) : "ok");
	if (kmsg >= 0) D("lseek /dev/kmsg SEEK_END -> %s", lseek(kmsg, 0, SEEK_END) < 0 ? rs(-1) : "ok");
	int rc = !strcmp(mode, "type1") ? setup_type1(bdf, group) : !strcmp(mode, "iommufd") ? setup_iommufd(bdf) : -2;
	if (rc == -2) return 2;
	if (rc) { D("setup failed"); return 1; }
	device_info(bdf);
	bar_accesses();
	interrupts();
	dmas();
	D("done");
	return 0;
}
