/**
 * The Linux release whose uapi and behaviour the emulated host follows:
 * Debian's linux-source-7.3 (7.3.4). Every "as Linux does" in src/ means
 * this release; the README names it and the host reports it where a
 * program would read `uname -r` (/proc/sys/kernel/osrelease).
 */
export const LINUX_RELEASE = '7.3.4';
/** The major.minor series, as the README and CONTRACT.md name it. */
export const LINUX_SERIES = '7.3';
