/**
 * `npm run campaign -- <mode> [options]`: an alias of `ioemu campaign`
 * (cli/campaign/command.ts; `ioemu campaign --help` lists the modes).
 */
import { main } from '../main.ts';

process.exitCode = await main(['campaign', ...process.argv.slice(2)]);
