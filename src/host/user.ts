import { ENOMEM } from '../uapi/errno.ts';

const PAGE = 4096;

/**
 * The per-uid accounting of the kernel's struct user_struct
 * (include/linux/sched/user.h): `locked_vm` is shared by every process of one
 * uid. iommufd's default accounting mode (IOPT_PAGES_ACCOUNT_USER, as
 * io_uring does) charges it, against the pinning task's RLIMIT_MEMLOCK
 * (incr_user_locked_vm in drivers/iommu/iommufd/pages.c); VFIO type1 and
 * iommufd's mm mode charge mm->locked_vm instead.
 */
export class UserStruct {
  /** Pages charged (user->locked_vm). */
  lockedVm = 0;
  constructor(readonly uid: number) {}

  /**
   * incr_user_locked_vm(): charge `npages` unless the total would pass
   * `limitBytes` (the task's RLIMIT_MEMLOCK; no CAP_IPC_LOCK bypass here, a
   * capable task is not charged at all). 0 or -ENOMEM, charging nothing.
   */
  charge(npages: number, limitBytes: number): number {
    if ((this.lockedVm + npages) * PAGE > limitBytes) return -ENOMEM;
    this.lockedVm += npages;
    return 0;
  }

  /** decr_user_locked_vm(). */
  uncharge(npages: number): void {
    this.lockedVm = Math.max(0, this.lockedVm - npages);
  }
}

/** The host's user_structs, one per uid (find_user/alloc_uid), kept for the host's life. */
export class Users {
  private readonly byUid = new Map<number, UserStruct>();

  get(uid: number): UserStruct {
    let u = this.byUid.get(uid);
    if (u === undefined) {
      u = new UserStruct(uid);
      this.byUid.set(uid, u);
    }
    return u;
  }

  all(): UserStruct[] {
    return [...this.byUid.values()];
  }
}
