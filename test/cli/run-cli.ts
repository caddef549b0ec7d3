/** The ioemu command run in this process, its output collected: what the CLI tests call. */
import { main, type Io } from '../../cli/main.ts';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function cli(...argv: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => void (out += s), err: (s) => void (err += s) };
  const code = await main(argv, io);
  return { code, out, err };
}
