/**
 * The playground page: fills the form from the catalog, sends a run to the
 * worker, shows the report in a frame and offers the trace and the report
 * as downloads.
 */
import { describeRange, MACHINE_PARAMS } from '../tools/scenario/params.ts';
import type { MachineKind } from '../machines/layout.ts';
import { CATALOG, catalogEntry } from './catalog.ts';
import type { Reply, Request } from './protocol.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('form');
const machine = $<HTMLSelectElement>('machine');
const scenario = $<HTMLSelectElement>('scenario');
const seed = $<HTMLInputElement>('seed');
const params = $<HTMLDivElement>('params');
const preset = $<HTMLSelectElement>('plan-preset');
const plan = $<HTMLTextAreaElement>('plan');
const runButton = $<HTMLButtonElement>('run');
const status = $<HTMLSpanElement>('status');
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let objectUrls: string[] = [];

const send = (q: Request) => worker.postMessage(q);

function option(value: string, text: string): HTMLOptionElement {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

/** One labelled input per parameter: the scenario's own, then those every scenario takes. */
function showScenario(): void {
  const e = catalogEntry(scenario.value)!;
  $('description').textContent = e.scenario.description;
  params.textContent = '';
  const all = [...Object.entries(e.scenario.params ?? {}), ...Object.entries(MACHINE_PARAMS)];
  for (const [name, doc] of all) {
    const label = document.createElement('label');
    label.innerHTML = '<div><span></span><small></small></div><input type="text">';
    label.querySelector('span')!.textContent = name;
    label.querySelector('small')!.textContent = `${doc.description} (${describeRange(doc)})`;
    const input = label.querySelector('input')!;
    input.name = name;
    input.placeholder = doc.default === undefined ? '' : String(doc.default);
    params.appendChild(label);
  }
  preset.replaceChildren(option('', 'no plan (the scenario as it is)'), ...Object.keys(e.plans).map((k) => option(k, k)));
  plan.value = '';
  $('points').textContent = '';
  ($('points-box') as HTMLDetailsElement).open = false;
}

preset.addEventListener('change', () => {
  const p = catalogEntry(scenario.value)!.plans[preset.value];
  plan.value = p === undefined ? '' : JSON.stringify(p, null, 2);
});
scenario.addEventListener('change', showScenario);
$('points-box').addEventListener('toggle', () => {
  if (($('points-box') as HTMLDetailsElement).open) send({ type: 'points', scenario: scenario.value, machine: machine.value === 'all' ? 'q35-vtd' : (machine.value as MachineKind) });
});

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const values: Record<string, string> = {};
  for (const input of params.querySelectorAll('input')) if (input.value.trim() !== '') values[input.name] = input.value.trim();
  const machines: MachineKind[] = machine.value === 'all' ? ['virt-smmuv3', 'q35-vtd'] : [machine.value as MachineKind];
  runButton.disabled = true;
  status.textContent = 'starting...';
  send({ type: 'run', scenario: scenario.value, machines, seed: Number(seed.value) || 0, params: values, plan: plan.value });
});

function download(id: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  objectUrls.push(url);
  ($(id) as HTMLAnchorElement).href = url;
}

worker.onmessage = (e: MessageEvent<Reply>) => {
  const r = e.data;
  if (r.type === 'progress') status.textContent = r.text;
  else if (r.type === 'points') {
    $('points').replaceChildren(
      ...r.points.map((p) => {
        const d = document.createElement('div');
        d.innerHTML = '<code></code>: <span></span>';
        d.querySelector('code')!.textContent = p.name;
        d.querySelector('span')!.textContent = `${p.description} (actions: ${p.actions.join(', ')})`;
        return d;
      }),
    );
  } else if (r.type === 'error') {
    runButton.disabled = false;
    status.textContent = r.usage ? `Cannot run: ${r.message}` : `ioemu failed: ${r.message}`;
  } else {
    runButton.disabled = false;
    status.textContent = `done: ${r.events} trace events`;
    for (const u of objectUrls) URL.revokeObjectURL(u);
    objectUrls = [];
    download('download-trace', r.trace, 'application/json');
    download('download-report', r.html, 'text/html');
    const verdict = $('verdict');
    verdict.textContent = r.ok ? 'PASSED' : 'FAILED';
    verdict.className = r.ok ? 'ok' : 'bad';
    $('narrative').textContent = [...r.narrative, '', ...r.comparison].join('\n');
    $('result').hidden = false;
    const frame = $<HTMLIFrameElement>('report');
    // The frame grows with the report (its tables open and close), so the page scrolls, not the frame.
    frame.onload = () => {
      const doc = frame.contentDocument;
      if (!doc) return;
      const fit = () => void (frame.style.height = `${doc.documentElement.scrollHeight + 4}px`);
      new ResizeObserver(fit).observe(doc.body);
      fit();
    };
    frame.srcdoc = r.html;
  }
};

scenario.replaceChildren(...CATALOG.map((e) => option(e.id, `${e.scenario.name}: ${e.id}`)));
showScenario();
