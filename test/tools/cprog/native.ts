/** What a native (gcc) build in a test needs from the machine it runs on. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The Linux 7.3 tree's uapi headers (the reference rig's source), when this machine has them. */
export const LINUX_UAPI = '/root/.cache/ioemu-rig/src/linux-source-7.3/include/uapi/linux';

export function hasLinuxUapi(): boolean {
  return existsSync(`${LINUX_UAPI}/iommufd.h`);
}

export function hasGcc(): boolean {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
