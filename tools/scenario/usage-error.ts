import { CallerError } from '../../src/errors.ts';

/**
 * A bad command line or scenario input (an unknown option, a parameter out
 * of range): exit status 2 when the CLI meets it before a run; a scenario
 * that throws one has failed (exit 1).
 */
export class UsageError extends CallerError {
  override name = 'UsageError';
}
