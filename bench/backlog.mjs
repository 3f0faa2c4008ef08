// A backlog burst: N async tasks submitted at once to POST /v1/tasks, then polled until all are
// terminal. Prints counts by status, a histogram of attempts and the total time. Node 20, no
// dependencies. Run through bench/backlog.sh.
const n = Number(process.env.N ?? 10000);
const stack = process.env.STACK ?? 'http://127.0.0.1:8080';
const key = process.env.KEY;
const concurrency = Number(process.env.CONCURRENCY ?? 256); // connections in flight at once
const pollEvery = Number(process.env.POLL_MS ?? 2000);
const model = process.env.MODEL ?? 'sim-small';

const headers = { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) };
const terminal = new Set(['succeeded', 'failed', 'cancelled']);

async function pool(items, work) {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i], i);
    }
  });
  await Promise.all(workers);
}

async function submit(i) {
  const body = JSON.stringify({
    kind: 'chat',
    request: { model, max_tokens: 16, messages: [{ role: 'user', content: `backlog task ${i}` }] },
  });
  for (let tries = 0; ; tries++) {
    const res = await fetch(`${stack}/v1/tasks`, { method: 'POST', headers: { ...headers, 'Idempotency-Key': `backlog-${runId}-${i}` }, body });
    const text = await res.text();
    if (res.status === 202) return JSON.parse(text).id;
    if ((res.status === 429 || res.status === 503) && tries < 20) { // refused at the door: retry the same key
      rejected[res.status] = (rejected[res.status] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)));
      continue;
    }
    throw new Error(`submit ${i}: ${res.status} ${text.slice(0, 200)}`);
  }
}

const runId = Date.now().toString(36);
const rejected = {};
const start = Date.now();
const ids = new Array(n);
await pool([...Array(n).keys()], async (i) => { ids[i] = await submit(i); });
const submitted = Date.now();
console.log(`submitted ${n} tasks in ${((submitted - start) / 1000).toFixed(1)} s` +
  (Object.keys(rejected).length ? ` (refused and retried: ${JSON.stringify(rejected)})` : ''));

const final = new Map();
while (final.size < n) {
  await new Promise((r) => setTimeout(r, pollEvery));
  const open = ids.filter((id) => !final.has(id));
  const seen = {};
  await pool(open, async (id) => {
    const res = await fetch(`${stack}/v1/tasks/${id}`, { headers });
    if (res.status !== 200) { seen[`http ${res.status}`] = (seen[`http ${res.status}`] ?? 0) + 1; return; }
    const task = await res.json();
    seen[task.status] = (seen[task.status] ?? 0) + 1;
    if (terminal.has(task.status)) final.set(id, task);
  });
  console.log(`${((Date.now() - start) / 1000).toFixed(0)} s: ${final.size}/${n} done; open now ${JSON.stringify(seen)}`);
}
const end = Date.now();

const byStatus = {};
const attempts = {};
const errors = {};
for (const t of final.values()) {
  byStatus[t.status] = (byStatus[t.status] ?? 0) + 1;
  attempts[t.attempts] = (attempts[t.attempts] ?? 0) + 1;
  if (t.error) errors[t.error.message] = (errors[t.error.message] ?? 0) + 1;
}
console.log(`tasks: ${n}, total ${((end - start) / 1000).toFixed(1)} s (submit ${((submitted - start) / 1000).toFixed(1)} s)`);
console.log(`by status: ${JSON.stringify(byStatus)}`);
console.log(`attempts : ${JSON.stringify(attempts)}`);
if (Object.keys(errors).length) console.log(`errors   : ${JSON.stringify(errors, null, 1)}`);
