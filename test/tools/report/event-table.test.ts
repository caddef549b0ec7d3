import t from 'tap';
import { EVENT_TABLE_SCRIPT, eventRows, eventTableHtml, ROWS_PER_PAGE, type EventRow } from '../../../tools/report/event-table.ts';
import type { ChromeTraceEvent } from '../../../src/trace/chrome-trace.ts';

/** The page's own script, run outside a browser: its pure part. */
const table = new Function(`return ${EVENT_TABLE_SCRIPT}`)() as {
  matches(r: EventRow, f: { source: string; event: string; text: string }): boolean;
  pageOf(rows: EventRow[], f: { source: string; event: string; text: string }, page: number, per: number): { rows: EventRow[]; page: number; pages: number; total: number };
};

const rows: EventRow[] = Array.from({ length: 120 }, (_, i) => [`${i} ns`, i % 3 === 0 ? 'smmuv3' : 'dma0', i % 2 === 0 ? 'smmuv3.cmd' : 'dma.transaction', `addr=0x${i.toString(16)}`]);
const all = { source: '', event: '', text: '' };

t.test('the table pages 50 rows at a time and clamps the page number', async (t) => {
  const p0 = table.pageOf(rows, all, 0, ROWS_PER_PAGE);
  t.equal(p0.pages, 3);
  t.equal(p0.total, 120);
  t.equal(p0.rows.length, 50);
  const p2 = table.pageOf(rows, all, 2, ROWS_PER_PAGE);
  t.equal(p2.rows.length, 20, 'the last page holds the rest');
  t.equal(table.pageOf(rows, all, 9, ROWS_PER_PAGE).page, 2, 'past the end: the last page');
  t.equal(table.pageOf(rows, all, -1, ROWS_PER_PAGE).page, 0);
});

t.test('filters by source, by event and by text combine', async (t) => {
  const v = table.pageOf(rows, { source: 'smmuv3', event: 'smmuv3.cmd', text: '' }, 0, 1000);
  t.equal(v.total, 20, 'i divisible by 6');
  t.ok(v.rows.every((r) => r[1] === 'smmuv3' && r[2] === 'smmuv3.cmd'));
  t.equal(table.pageOf(rows, { ...all, text: 'ADDR=0X1F' }, 0, 50).total, 1, 'text search ignores case');
  const none = table.pageOf(rows, { ...all, text: 'nothing like this' }, 0, 50);
  t.same([none.total, none.pages, none.rows.length], [0, 1, 0]);
});

t.test('rows are in time order, spans at their start, arguments formatted; the HTML is collapsed with the first page written out', async (t) => {
  const ev: ChromeTraceEvent[] = [
    { name: 'thread_name', ph: 'M', ts: 0, pid: 1, tid: 1, args: { name: 'dma0' } },
    { name: 'dma.transaction', ph: 'i', ts: 3, pid: 1, tid: 1, args: { addr: 4096 } },
    { name: 'dma-engine.desc.complete', ph: 'X', ts: 1, dur: 2.5, pid: 1, tid: 1, args: { status: 'SUCCESS' } },
    { name: 'x.count', ph: 'C', ts: 2, pid: 1, tid: 0, args: { value: 3 } },
  ];
  const r = eventRows(ev, new Map([[1, 'dma0']]));
  t.same(r, [
    ['1.000 us', 'dma0', 'dma-engine.desc.complete', 'status="SUCCESS" (took 2.500 us)'],
    ['3.000 us', 'dma0', 'dma.transaction', 'addr=0x1000'],
  ]);
  const html = eventTableHtml(rows, 'events-0');
  t.match(html, /^<details class="events">/, 'collapsed by default');
  t.equal((html.match(/<tr><td>/g) ?? []).length, ROWS_PER_PAGE, 'the first page is in the HTML');
  t.match(html, /<option value="smmuv3">smmuv3 \(40\)<\/option>/);
  t.match(html, /<script type="application\/json" id="events-0">/);
  t.notMatch(eventTableHtml([['0 ns', 's', 'e', '</script><b>']], 'x'), /<\/script><b>/, 'row text cannot close the script element');
});
