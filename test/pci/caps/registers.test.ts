import t from 'tap';
import { ATS_CAP, ATS_CTRL, ATS_REGS } from '../../../src/pci/caps/ats.ts';
import { MSI_FLAGS, MSI_REGS } from '../../../src/pci/caps/msi.ts';
import { MSIX_BIR, MSIX_ENTRY, MSIX_FLAGS } from '../../../src/pci/caps/msix.ts';
import { PASID_CAP, PASID_CTRL } from '../../../src/pci/caps/pasid.ts';
import { PCIE, PCIE_DEVCTL, PCIE_DEVSTA, PCIE_FLAGS, PCIE_LNKSTA, PCIE_REGS } from '../../../src/pci/caps/pcie-regs.ts';
import { PRI, PRI_CTRL, PRI_REGS, PRI_STATUS } from '../../../src/pci/caps/pri.ts';
import { ACS_BITS } from '../../../src/pci/caps/acs.ts';

// The masks drivers use are taken from the register tables; these are the values Linux's
// include/uapi/linux/pci_regs.h gives the same bits (PCI_ATS_*, PCI_PRI_*, PCI_PASID_*, PCI_MSI_*, PCI_MSIX_*, PCI_EXP_*, PCI_ACS_*).
t.test('capability field masks taken from the tables are the architected bits', async (t) => {
  t.same({ ...ATS_CAP }, { QDEP: 0x1f, PAGE_ALIGNED: 0x20, GLOBAL_INVALIDATE: 0x40, RELAXED_ORDERING: 0x80 });
  t.same({ ...ATS_CTRL }, { STU: 0x1f, ENABLE: 0x8000 });
  t.same({ ...PRI_CTRL }, { ENABLE: 0x1, RESET: 0x2 });
  t.same({ ...PRI_STATUS }, { RF: 0x1, UPRGI: 0x2, STOPPED: 0x100, PASID_REQUIRED: 0x8000 });
  t.same([PRI.CTRL, PRI.STATUS, PRI.MAX_REQ, PRI.ALLOC_REQ], [0x4, 0x6, 0x8, 0xc]);
  t.same({ ...PASID_CAP }, { EXEC: 0x2, PRIV: 0x4, WIDTH: 0x1f00 });
  t.same({ ...PASID_CTRL }, { ENABLE: 0x1, EXEC: 0x2, PRIV: 0x4 });
  t.same({ ...MSI_FLAGS }, { ENABLE: 0x1, MMC: 0xe, MME: 0x70, ADDR64: 0x80, PVM: 0x100 });
  t.same({ ...MSIX_FLAGS }, { QSIZE: 0x7ff, FUNCTION_MASK: 0x4000, ENABLE: 0x8000 });
  t.same({ ...MSIX_BIR }, { BIR: 0x7, OFFSET: 0xfffffff8 });
  t.equal(MSIX_ENTRY.CTRL_MASKBIT, 1);
  t.equal(PCIE_FLAGS.TYPE, 0xf0);
  t.same([PCIE_DEVCTL.MPS, PCIE_DEVCTL.MRRS, PCIE_DEVCTL.FLR], [0xe0, 0x7000, 0x8000]);
  t.same([PCIE_LNKSTA.CLS, PCIE_LNKSTA.NLW, PCIE_LNKSTA.LBMS, PCIE_LNKSTA.LABS], [0xf, 0x3f0, 0x4000, 0x8000]);
  t.same([PCIE.DEVCTL, PCIE.LNKSTA, PCIE.DEVCTL2, PCIE.SIZEOF_V2], [0x08, 0x12, 0x28, 0x3c]);
  t.same({ ...ACS_BITS }, { SV: 0x1, TB: 0x2, RR: 0x4, CR: 0x8, UF: 0x10, EC: 0x20, DT: 0x40 });
});

t.test('the access column gives the writable and RW1C bits', async (t) => {
  t.equal(ATS_REGS.writableMask('CTRL'), ATS_CTRL.STU | ATS_CTRL.ENABLE);
  t.equal(ATS_REGS.writableMask('CAP'), 0, 'read-only');
  t.equal(PRI_REGS.w1cMask('STATUS'), PRI_STATUS.RF | PRI_STATUS.UPRGI);
  t.equal(PRI_REGS.writableMask('ALLOC_REQ'), 0xffffffff, 'a register without fields is wholly its access');
  t.equal(MSI_REGS.writableMask('FLAGS'), MSI_FLAGS.ENABLE | MSI_FLAGS.MME);
  t.equal(MSI_REGS.writableMask('ADDRESS_LO'), 0xfffffffc, 'Message Address bits 1:0 are reserved');
  t.equal(PCIE_REGS.w1cMask('DEVSTA'), PCIE_DEVSTA.CED | PCIE_DEVSTA.NFED | PCIE_DEVSTA.FED | PCIE_DEVSTA.URD);
});

t.test('capability fields are typed: a misspelt register or field does not compile', async (t) => {
  t.equal(PCIE_REGS.get('DEVCTL', 0x5000 | 0x40, 'MRRS'), 5);
  t.equal(PCIE_REGS.pack('FLAGS', { VERSION: 2, TYPE: 4 }), 0x42);
  // @ts-expect-error MRRS is a Device Control field, not a Device Status one
  t.throws(() => PCIE_REGS.get('DEVSTA', 0, 'MRRS'));
  // @ts-expect-error misspelt register
  t.throws(() => PCIE_REGS.get('DEVCTRL', 0, 'MRRS'));
  // @ts-expect-error misspelt field
  t.throws(() => ATS_REGS.pack('CTRL', { ENABLED: 1 }));
});
