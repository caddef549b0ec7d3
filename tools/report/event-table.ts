/**
 * The report's table of trace events: collapsed by default, filterable by
 * source and event, searchable, 50 rows a page. The rows travel in the page
 * as JSON; a small inline script (EVENT_TABLE_SCRIPT, no dependencies)
 * filters and pages them. The first page is written as HTML too, so the
 * table reads without the script.
 */
import type { ChromeTraceEvent } from '../../src/trace/chrome-trace.ts';
import { esc, fmtArgs, fmtTime } from './format.ts';

/** One row: time, source (the track), event name, arguments as text. */
export type EventRow = [time: string, source: string, event: string, args: string];

/** Every instant and span of a trace, in time order (spans at their start), as table rows. */
export function eventRows(events: readonly ChromeTraceEvent[], threads: ReadonlyMap<number, string>): EventRow[] {
  const xs = events.filter((e) => e.ph === 'X' || e.ph === 'i');
  const order = xs.map((e, i) => [Math.round(e.ts * 1000), i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return order.map(([ns, i]) => {
    const e = xs[i]!;
    const dur = e.dur !== undefined ? ` (took ${fmtTime(Math.round(e.dur * 1000))})` : '';
    return [fmtTime(ns), threads.get(e.tid) ?? String(e.tid), e.name, fmtArgs(e.args) + dur];
  });
}

export const ROWS_PER_PAGE = 50;

/**
 * Filtering and paging, and the wiring of every `.evt` table of the page,
 * as one script expression. Evaluated outside a browser it returns its pure
 * part ({ matches, pageOf }), which the unit tests run.
 */
export const EVENT_TABLE_SCRIPT = `(function () {
  var PER = ${ROWS_PER_PAGE};
  function matches(r, f) {
    if (f.source && r[1] !== f.source) return false;
    if (f.event && r[2] !== f.event) return false;
    return !f.text || r.join(' ').toLowerCase().indexOf(f.text.toLowerCase()) >= 0;
  }
  function pageOf(rows, f, page, per) {
    var hit = rows.filter(function (r) { return matches(r, f); });
    var pages = Math.max(1, Math.ceil(hit.length / per));
    var p = Math.min(Math.max(0, page), pages - 1);
    return { rows: hit.slice(p * per, p * per + per), page: p, pages: pages, total: hit.length };
  }
  var api = { matches: matches, pageOf: pageOf };
  if (typeof document === 'undefined') return api;
  document.querySelectorAll('.evt').forEach(function (box) {
    var rows = JSON.parse(document.getElementById(box.getAttribute('data-rows')).textContent);
    var body = box.querySelector('tbody');
    var info = box.querySelector('[data-p=info]');
    var f = { source: '', event: '', text: '' };
    var page = 0;
    function draw() {
      var v = pageOf(rows, f, page, PER);
      page = v.page;
      body.textContent = '';
      v.rows.forEach(function (r) {
        var tr = document.createElement('tr');
        r.forEach(function (c) { var td = document.createElement('td'); td.textContent = c; tr.appendChild(td); });
        body.appendChild(tr);
      });
      info.textContent = v.total === 0 ? 'no event matches' : 'page ' + (v.page + 1) + ' of ' + v.pages + ' (' + v.total + ' events)';
      box.querySelector('[data-p=prev]').disabled = v.page === 0;
      box.querySelector('[data-p=next]').disabled = v.page >= v.pages - 1;
    }
    box.querySelectorAll('[data-f]').forEach(function (el) {
      el.addEventListener('input', function () { f[el.getAttribute('data-f')] = el.value; page = 0; draw(); });
    });
    box.querySelector('[data-p=prev]').addEventListener('click', function () { page--; draw(); });
    box.querySelector('[data-p=next]').addEventListener('click', function () { page++; draw(); });
    draw();
  });
  return api;
})()`;

/** Values of one column with how often each occurs, most frequent first, as `<option>`s. */
function options(rows: readonly EventRow[], col: 1 | 2): string {
  const n = new Map<string, number>();
  for (const r of rows) n.set(r[col], (n.get(r[col]) ?? 0) + 1);
  return [...n.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([v, c]) => `<option value="${esc(v)}">${esc(v)} (${c})</option>`)
    .join('');
}

/** JSON that is safe inside a `<script>` element. */
const scriptJson = (x: unknown): string => JSON.stringify(x).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

/** The collapsed, filterable, paginated table of `rows`; `id` must be unique in the page. */
export function eventTableHtml(rows: readonly EventRow[], id: string): string {
  if (rows.length === 0) return '';
  const first = rows.slice(0, ROWS_PER_PAGE).map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('');
  const pages = Math.ceil(rows.length / ROWS_PER_PAGE);
  return `<details class="events"><summary>All ${rows.length} traced events (instants and spans) in a table: filter by source and event, ${ROWS_PER_PAGE} a page</summary>
<div class="evt" data-rows="${id}">
<div class="controls"><label>source <select data-f="source"><option value="">all</option>${options(rows, 1)}</select></label>
<label>event <select data-f="event"><option value="">all</option>${options(rows, 2)}</select></label>
<label>containing <input data-f="text" type="search" size="18" placeholder="0x1000, PAGE_FAULT"></label>
<span class="pager"><button type="button" data-p="prev">&#9664; previous</button> <span data-p="info">page 1 of ${pages} (${rows.length} events)</span> <button type="button" data-p="next">next &#9654;</button></span></div>
<div class="scroll"><table class="evtab"><thead><tr><th>time</th><th>source</th><th>event</th><th>arguments</th></tr></thead><tbody>${first}</tbody></table></div>
</div></details>
<script type="application/json" id="${id}">${scriptJson(rows)}</script>`;
}
