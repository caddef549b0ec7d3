/** Campaign worker started through tsx: the scenario modules are imported (TypeScript) as jobs name them. */
import { serveJobs } from './worker-loop.ts';

serveJobs(new Map());
