// Many concurrent streamed chat completions against OpenAI base URLs, every frame checked.
// Node 20, no dependencies. Run through bench/streams.sh, which sets the simulator's pacing and
// the file-descriptor limit; `node bench/streams.mjs --help` lists the options.
//
// For each target (the runner directly, then the stack) it opens N streams
// ("stream": true, stream_options.include_usage), each on its own connection, reads every
// server-sent event, and checks each stream against a reference answer fetched once from the
// runner: same number of data frames, the same concatenated content (each stream asks about its
// own number, so a frame delivered to the wrong stream shows up), finish_reason "stop", a usage
// chunk with the same completion_tokens, and data: [DONE] last. Then it prints per target: streams
// opened, completed with [DONE], broken (with the reasons), frames, time to first byte and first
// token (median, p99), peak streams open at once, total time, peak RSS of the given PIDs; and the
// ratios stack / runner.
import http from 'node:http';
import fs from 'node:fs';

const HELP = `usage: node bench/streams.mjs [options]
  --n N               streams per target (default 1000)
  --runner URL        runner base URL: the reference answer, and measured first (default
                      http://127.0.0.1:12434/v1)
  --stack URL         stack base URL (default http://127.0.0.1:8080/v1)
  --only T            measure only T (runner or stack); the reference still comes from the runner
  --model M           (default sim-small)
  --words W           words in each prompt: the reply is W + 3 tokens (default 20)
  --ramp R            streams opened per second, 0 = all at once (default 0)
  --warmup W          before each target, W streams whose figures are not counted (a cold JVM
                      measures its JIT compiler, not the relay) (default 0)
  --timeout S         give up on a stream after S seconds (default 300)
  --pids LIST         comma-separated PIDs whose VmRSS is sampled (peak per target) and VmHWM read
  --header H:V        extra request header, repeatable (e.g. "Authorization: Bearer sk-...")
  --json FILE         also write the results as JSON
  --dump FILE         write every broken stream (what it got, what was expected) as JSON lines`;

function parseArgs(argv) {
  const o = {
    n: 1000, runner: 'http://127.0.0.1:12434/v1', stack: 'http://127.0.0.1:8080/v1', model: 'sim-small',
    words: 20, ramp: 0, warmup: 0, timeout: 300, pids: [], headers: {}, json: null, dump: null, only: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = () => { if (i + 1 >= argv.length) throw new Error(`${k} needs a value`); return argv[++i]; };
    switch (k) {
      case '--n': o.n = +v(); break;
      case '--runner': o.runner = v(); break;
      case '--stack': o.stack = v(); break;
      case '--model': o.model = v(); break;
      case '--words': o.words = +v(); break;
      case '--ramp': o.ramp = +v(); break;
      case '--warmup': o.warmup = +v(); break;
      case '--timeout': o.timeout = +v(); break;
      case '--pids': o.pids = v().split(',').map(s => s.trim()).filter(Boolean); break;
      case '--header': { const h = v(); const c = h.indexOf(':'); o.headers[h.slice(0, c).trim()] = h.slice(c + 1).trim(); break; }
      case '--json': o.json = v(); break;
      case '--dump': o.dump = v(); break;
      case '--only': o.only = v(); break;
      case '-h': case '--help': console.log(HELP); process.exit(0);
      default: throw new Error(`unknown option ${k}\n${HELP}`);
    }
  }
  if (!(o.n > 0) || !(o.words > 0)) throw new Error('--n and --words must be positive');
  if (o.only && !['runner', 'stack'].includes(o.only)) throw new Error('--only takes runner or stack');
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(e.message);
  process.exit(2);
}

// One connection per stream, no pooling limit: N streams are N sockets, as N clients would be.
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

/** The prompt of stream i: its own number, then filler words (one reply token per word). */
function prompt(i) {
  const words = [`stream-${i}`];
  for (let w = 1; w < opts.words; w++) words.push(`w${w}`);
  return words.join(' ');
}

function body(i) {
  return JSON.stringify({
    model: opts.model, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: prompt(i) }],
  });
}

/**
 * One streamed call: resolves (never rejects) with what was seen. onOpen/onClose bracket the time
 * the response stream is open (headers received until end or failure).
 */
function streamOnce(base, i, extraHeaders, hooks) {
  return new Promise(resolve => {
    const url = new URL(base.replace(/\/$/, '') + '/chat/completions');
    const payload = body(i);
    const r = {
      i, status: 0, frames: 0, keepAlives: 0, content: '', done: false, afterDone: 0, finish: null,
      usage: null, ids: new Set(), error: null, start: performance.now(), ttfb: null, ttft: null, end: null,
    };
    let opened = false, settled = false;
    const finish = err => {
      if (settled) return;
      settled = true;
      if (err && !r.error) r.error = err;
      r.end = performance.now();
      clearTimeout(timer);
      if (opened) hooks.onClose();
      resolve(r);
    };
    const timer = setTimeout(() => { finish(`timeout after ${opts.timeout} s`); req.destroy(); }, opts.timeout * 1000);
    const req = http.request(url, {
      method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload), Accept: 'text/event-stream', ...extraHeaders },
    }, res => {
      r.status = res.statusCode;
      opened = true;
      hooks.onOpen();
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        let text = '';
        res.on('data', d => { if (text.length < 300) text += d; });
        res.on('end', () => finish(`HTTP ${res.statusCode}: ${text.replace(/\s+/g, ' ').slice(0, 200)}`));
        res.on('error', e => finish(`HTTP ${res.statusCode}, then ${e.code || e.message}`));
        return;
      }
      let buf = '';
      res.on('data', d => {
        if (r.ttfb === null) r.ttfb = performance.now() - r.start;
        buf += d;
        let sep;
        while ((sep = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, sep);
          buf = buf.slice(sep + 2);
          onEvent(r, event);
        }
      });
      res.on('end', () => {
        if (buf.trim() !== '') onEvent(r, buf);
        finish(r.done ? null : 'ended without [DONE]');
      });
      res.on('error', e => finish(`${e.code || e.message} mid-stream`));
      res.on('aborted', () => finish('aborted mid-stream'));
    });
    req.on('error', e => finish(`${e.code || e.message}${opened ? ' mid-stream' : ' before the response'}`));
    req.end(payload);
  });
}

function onEvent(r, event) {
  for (const line of event.split('\n')) {
    if (line.startsWith(':')) { r.keepAlives++; continue; }
    if (!line.startsWith('data:')) continue;
    const data = line.slice(5).trim();
    r.frames++;
    if (r.done) { r.afterDone++; continue; }
    if (data === '[DONE]') { r.done = true; continue; }
    let chunk;
    try { chunk = JSON.parse(data); } catch { r.error ??= `frame ${r.frames} is not JSON`; continue; }
    if (chunk.error) { r.error ??= `error event: ${chunk.error.code || chunk.error.type}: ${chunk.error.message}`; continue; }
    r.ids.add(chunk.id);
    if (chunk.usage) r.usage = chunk.usage;
    for (const c of chunk.choices || []) {
      const text = c.delta && c.delta.content;
      if (text) {
        if (r.ttft === null) r.ttft = performance.now() - r.start;
        r.content += text;
      }
      if (c.finish_reason) r.finish = c.finish_reason;
    }
  }
}

/** What a correct stream i looks like, from one unpaced call straight to the runner (headers override its pacing). */
async function reference(runner) {
  const r = await streamOnce(runner, 0, { 'X-Sim-Tokens-Per-Second': '0', 'X-Sim-Ttft-Ms': '0', 'X-Sim-Latency-Ms': '0' }, { onOpen() {}, onClose() {} });
  if (r.error || !r.done) throw new Error(`reference call to ${runner} failed: ${r.error}`);
  const expected0 = 'Simulated reply to: ' + prompt(0);
  if (r.content !== expected0) {
    throw new Error(`the runner's reply is not the simulator's deterministic one:\n  got      ${r.content}\n  expected ${expected0}`);
  }
  return { frames: r.frames, completionTokens: r.usage && r.usage.completion_tokens };
}

function check(r, ref) {
  if (r.error) return r.error;
  const expected = 'Simulated reply to: ' + prompt(r.i);
  if (r.content !== expected) return 'content differs from the runner\'s';
  if (r.frames !== ref.frames) return `${r.frames} data frames, expected ${ref.frames}`;
  if (r.afterDone > 0) return 'frames after [DONE]';
  if (r.finish !== 'stop') return `finish_reason ${r.finish}`;
  if (!r.usage || r.usage.completion_tokens !== ref.completionTokens) return 'usage chunk missing or wrong';
  if (r.ids.size !== 1) return `${r.ids.size} chunk ids in one stream`;
  return null;
}

function rssKb(pid, field) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? +m[1] : null;
  } catch { return null; }
}

function pct(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

async function runTarget(label, base, ref, n = opts.n) {
  let open = 0, peakOpen = 0;
  const hooks = { onOpen() { open++; if (open > peakOpen) peakOpen = open; }, onClose() { open--; } };
  const peakRss = Object.fromEntries(opts.pids.map(p => [p, rssKb(p, 'VmRSS') || 0]));
  const sampler = setInterval(() => {
    for (const p of opts.pids) { const v = rssKb(p, 'VmRSS'); if (v > peakRss[p]) peakRss[p] = v; }
  }, 250);
  const progress = setInterval(() => process.stderr.write(`  ${label}: ${started} started, ${open} open, ${finished} finished\n`), 5000);
  let started = 0, finished = 0;
  const t0 = performance.now();
  const all = [];
  for (let i = 0; i < n; i++) {
    if (opts.ramp > 0) {
      const due = t0 + (i * 1000) / opts.ramp;
      const wait = due - performance.now();
      if (wait > 1) await new Promise(res => setTimeout(res, wait));
    } else if (i % 500 === 499) {
      await new Promise(res => setImmediate(res)); // let responses in while the rest are sent
    }
    started++;
    all.push(streamOnce(base, i, opts.headers, hooks).then(r => { finished++; return r; }));
  }
  const results = await Promise.all(all);
  const total = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  clearInterval(progress);
  const failures = {};
  let ok = 0, withDone = 0, frames = 0, keepAlives = 0;
  for (const r of results) {
    frames += r.frames;
    keepAlives += r.keepAlives;
    if (r.done) withDone++;
    const problem = check(r, ref);
    if (problem) {
      if (opts.dump) {
        fs.appendFileSync(opts.dump, JSON.stringify({
          target: label, stream: r.i, problem, status: r.status, frames: r.frames, done: r.done,
          ids: [...r.ids], content: r.content, expected: 'Simulated reply to: ' + prompt(r.i),
        }) + '\n');
      }
      const kind = problem.replace(/req_[0-9a-f]+/g, 'req_…').replace(/chatcmpl-[0-9a-f]+/g, 'chatcmpl-…');
      failures[kind] = (failures[kind] || 0) + 1;
    }
    else ok++;
  }
  const ttfb = results.filter(r => r.ttfb !== null).map(r => r.ttfb).sort((a, b) => a - b);
  const ttft = results.filter(r => r.ttft !== null).map(r => r.ttft).sort((a, b) => a - b);
  const dur = results.filter(r => !check(r, ref)).map(r => r.end - r.start).sort((a, b) => a - b);
  return {
    label, base, n, opened: results.filter(r => r.status !== 0).length, withDone, ok,
    broken: n - ok, failures, frames, expectedFrames: n * ref.frames, keepAlives, peakOpen,
    ttfbMedian: pct(ttfb, 0.5), ttfbP99: pct(ttfb, 0.99), ttftMedian: pct(ttft, 0.5), ttftP99: pct(ttft, 0.99),
    streamMedian: pct(dur, 0.5), streamP99: pct(dur, 0.99), totalSeconds: total,
    peakRssKb: peakRss, hwmKb: Object.fromEntries(opts.pids.map(p => [p, rssKb(p, 'VmHWM')])),
    clientRssKb: Math.round(process.memoryUsage().rss / 1024),
  };
}

const ms = v => (v === null ? '-' : `${v.toFixed(1)} ms`);
const mb = kb => (kb ? `${(kb / 1024).toFixed(0)} MB` : '-');

function print(s) {
  console.log(`${s.label} (${s.base})`);
  console.log(`  streams opened        : ${s.opened} of ${s.n} (peak open at once: ${s.peakOpen})`);
  console.log(`  completed with [DONE] : ${s.withDone}; correct (frames, content, usage, [DONE]): ${s.ok}`);
  console.log(`  lost / broken         : ${s.broken}${s.broken ? ' ' + JSON.stringify(s.failures) : ''}`);
  console.log(`  data frames           : ${s.frames} (expected ${s.expectedFrames}); keep-alive comments ${s.keepAlives}`);
  console.log(`  time to first byte    : median ${ms(s.ttfbMedian)}, p99 ${ms(s.ttfbP99)}`);
  console.log(`  time to first token   : median ${ms(s.ttftMedian)}, p99 ${ms(s.ttftP99)}`);
  console.log(`  stream duration       : median ${ms(s.streamMedian)}, p99 ${ms(s.streamP99)}`);
  console.log(`  total                 : ${s.totalSeconds.toFixed(1)} s`);
  for (const p of Object.keys(s.peakRssKb)) {
    console.log(`  pid ${p}: peak VmRSS during the run ${mb(s.peakRssKb[p])}, VmHWM so far ${mb(s.hwmKb[p])}`);
  }
  console.log(`  load generator RSS    : ${mb(s.clientRssKb)}`);
}

const ratio = (a, b) => (a && b ? `x${(a / b).toFixed(2)}` : '-');

async function main() {
  const ref = await reference(opts.runner);
  console.log(`streams: ${opts.n} per target, prompt ${opts.words} words, reply ${ref.completionTokens} tokens, ` +
    `${ref.frames} data frames per stream (role, tokens, usage, [DONE]), ramp ${opts.ramp || 'all at once'}`);
  const results = [];
  for (const [label, base, name] of [['runner direct', opts.runner, 'runner'], ['through stack', opts.stack, 'stack']]) {
    if (opts.only && opts.only !== name) continue;
    if (opts.warmup > 0) {
      process.stderr.write(`${label}: warm-up, ${opts.warmup} streams against ${base}\n`);
      const w = await runTarget(`${label} warm-up`, base, ref, opts.warmup);
      console.log(`${label} warm-up: ${w.ok} of ${w.n} correct, ${w.totalSeconds.toFixed(1)} s`);
    }
    process.stderr.write(`${label}: ${opts.n} streams against ${base}\n`);
    const s = await runTarget(label, base, ref);
    print(s);
    results.push(s);
  }
  if (results.length === 2) {
    const [d, s] = results;
    console.log('stack / runner');
    console.log(`  time to first byte    : median ${ratio(s.ttfbMedian, d.ttfbMedian)} (+${(s.ttfbMedian - d.ttfbMedian).toFixed(1)} ms), p99 ${ratio(s.ttfbP99, d.ttfbP99)}`);
    console.log(`  time to first token   : median ${ratio(s.ttftMedian, d.ttftMedian)} (+${(s.ttftMedian - d.ttftMedian).toFixed(1)} ms), p99 ${ratio(s.ttftP99, d.ttftP99)}`);
    console.log(`  stream duration       : median ${ratio(s.streamMedian, d.streamMedian)}, p99 ${ratio(s.streamP99, d.streamP99)}`);
    console.log(`  total                 : ${ratio(s.totalSeconds, d.totalSeconds)}`);
  }
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ options: opts, reference: ref, results }, null, 2));
  process.exitCode = results.every(r => r.broken === 0) ? 0 : 1;
}

main().catch(e => { console.error(e.message || e); process.exit(2); });
