/**
 * Scenarios described in JSON: `{ "name", "description", "machine"?, "options"?, "steps": [...] }`.
 * `options` holds machine options: `smmuPri` (`"mainline"` or `"posted-series"`: how
 * virt-smmuv3's driver treats PRI; a scenario that needs page requests serviced there
 * says `"posted-series"`). `--param smmu-pri` overrides it.
 * Steps run in order; each is an object whose `do` names it:
 *
 * | step | fields | what it does |
 * | --- | --- | --- |
 * | `spawn` | `memlockMiB`? (64) | starts the process every later step acts as (one per scenario) |
 * | `vfio-setup` | `device` (BDF), `via`? `"type1"` (default) or `"iommufd"` | QEMU's type1 or iommufd sequence for the device; enables its engine |
 * | `map` | `device`, `iova`, `bytes` | mmap (populated) and MAP_DMA / IOAS_MAP it at `iova` |
 * | `dma` | `device`, `iova`, `bytes`, `write`? | one DMA read (or write of a pattern) from the device at `iova` |
 * | `sva-bind` | `device` | VFIO_IOMMU_BIND (type1 devices) or the host SVA bind (iommufd devices) |
 * | `engine-memmove` | `device`, `pages`, `via`? `"portal"` / `"ring"`, `retries`? (0) | a MEMMOVE over `pages` untouched pages in the bound address space |
 * | `inject` | `plan` (a fault plan object) | arms the plan (src/fault/plan.ts) |
 * | `run` | | runs the machine until no event is pending |
 *
 * Addresses (`iova`) are numbers or "0x..." strings. Any failed step fails
 * the scenario (exit status 1) and the remaining steps still run where they can.
 */
import type { DmaEngine } from '../../devices/dma-engine/dma-engine.ts';
import type { SvaHandle } from '../../src/iommu-core/sva.ts';
import { DESC_STATUS } from '../../devices/dma-engine/descriptor.ts';
import type { MachineKind } from '../../machines/layout.ts';
import type { Process } from '../../src/host/process.ts';
import { EngineUser } from './engine-user.ts';
import { MACHINE_KINDS, UsageError, type Scenario, type ScenarioContext } from './scenario.ts';
import { ioasMap, iommufdSetup, vfioType1Setup } from './vmm.ts';
import { SMMU_PRI_MODES, type SmmuPriMode } from '../../iommu/smmuv3/driver/driver.ts';

type Step = Record<string, unknown> & { do: string };

const STEP_FIELDS: Record<string, string[]> = {
  spawn: ['memlockMiB'],
  'vfio-setup': ['device', 'via'],
  map: ['device', 'iova', 'bytes'],
  dma: ['device', 'iova', 'bytes', 'write'],
  'sva-bind': ['device'],
  'engine-memmove': ['device', 'pages', 'via', 'retries'],
  inject: ['plan'],
  run: [],
};

const PAGE = 4096;

function num(x: unknown, what: string): number {
  const n = typeof x === 'string' ? Number(x.replace(/_/g, '')) : x;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new UsageError(`${what}: must be a non-negative integer (or a "0x..." string)`);
  return n;
}

/** Validate a parsed JSON scenario; throws UsageError naming every problem. */
export function parseJsonScenario(x: unknown, source = 'scenario'): Scenario {
  const errors: string[] = [];
  const o = x as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new UsageError(`${source}: must be an object { name, description, machine?, steps: [...] }`);
  if (typeof o.name !== 'string') errors.push('name: must be a string');
  if (o.machine !== undefined && !MACHINE_KINDS.includes(o.machine as MachineKind)) errors.push(`machine: must be ${MACHINE_KINDS.join(' or ')}`);
  if (!Array.isArray(o.steps)) errors.push('steps: must be an array');
  const opts = o.options as Record<string, unknown> | undefined;
  if (opts !== undefined) {
    if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) errors.push('options: must be an object { smmuPri? }');
    else {
      for (const k of Object.keys(opts)) if (k !== 'smmuPri') errors.push(`options: unknown field "${k}" (allowed: smmuPri)`);
      if (opts.smmuPri !== undefined && !SMMU_PRI_MODES.includes(opts.smmuPri as SmmuPriMode)) errors.push(`options.smmuPri: must be one of ${SMMU_PRI_MODES.join(', ')}`);
    }
  }
  const steps = (Array.isArray(o.steps) ? o.steps : []) as Step[];
  steps.forEach((s, i) => {
    if (typeof s !== 'object' || s === null || typeof s.do !== 'string' || !(s.do in STEP_FIELDS)) {
      errors.push(`steps[${i}].do: must be one of ${Object.keys(STEP_FIELDS).join(', ')}`);
      return;
    }
    for (const k of Object.keys(s)) if (k !== 'do' && !STEP_FIELDS[s.do]!.includes(k)) errors.push(`steps[${i}] (${s.do}): unknown field "${k}" (allowed: ${STEP_FIELDS[s.do]!.join(', ') || 'none'})`);
    for (const k of ['device'] as const) if (STEP_FIELDS[s.do]!.includes(k) && typeof s[k] !== 'string') errors.push(`steps[${i}] (${s.do}).${k}: must be a BDF string`);
  });
  if (errors.length > 0) throw new UsageError(`${source}: invalid scenario:\n  ${errors.join('\n  ')}`);
  return {
    name: o.name as string,
    description: typeof o.description === 'string' ? o.description : '',
    ...(o.machine !== undefined ? { machine: o.machine as MachineKind } : {}),
    ...(opts?.smmuPri !== undefined ? { options: { smmuPri: opts.smmuPri as SmmuPriMode } } : {}),
    run: (ctx) => runSteps(ctx, steps),
  };
}

interface Dev {
  via: 'type1' | 'iommufd';
  e: EngineUser;
  container?: number;
  iommufd?: number;
  ioas?: number;
  pasid?: number;
  wq: number;
}

function runSteps(ctx: ScenarioContext, steps: Step[]): void {
  const m = ctx.machine;
  let p: Process | undefined;
  const devs = new Map<string, Dev>();
  /** Bonds made with the IOMMU core directly, as a kernel driver would; it unbinds them when its user goes. */
  const bonds: SvaHandle[] = [];
  const proc = (): Process => (p ??= m.host.spawn({ memlockLimit: 64 * 2 ** 20 }));
  const dev = (s: Step): Dev => {
    const d = devs.get(m.device(s.device as string).bdf);
    if (d === undefined) throw new Error(`${String(s.device)}: no vfio-setup step for this device yet`);
    return d;
  };
  steps.forEach((s, i) => {
    const at = `step ${i + 1} (${s.do})`;
    try {
      switch (s.do) {
        case 'spawn':
          p = m.host.spawn({ memlockLimit: (s.memlockMiB === undefined ? 64 : num(s.memlockMiB, `${at}.memlockMiB`)) * 2 ** 20 });
          ctx.say(`${at}: process ${p.pid}`);
          break;
        case 'vfio-setup': {
          const bdf = m.device(s.device as string).bdf;
          if (s.via === 'iommufd') {
            const f = iommufdSetup(m, proc(), bdf);
            const e = new EngineUser(proc(), f.v, f.device);
            e.enable();
            devs.set(bdf, { via: 'iommufd', e, iommufd: f.iommufd, ioas: f.ioas, wq: 0 });
            ctx.say(`${at}: ${bdf} through iommufd (dev_id ${f.devId}, IOAS ${f.ioas})`);
          } else {
            const f = vfioType1Setup(m, proc(), bdf);
            const e = new EngineUser(proc(), f.v, f.device);
            e.enable();
            devs.set(bdf, { via: 'type1', e, container: f.container, wq: 0 });
            ctx.say(`${at}: ${bdf} through VFIO type1 (group ${f.groupId})`);
          }
          break;
        }
        case 'map': {
          const d = dev(s);
          const bytes = num(s.bytes, `${at}.bytes`);
          const iova = BigInt(num(s.iova, `${at}.iova`));
          const va = proc().mmap(bytes, { populate: true });
          if (d.via === 'type1') {
            const r = d.e.v.mapDma(d.container!, { vaddr: va, iova, size: bytes });
            if (r !== 0) throw new Error(`VFIO_IOMMU_MAP_DMA failed (${r})`);
          } else ioasMap(proc(), d.iommufd!, d.ioas!, va, iova, bytes);
          ctx.say(`${at}: ${bytes} bytes at IOVA 0x${iova.toString(16)}`);
          break;
        }
        case 'dma': {
          const fn = m.device(s.device as string);
          const bytes = num(s.bytes, `${at}.bytes`);
          const iova = BigInt(num(s.iova, `${at}.iova`));
          const r = s.write === true ? fn.dmaWrite(iova, new Uint8Array(bytes).fill(0xa5)) : fn.dmaRead(iova, bytes);
          ctx.metrics.add(r.ok ? 'dma.ok' : 'dma.faults');
          ctx.say(`${at}: ${s.write === true ? 'write' : 'read'} of ${bytes} bytes at 0x${iova.toString(16)}: ${r.ok ? 'ok' : r.fault}`);
          if (!r.ok) ctx.fail(`${at}: DMA faulted (${r.fault})`);
          break;
        }
        case 'sva-bind': {
          const d = dev(s);
          let pasid: number;
          if (d.via === 'type1') pasid = d.e.v.bindProcess(d.container!);
          else {
            const h = m.host.sva.bind(m.device(s.device as string), proc().mm, proc().pid);
            if (typeof h !== 'number') bonds.push(h);
            pasid = typeof h === 'number' ? h : h.pasid;
          }
          if (pasid < 0) throw new Error(`SVA bind refused (${pasid})`);
          d.pasid = pasid;
          d.wq++;
          d.e.configWq(d.wq, { pasid });
          ctx.say(`${at}: PASID ${pasid}; PRI ${(m.device(s.device as string) as DmaEngine).pri.enabled ? 'enabled' : 'not enabled'}`);
          break;
        }
        case 'engine-memmove': {
          const d = dev(s);
          if (d.pasid === undefined) throw new Error('no sva-bind step for this device yet');
          const pages = num(s.pages, `${at}.pages`);
          const retries = s.retries === undefined ? 0 : num(s.retries, `${at}.retries`);
          const pr = proc();
          const src = pr.mmap(pages * PAGE);
          const dst = pr.mmap(pages * PAGE);
          const rec = pr.mmap(PAGE);
          const data = new Uint8Array(pages * PAGE).map((_, k) => (k * 13 + 5) & 0xff);
          pr.memWrite(src, data);
          if (s.via === 'ring') {
            const ring = pr.mmap(PAGE, { populate: true });
            d.wq++;
            d.e.configWq(d.wq, { pasid: d.pasid, ring: { deviceAddr: ring, vaddr: ring, size: 8 } });
          }
          let done = 0;
          let status = 'NONE';
          const t0 = m.now();
          for (let attempt = 0; attempt <= retries && done < pages * PAGE; attempt++) {
            pr.memWrite(rec, new Uint8Array(32));
            d.e.memmove(d.wq, { src: src + BigInt(done), dst: dst + BigInt(done), length: pages * PAGE - done, record: rec });
            m.run();
            const r = d.e.record(rec);
            status = r.statusName;
            if (r.status === DESC_STATUS.SUCCESS) done = pages * PAGE;
            else if (r.status === DESC_STATUS.PAGE_FAULT) {
              done += r.bytes;
              ctx.say(`${at}: PAGE_FAULT (${r.faultName}) after ${done} bytes`);
            } else break;
          }
          const out = pr.memRead(dst, pages * PAGE);
          const good = done === pages * PAGE && out instanceof Uint8Array && out.every((b, k) => b === data[k]);
          ctx.metrics.add(good ? 'memmove.ok' : 'memmove.failed');
          ctx.metrics.sample('memmove.ns', m.now() - t0);
          ctx.say(`${at}: ${pages} untouched pages through the ${s.via === 'ring' ? 'ring' : 'portal'}: ${good ? 'SUCCESS, data verified' : status} in ${m.now() - t0} ns`);
          if (!good) ctx.fail(`${at}: MEMMOVE did not complete (${status})`);
          break;
        }
        case 'inject': {
          const a = ctx.inject(s.plan);
          ctx.say(`${at}: armed ${a.rules.length} rule(s)`);
          break;
        }
        case 'run':
          m.run();
          ctx.say(`${at}: idle at ${m.now()} ns`);
          break;
      }
    } catch (e) {
      if (e instanceof UsageError) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      ctx.say(`${at}: FAILED: ${msg}`);
      ctx.fail(`${at}: ${msg}`);
    }
  });
  for (const h of bonds) m.host.sva.unbind(h);
  p?.exit();
}
