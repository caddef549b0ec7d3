/**
 * An error ioemu throws on purpose at its caller: input that breaks a
 * documented rule of the API (an unknown BDF, a bad plan, a bad parameter),
 * or an operation a helper reports as failed (a VFIO ioctl or a VMM step
 * that returned -errno, perhaps because a plan injected a fault). It is the
 * caller's to handle: a scenario that lets one escape has failed (exit 1),
 * it is not a fault inside ioemu. Any other exception thrown inside ioemu's
 * own code is (DESIGN.md §5: like a kernel oops; the CLI exits 3).
 */
export class CallerError extends Error {
  override name = 'CallerError';
}
