// npm run bench:soak: ten minutes of mixed, hostile load against the built daemon on loopback, with
// the daemon's memory (VmRSS) and open file descriptors sampled every 10 s and a summary at the end.
// A benchmark, not a test: it prints figures (see README, "Soak"), and exits 1 only if the daemon
// died, a lookup failed, or RSS or fds kept growing after the warm-up.
//
//   node scripts/soak.mjs [--seconds N] [--nodes N]      (defaults: 600 s, 5,000 registrations)
//
// The load, all at once, each part from its own loopback source address (see request()):
// - registrations: a base of --nodes nodes; churn replaces one every 100 ms with a new name;
// - lookups: 200 PORT_PLEASE2 per second of live names, each checked; NAMES read in full 2/s, DUMP 1/s;
// - unread replies: 300 connections at a time send NAMES and never read (the reply of thousands of
//   nodes is larger than the socket buffers); each is dropped by the client after 30 s;
// - slowloris: 300 connections at a time announce a 3,000-byte request and send one byte every 2 s;
// - idle: 100 connections at a time that send nothing;
// - garbage: 20 random packets per second, each on a fresh connection.
// A connection of a pool that the daemon closes is replaced a second later, so the pools stay full.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { frame, freePort, register, sleep } from './lib/local.mjs';

const bundle = new URL('../dist/epmd-ng.mjs', import.meta.url).pathname;

/**
 * One request on a fresh connection; resolves with the reply when the server closes. Each part of
 * the load connects from its own loopback address: epmd closes first, so its side keeps every
 * connection in TIME_WAIT, and tens of thousands of connections from one address would start to
 * collide with them (SYN retransmits, refused connects) and measure the kernel, not epmd.
 */
function request(port, bytes, localAddress) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => s.write(bytes));
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

/**
 * Starts the built daemon on `port` with `env` added and resolves once it accepts connections. It
 * runs as installed, through the bundle's own #! line (which may carry node options).
 */
async function startDaemon(port, env, stdio = ['ignore', 'ignore', 'inherit']) {
  const daemon = spawn(bundle, ['-port', String(port)], { stdio, env: { ...process.env, ...env } });
  for (let i = 0; i < 200; i++) {
    if (await new Promise((r) => net.connect(port, '127.0.0.1').on('connect', function () { this.destroy(); r(true); }).on('error', () => r(false)))) return daemon;
    await new Promise((r) => setTimeout(r, 25));
  }
  daemon.kill('SIGKILL');
  throw new Error(`the daemon did not listen on port ${port}`);
}


const { values: opts } = parseArgs({ options: { seconds: { type: 'string', default: '600' }, nodes: { type: 'string', default: '5000' } } });
const SECONDS = Number(opts.seconds);
const NODES = Number(opts.nodes);
const SAMPLE_MS = 10_000;
/** Samples before this are warm-up: pools filling, the unused list reaching its cap, V8 sizing its heap. */
const WARMUP_S = Math.min(120, Math.max(20, SECONDS / 5));
/** Growth after warm-up that counts as "grows" (see the summary for how growth is measured). */
const RSS_GROWTH_LIMIT_MB = 16;
const FD_GROWTH_LIMIT = 50;
if (!(SECONDS >= 30) || !(NODES >= 1)) {
  console.error('soak: --seconds needs at least 30, --nodes at least 1');
  process.exit(1);
}

const port = await freePort();
const daemon = await startDaemon(port, { EPMD_NG_LOG_LEVEL: 'warn', EPMD_NG_MAX_CONNECTIONS: '16384' }, ['ignore', 'ignore', 'pipe']);
let warnings = 0;
daemon.stderr.on('data', (d) => (warnings += d.toString().split('\n').filter(Boolean).length));
let daemonExit = null;
daemon.on('exit', (code, signal) => (daemonExit = { code, signal }));

const stats = () => ({ registrationFailures: 0, lookups: 0, lookupFailures: 0, latencies: [], names: 0, namesShort: 0, dumps: 0, garbage: 0, unreadClosedByServer: 0, slowClosedByServer: 0, idleClosedByServer: 0 });
let window = stats();
const total = stats();
const count = (key, n = 1) => {
  window[key] += n;
  total[key] += n;
};
let stopping = false;
const pick = (list) => list[Math.floor(Math.random() * list.length)];

// ---- registrations and churn ----
const live = new Map(); // name -> { socket, port }
let seq = 0;
/** Long names make NAMES replies (about 60 bytes per node) larger than what the kernel buffers for an unread connection. */
const PAD = '-'.repeat(32);
async function addNode() {
  const name = `soak${seq++}${PAD}`;
  const nodePort = 20000 + (seq % 40000);
  // Spread over 8 source addresses, which hold the registrations' ports and the churn's TIME_WAIT
  // ones: with one address, two soaks running at once saw about 45 registrations fail each.
  live.set(name, { socket: await register(port, name, nodePort, `127.0.1.${1 + (seq % 8)}`), port: nodePort });
}
for (let i = 0; i < NODES; i += 250) await Promise.all(Array.from({ length: Math.min(250, NODES - i) }, addNode));
/** Names registered most recently: lookups ask for these, since they are not about to churn away. */
let recent = [...live.keys()].slice(-1000);
const churn = setInterval(() => {
  const name = live.keys().next().value; // the oldest, so that names keep moving through
  live.get(name).socket.destroy();
  live.delete(name);
  addNode().then(() => (recent = [...live.keys()].slice(-1000)), () => count('registrationFailures'));
}, 100);

// ---- pools of hostile connections ----
/** Keeps `size` connections made by `open` alive; one the server closes is replaced a second later. */
function pool(size, source, open, onServerClose) {
  const slot = () => {
    if (stopping) return;
    const s = net.connect({ host: '127.0.0.1', port, localAddress: source });
    let ours = false;
    s.on('error', () => {});
    s.on('connect', () => open(s, () => { ours = true; s.destroy(); }));
    s.on('close', () => {
      if (!ours && !stopping) count(onServerClose);
      setTimeout(slot, ours ? 0 : 1000);
    });
  };
  for (let i = 0; i < size; i++) slot();
}
pool(300, '127.0.4.1', (s, drop) => {
  s.pause(); // never read
  s.write(frame(Buffer.from('n')));
  setTimeout(drop, 30_000);
}, 'unreadClosedByServer');
pool(300, '127.0.4.2', (s) => {
  s.write(Buffer.from([0x0b, 0xb8])); // 3,000 bytes announced
  const drip = setInterval(() => s.write(Buffer.from('n')), 2000);
  s.on('close', () => clearInterval(drip));
}, 'slowClosedByServer');
pool(100, '127.0.4.3', () => {}, 'idleClosedByServer');

// ---- garbage ----
const garbage = setInterval(() => {
  const length = Math.floor(Math.random() * 80);
  const bytes = Buffer.from(Array.from({ length }, () => Math.floor(Math.random() * 256)));
  if (Math.random() < 0.6 && length > 0) bytes[0] = pick([120, 122, 110, 100, 107, 115, 0, 97]);
  const packet = Math.random() < 0.3 ? bytes : frame(bytes);
  const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.4.4' }, () => s.write(packet));
  s.on('error', () => {});
  s.setTimeout(500, () => s.destroy());
  count('garbage');
}, 50);

// ---- lookups, NAMES and DUMP, checked ----
let lookupSource = 0;
function lookupOnce() {
  const name = pick(recent);
  const node = live.get(name) ?? { port: -1 };
  const t = performance.now();
  // Rotating source addresses keep the daemon's TIME_WAIT sockets from colliding with new connections.
  request(port, frame(Buffer.from(`z${name}`)), `127.0.5.${1 + (lookupSource++ % 50)}`)
    .then((reply) => {
      window.latencies.push(performance.now() - t);
      count('lookups');
      // A name churned away meanwhile answers "not found"; anything else must be the node's port.
      const ok = (reply[0] === 119 && reply[1] === 0 && reply.readUInt16BE(2) === node.port) || (!live.has(name) && reply.equals(Buffer.from([119, 1])));
      if (!ok) count('lookupFailures');
    })
    .catch(() => count('lookupFailures'));
}
const lookups = setInterval(lookupOnce, 5);
const listings = setInterval(() => {
  // Every name registered before the request and still registered after the reply must be listed.
  const before = new Set(live.keys());
  request(port, frame(Buffer.from('n')), '127.0.4.5')
    .then((reply) => {
      count('names');
      const listed = new Set([...reply.subarray(4).toString('latin1').matchAll(/^name (\S+) at port \d+$/gm)].map((m) => m[1]));
      for (const name of before) if (live.has(name) && !listed.has(name)) return count('namesShort');
    })
    .catch(() => count('namesShort'));
  if (total.names % 2 === 0) request(port, frame(Buffer.from('d')), '127.0.4.6').then(() => count('dumps'), () => {});
}, 500);

// ---- sampling ----
function daemonFigures() {
  const status = fs.readFileSync(`/proc/${daemon.pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)[1]);
  return { rssMb: rssKb / 1024, fds: fs.readdirSync(`/proc/${daemon.pid}/fd`).length };
}
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN);
const samples = [];
const started = performance.now();
console.log(`soak: ${SECONDS} s against epmd-ng (pid ${daemon.pid}, port ${port}, node ${process.version}), ${NODES} registrations, warm-up ${WARMUP_S} s`);
console.log('   t s   RSS MB   fds  lookups  fail  p50 ms  p99 ms  max ms  NAMES  unread/slow/idle closed by daemon');
while (performance.now() - started < SECONDS * 1000 && !daemonExit) {
  await sleep(SAMPLE_MS - ((performance.now() - started) % SAMPLE_MS));
  if (daemonExit) break;
  const t = Math.round((performance.now() - started) / 1000);
  const lat = window.latencies.sort((a, b) => a - b);
  const sample = { t, ...daemonFigures(), ...window, p50: pct(lat, 0.5), p99: pct(lat, 0.99), max: lat.at(-1) ?? NaN };
  samples.push(sample);
  console.log(
    `${String(t).padStart(6)} ${sample.rssMb.toFixed(1).padStart(8)} ${String(sample.fds).padStart(5)} ${String(sample.lookups).padStart(8)} ${String(sample.lookupFailures).padStart(5)} ` +
      `${sample.p50.toFixed(1).padStart(7)} ${sample.p99.toFixed(1).padStart(7)} ${sample.max.toFixed(1).padStart(7)} ${String(sample.names).padStart(6)}  ` +
      `${sample.unreadClosedByServer}/${sample.slowClosedByServer}/${sample.idleClosedByServer}`,
  );
  window = stats();
}

stopping = true;
for (const timer of [churn, garbage, lookups, listings]) clearInterval(timer);

// ---- summary ----
const steady = samples.filter((s) => s.t > WARMUP_S);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Least-squares slope of y over t, per minute. */
function slopePerMinute(key) {
  const ts = steady.map((s) => s.t / 60);
  const ys = steady.map((s) => s[key]);
  const mt = mean(ts);
  const my = mean(ys);
  const num = ts.reduce((a, t, i) => a + (t - mt) * (ys[i] - my), 0);
  const den = ts.reduce((a, t) => a + (t - mt) ** 2, 0);
  return den ? num / den : 0;
}
const span = (key) => ({ min: Math.min(...steady.map((s) => s[key])), max: Math.max(...steady.map((s) => s[key])) });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** Median of the first or last third of the samples after warm-up: robust to a single spike or dip. */
const third = (key, which) => {
  const n = Math.max(1, Math.floor(steady.length / 3));
  return median((which === 'first' ? steady.slice(0, n) : steady.slice(-n)).map((s) => s[key]));
};
const steadyMinutes = steady.length ? (steady.at(-1).t - steady[0].t) / 60 : 0;
const rssGrowth = steady.length >= 3 ? third('rssMb', 'last') - third('rssMb', 'first') : NaN;
const fdGrowth = steady.length >= 3 ? third('fds', 'last') - third('fds', 'first') : NaN;
const rss = span('rssMb');
const fds = span('fds');
const failures = total.lookupFailures + total.namesShort + total.registrationFailures;
const died = daemonExit;
console.log('\nsummary');
console.log(`  daemon: ${died ? `EXITED ${JSON.stringify(died)}` : 'alive throughout'}; ${warnings} log lines at warn level or above`);
console.log(`  registrations: ${seq} in all (${total.registrationFailures} failed), ${NODES} at a time`);
console.log(`  requests: ${total.lookups} lookups (${total.lookupFailures} failed), ${total.names} NAMES (${total.namesShort} missing a node or failed), ${total.dumps} DUMP, ${total.garbage} garbage packets`);
console.log(`  hostile connections closed by the daemon: unread replies ${total.unreadClosedByServer}, slowloris ${total.slowClosedByServer}, idle ${total.idleClosedByServer}`);
console.log(`  lookup latency per 10 s window: worst p99 ${Math.max(...samples.map((s) => s.p99)).toFixed(1)} ms, worst max ${Math.max(...samples.map((s) => s.max)).toFixed(1)} ms`);
if (steady.length >= 3) {
  console.log(`  after warm-up (${steady.length} samples, ${steadyMinutes.toFixed(1)} min): RSS ${rss.min.toFixed(1)}–${rss.max.toFixed(1)} MB, slope ${slopePerMinute('rssMb').toFixed(2)} MB/min; fds ${fds.min}–${fds.max}, slope ${slopePerMinute('fds').toFixed(1)}/min`);
  console.log(`  growth after warm-up (median of the last third minus that of the first): RSS ${rssGrowth.toFixed(1)} MB (limit ${RSS_GROWTH_LIMIT_MB}), fds ${fdGrowth.toFixed(0)} (limit ${FD_GROWTH_LIMIT})`);
} else {
  console.log('  too short for a steady-state verdict (fewer than 3 samples after warm-up)');
}
const grows = rssGrowth > RSS_GROWTH_LIMIT_MB || fdGrowth > FD_GROWTH_LIMIT;
console.log(`  verdict: ${died || failures ? 'FAILED' : grows ? 'GROWS' : steady.length >= 3 ? 'flat' : 'no verdict'}`);

for (const { socket } of live.values()) socket.destroy();
daemon.kill('SIGTERM');
await Promise.race([new Promise((r) => daemon.once('exit', r)), sleep(3000)]);
if (!daemonExit) daemon.kill('SIGKILL');
process.exit(died || failures || grows ? 1 : 0);
