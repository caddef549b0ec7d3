/**
 * VFIO type1 on the emulated kernel: the container, group and device files
 * of drivers/vfio with the Linux uapi, vfio-pci, and the SVA bind proposal.
 */
export { bindVfioPci, VFIO_CDEV_MAJOR } from './bind.ts';
export { vfioModule, setCdevIommufdOps, VfioModule, type VfioOptions, type CdevIommufdOps } from './module.ts';
export { VfioContainer, ContainerFile } from './container.ts';
export { VfioGroup, GroupFile } from './group-file.ts';
export { VfioDeviceFile } from './device-file.ts';
export { VfioPciDevice } from './vfio-pci.ts';
export { VfioIommu, type VfioDma, type VfioDomain, type DmaRun } from './type1.ts';
export { VFIO_INJECTION_POINTS, type VfioInjectionPointName } from './points.ts';
export { VfioClient, VfioError, type IommuInfo, type RegionInfo } from './client.ts';
export { benchMap, type MapBenchFigures } from './bench-map.ts';
export { setMsiCookie, msiAddressFor } from './msi-cookie.ts';
export * from '../uapi/vfio.ts';
