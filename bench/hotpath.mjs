// Load steps of bench/hotpath.sh (which starts and stops the processes; run it, not this).
// Node 20 and autocannon (bench/package.json). Each step appends one JSON line per target to the
// results file; `report` prints the table.
//
//   node hotpath.mjs chat    --targets direct=URL,stack=URL --conc 1,16,64 [common]
//   node hotpath.mjs stream  --targets direct=URL,stack=URL --k 1,50       [common]
//   node hotpath.mjs tasks   --targets stack-pg=URL --conc 64              [common]
//   node hotpath.mjs warmup  --targets stack=URL --conc 16 --duration S
//   node hotpath.mjs rss     --label L --pid PID --out FILE
//   node hotpath.mjs report  --out FILE
// common: --duration S --warmup S --pids sim=PID,stack=PID --out FILE --label L
//
// Latencies are kept as floats (autocannon's 'response' event carries the response time in ms
// from process.hrtime); autocannon's own histogram rounds to whole milliseconds, too coarse for an
// added latency that should be below 1 ms.
import autocannon from 'autocannon';
import http from 'node:http';
import fs from 'node:fs';

const argv = process.argv.slice(2);
const cmd = argv[0];
const opt = {};
for (let i = 1; i < argv.length; i += 2) opt[argv[i].replace(/^--/, '')] = argv[i + 1];
const out = opt.out;
const duration = Number(opt.duration ?? 10);
const warmup = Number(opt.warmup ?? 3);
const targets = (opt.targets ?? '').split(',').filter(Boolean).map((t) => {
  const [name, url] = t.split(/=(.*)/s);
  return { name, url };
});
const pids = Object.fromEntries((opt.pids ?? '').split(',').filter(Boolean).map((p) => p.split('=')));
const clkTck = Number(process.env.CLK_TCK ?? 100);
const MODEL = 'sim-small';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const emit = (row) => fs.appendFileSync(out, JSON.stringify({ label: opt.label, ...row }) + '\n');

// ---- process and machine CPU from /proc ----
function procTicks(spec) { // PID, or PID+ for the process and its children
  if (String(spec).endsWith('+')) {
    const parent = String(spec).slice(0, -1);
    let sum = procTicks(parent);
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d) || d === parent) continue;
      try {
        const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        if (s.slice(s.lastIndexOf(')') + 2).split(' ')[1] === parent) sum += procTicks(d);
      } catch { /* gone */ }
    }
    return sum;
  }
  const pid = spec;
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  } catch { return NaN; }
}
function jitTicks(spec) { // the JIT compiler threads of a JVM (C1/C2 CompilerThreadN)
  const pid = String(spec).replace(/\+$/, '');
  let sum = 0;
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const s = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        if (!/\(C\d CompilerThre/.test(s)) continue;
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        sum += Number(f[11]) + Number(f[12]);
      } catch { /* thread gone */ }
    }
  } catch { return NaN; }
  return sum;
}
function rssMb(spec) { // of the process itself (PID+: the parent only)
  const pid = String(spec).replace(/\+$/, '');
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch { return NaN; }
}
function machineTicks() { // busy and total jiffies over all cores
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
// Samples every process of `pids`, this load generator and the machine over a step. CPU is in
// cores (1.00 = one core busy for the whole step); the peak RSS is sampled every 250 ms.
function cpuMeter() {
  const t0 = process.hrtime.bigint();
  const p0 = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, procTicks(pid)]));
  const j0 = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, jitTicks(pid)]));
  const self0 = process.cpuUsage();
  const m0 = machineTicks();
  const peak = Object.fromEntries(Object.keys(pids).map((n) => [n, 0]));
  const sample = () => { for (const [n, pid] of Object.entries(pids)) peak[n] = Math.max(peak[n], rssMb(pid) || 0); };
  sample();
  const timer = setInterval(sample, 250);
  return () => {
    clearInterval(timer);
    sample();
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = {};
    const jit = {};
    for (const [n, pid] of Object.entries(pids)) {
      cpu[n] = (procTicks(pid) - p0[n]) / clkTck / secs;
      jit[n] = (jitTicks(pid) - j0[n]) / clkTck / secs; // included in cpu[n]
    }
    const self = process.cpuUsage(self0);
    cpu.loadgen = (self.user + self.system) / 1e6 / secs;
    const m1 = machineTicks();
    cpu.machine = (m1.busy - m0.busy) / clkTck / secs; // all processes, all cores
    return { cpu, jit, rssPeakMb: peak, secs };
  };
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN);
const summary = (lat) => {
  const s = Float64Array.from(lat).sort();
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99) };
};

// ---- non-streamed chat: autocannon, c connections, fixed duration ----
const chatBody = JSON.stringify({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'measure the overhead of one hop' }] });
function cannon(url, connections, secs, onLatency) {
  return new Promise((resolve, reject) => {
    const inst = autocannon({
      url: `${url}/chat/completions`, method: 'POST', connections, duration: secs, timeout: 30,
      headers: { 'content-type': 'application/json' }, body: chatBody,
    }, (err, res) => (err ? reject(err) : resolve(res)));
    inst.on('response', (_client, status, _bytes, ms) => { if (status === 200) onLatency(ms); });
  });
}

async function chat() {
  for (const c of opt.conc.split(',').map(Number)) {
    for (const t of targets) {
      await cannon(t.url, c, warmup, () => {});
      const lat = [];
      const meter = cpuMeter();
      const res = await cannon(t.url, c, duration, (ms) => lat.push(ms));
      const m = meter();
      const errors = res.errors + res.timeouts + res.non2xx;
      emit({ step: `chat c=${c}`, kind: 'chat', c, target: t.name, ok: lat.length, errors, rps: lat.length / m.secs, ...summary(lat), ...m });
      console.log(`  chat c=${c} ${t.name}: ${(lat.length / m.secs).toFixed(0)} req/s, p50 ${pct(Float64Array.from(lat).sort(), 50).toFixed(2)} ms, errors ${errors}`);
    }
  }
}

// ---- streamed chat: k clients in a closed loop, each stream read to its end ----
const streamBody = JSON.stringify({
  model: MODEL, stream: true, max_tokens: 64,
  messages: [{ role: 'user', content: 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen' }],
});
function oneStream(agent, url) { // -> { ttfc ms, chunks, done }
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let ttfc = NaN, buf = '', chunks = 0;
    const req = http.request(`${url}/chat/completions`, {
      method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(streamBody) },
    }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => {
        if (Number.isNaN(ttfc) && d.includes('data:')) ttfc = Number(process.hrtime.bigint() - t0) / 1e6;
        buf += d;
      });
      res.on('end', () => {
        const events = buf.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
        chunks = events.filter((e) => e !== '[DONE]').length;
        resolve({ ttfc, chunks, done: res.statusCode === 200 && events[events.length - 1] === '[DONE]' });
      });
      res.on('error', () => resolve({ ttfc, chunks, done: false }));
    });
    req.on('error', () => resolve({ ttfc, chunks: 0, done: false }));
    req.setTimeout(30000, () => req.destroy());
    req.end(streamBody);
  });
}
async function streamLoop(url, k, secs, record) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: k });
  const until = Date.now() + secs * 1000;
  await Promise.all(Array.from({ length: k }, async () => {
    while (Date.now() < until) record(await oneStream(agent, url));
  }));
  agent.destroy();
}
async function stream() {
  for (const k of opt.k.split(',').map(Number)) {
    for (const t of targets) {
      await streamLoop(t.url, k, warmup, () => {});
      const ttfc = []; let done = 0, broken = 0, chunks = 0;
      const meter = cpuMeter();
      await streamLoop(t.url, k, duration, (r) => {
        if (r.done) { done++; ttfc.push(r.ttfc); chunks = Math.max(chunks, r.chunks); } else broken++;
      });
      const m = meter();
      const s = summary(ttfc);
      emit({ step: `stream k=${k}`, kind: 'stream', c: k, target: t.name, ok: done, errors: broken, rps: done / m.secs, chunks, ...s, ...m });
      console.log(`  stream k=${k} ${t.name}: ${(done / m.secs).toFixed(0)} streams/s, ttfc p50 ${s.p50.toFixed(2)} ms, ${chunks} chunks, broken ${broken}`);
    }
  }
}

// ---- durable async tasks: c submitters for the duration, then every task polled to its end ----
async function tasks() {
  const t = targets[0];
  const c = Number(opt.conc ?? 64);
  const agent = new http.Agent({ keepAlive: true, maxSockets: c });
  const call = (method, path, body) => new Promise((resolve) => {
    const req = http.request(`${t.url}${path}`, {
      method, agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {},
    }, (res) => {
      let b = ''; res.setEncoding('utf8');
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    req.setTimeout(30000, () => req.destroy());
    req.end(body);
  });
  const ids = []; let refused = 0, n = 0;
  const lat = [];
  const meter = cpuMeter();
  const t0 = Date.now();
  const until = t0 + duration * 1000;
  await Promise.all(Array.from({ length: c }, async () => {
    while (Date.now() < until) {
      const body = JSON.stringify({ kind: 'chat', request: { model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: `task ${n++}` }] } });
      const s = process.hrtime.bigint();
      const r = await call('POST', '/tasks', body);
      if (r.status === 202) { ids.push(JSON.parse(r.body).id); lat.push(Number(process.hrtime.bigint() - s) / 1e6); } else refused++;
    }
  }));
  const submitSecs = (Date.now() - t0) / 1000;
  const mSubmit = meter();
  // poll until every accepted task is terminal (or 90 s after the submissions ended)
  const terminal = new Set(['succeeded', 'failed', 'cancelled']);
  const status = {};
  let open = ids.slice();
  const deadline = Date.now() + 90000;
  while (open.length && Date.now() < deadline) {
    const still = [];
    for (let i = 0; i < open.length; i += 32) {
      const batch = open.slice(i, i + 32);
      const rs = await Promise.all(batch.map((id) => call('GET', `/tasks/${id}`)));
      rs.forEach((r, j) => {
        const st = r.status === 200 ? JSON.parse(r.body).status : null;
        if (st && terminal.has(st)) status[st] = (status[st] ?? 0) + 1; else still.push(batch[j]);
      });
    }
    open = still;
    if (open.length) await sleep(500);
  }
  const allSecs = (Date.now() - t0) / 1000;
  agent.destroy();
  const finished = Object.values(status).reduce((a, b) => a + b, 0);
  emit({
    step: `tasks c=${c}`, kind: 'tasks', c, target: t.name, ok: ids.length, errors: refused + open.length, rps: ids.length / submitSecs,
    finishedPerSec: finished / allSecs, finished, status, unfinished: open.length, allSecs, ...summary(lat), ...mSubmit,
  });
  console.log(`  tasks c=${c} ${t.name}: ${ids.length} accepted (${(ids.length / submitSecs).toFixed(0)}/s), ` +
    `${finished} finished in ${allSecs.toFixed(1)} s (${(finished / allSecs).toFixed(0)}/s) ${JSON.stringify(status)}, unfinished ${open.length}, refused ${refused}`);
}

// ---- the table ----
function report() {
  const rows = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const cores = (r, n) => (r.cpu && Number.isFinite(r.cpu[n]) ? r.cpu[n].toFixed(2) : '–');
  const jit = (r, n) => (r.jit && r.jit[n] >= 0.005 ? ` (JIT ${r.jit[n].toFixed(2)})` : '');
  const stackCpu = (r) => cores(r, 'stack') + jit(r, 'stack') + (r.cpu && 'postgres' in r.cpu ? ` (+ PostgreSQL ${cores(r, 'postgres')})` : '');
  const lines = [];
  lines.push('| step | target | req/s (streams/s) | p50 ms | p90 ms | p99 ms | added p50 | ratio to direct | CPU sim | CPU stack | CPU load gen | CPU machine | errors |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows.filter((x) => x.kind === 'chat' || x.kind === 'stream')) {
    const d = rows.find((x) => x.kind === r.kind && x.c === r.c && x.target === 'direct');
    const direct = r.target === 'direct';
    const what = r.kind === 'stream' ? `${r.step} (TTFC, ${r.chunks} chunks)` : r.step;
    lines.push(`| ${what} | ${r.target} | ${f(r.rps, 0)} | ${f(r.p50, 2)} | ${f(r.p90, 2)} | ${f(r.p99, 2)} | ` +
      `${direct || !d ? '—' : `+${f(r.p50 - d.p50, 2)} ms`} | ${direct || !d ? '—' : f(r.rps / d.rps, 3)} | ` +
      `${cores(r, 'sim')}${jit(r, 'sim')} | ${stackCpu(r)} | ${cores(r, 'loadgen')} | ${cores(r, 'machine')} | ${r.errors}${r.kind === 'stream' ? ' without [DONE]' : ''} |`);
  }
  for (const r of rows.filter((x) => x.kind === 'tasks')) {
    lines.push(`| ${r.step} | ${r.target} | ${f(r.rps, 0)} accepted/s, ${f(r.finishedPerSec, 0)} finished/s | ${f(r.p50, 2)} | ${f(r.p90, 2)} | ${f(r.p99, 2)} | — | — | ` +
      `${cores(r, 'sim')} | ${stackCpu(r)} | ${cores(r, 'loadgen')} | ${cores(r, 'machine')} | ${r.errors} (${JSON.stringify(r.status)}) |`);
  }
  const rss = rows.filter((x) => x.kind === 'rss').map((x) => `${x.what} ${f(x.mb, 0)} MB`);
  const c64 = rows.find((x) => x.kind === 'chat' && x.c === Math.max(...rows.filter((y) => y.kind === 'chat').map((y) => y.c)) && x.target === 'stack-h2');
  if (c64) rss.push(`stack peak during chat c=${c64.c} ${f(c64.rssPeakMb.stack, 0)} MB`);
  lines.push('');
  lines.push(`RSS: ${rss.join('; ')}`);
  for (const r of rows.filter((x) => x.kind === 'idle')) {
    lines.push(`CPU with no load, ${r.what}: ${Object.entries(r.cpu).filter(([k]) => k !== 'loadgen').map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
  }
  lines.push('CPU in cores over the measured window (1.00 = one core all the time; the machine figure counts every process on the box, ' +
    'so machine − sim − stack − load gen is other work; "JIT": the part of a JVM\'s CPU spent by its C1/C2 compiler threads; the stack on PostgreSQL also shows PostgreSQL\'s processes). p50/p90/p99: response time (chat), time to first chunk (stream), time to 202 (tasks).');
  console.log(lines.join('\n'));
}

async function warm() { // the stack's JIT before anything is measured
  for (const t of targets) await cannon(t.url, Number(opt.conc ?? 16), duration, () => {});
}

switch (cmd) {
  case 'chat': await chat(); break;
  case 'stream': await stream(); break;
  case 'tasks': await tasks(); break;
  case 'warmup': await warm(); break;
  case 'idle': { // CPU with no load: timers, JIT, background jobs
    const meter = cpuMeter();
    await sleep(duration * 1000);
    const m = meter();
    emit({ kind: 'idle', what: opt.what, cpu: m.cpu });
    break;
  }
  case 'rss': emit({ kind: 'rss', what: opt.what, mb: rssMb(opt.pid) }); break;
  case 'report': report(); break;
  default: console.error('usage: see the top of bench/hotpath.mjs'); process.exit(2);
}
