// npm run bench: epmd-ng side by side with OTP's epmd and with the floor (a bare Node.js server
// that only answers ALIVE2 and PORT_PLEASE2, scripts/bench/floor.mjs), in one run, interleaved:
// every workload runs on the three servers in turn, BENCH_ROUNDS times (default 5), and the
// median is reported; a ratio of two servers is the median of their ratios within each round,
// which cancels the drift of a shared machine between rounds. The load comes from
// scripts/bench/loadgen.c (built here with cc; one epoll loop per client thread), so the client
// is not what is measured. Server CPU per operation comes
// from /proc/PID/stat (utime + stime, all threads). Prints markdown tables and writes the raw
// figures to .cache/bench-<time>.json. Every run is bounded in time and count. Two extra
// measurements: the floor with the node flags epmd-ng runs with (the first line of its bundle),
// so that epmd-ng's CPU per lookup is also compared with a floor on equal terms, and epmd-ng and
// the floor with V8's scavenge trace, for the bytes per operation that outlive a scavenge.
// Memory is read once V8 has settled (settledRss), also for a registry filled between
// registrations that come and go (scripts/bench/interleaved-holder.mjs); the idle figures are
// medians of three fresh processes.
//
// Environment: BENCH_ROUNDS, BENCH_SECONDS (per measurement, default 2), BENCH_NODE18=0 to skip
// the start-up measurement on Debian's Node 18 in the nspawn root (done when run as root).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep } from './lib/local.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const bundle = path.join(root, 'dist/epmd-ng.mjs');
const floorScript = path.join(root, 'scripts/bench/floor.mjs');
const interleavedHolder = path.join(root, 'scripts/bench/interleaved-holder.mjs');
const cacheDir = path.join(root, '.cache');
const loadgen = path.join(cacheDir, 'loadgen');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString());
const PAGE = Number(execFileSync('getconf', ['PAGESIZE']).toString());
const OTP_EPMD = '/usr/bin/epmd';
const LONG_TIMEOUT = '3600'; // -packet_timeout: idle connections held by the benchmark stay open

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function buildLoadgen() {
  const source = path.join(root, 'scripts/bench/loadgen.c');
  fs.mkdirSync(cacheDir, { recursive: true });
  if (fs.existsSync(loadgen) && fs.statSync(loadgen).mtimeMs > fs.statSync(source).mtimeMs) return;
  if (spawnSync('cc', ['--version']).error) {
    if (process.getuid?.() !== 0) throw new Error('the load generator needs a C compiler: install gcc and libc6-dev (or run as root)');
    execFileSync('bash', [path.join(root, 'scripts/ensure-packages.sh'), 'gcc', 'libc6-dev'], { stdio: 'inherit' });
  }
  execFileSync('cc', ['-O2', '-pthread', '-Wall', '-o', loadgen, source], { stdio: 'inherit' });
}

function ensureOtpEpmd() {
  if (fs.existsSync(OTP_EPMD)) return;
  if (process.getuid?.() !== 0) throw new Error(`${OTP_EPMD} is missing: install erlang-base (scripts/ensure-packages.sh erlang-base, as root)`);
  execFileSync('bash', [path.join(root, 'scripts/ensure-packages.sh'), 'erlang-base'], { stdio: 'inherit' });
}

/** Each measurement connects from addresses of its own (see loadgen.c): 127.<a>.<b>.0/24. */
let nextSubnet = 0;
function sourceRange() {
  const n = nextSubnet++;
  return `127.${100 + Math.floor(n / 256)}.${n % 256}.0`;
}

function run(mode, args) {
  const out = execFileSync(loadgen, [mode, ...Object.entries(args).map(([k, v]) => `${k}=${v}`)], { timeout: 120_000 }).toString();
  return JSON.parse(out.trim().split('\n').pop());
}

function cpuTicks(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssBytes(pid) {
  return Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE;
}

class Server {
  /** `stdout`: a file the server's standard output goes to (V8's GC trace), else discarded. */
  constructor(name, command, env = {}, stderr = 'inherit', stdout = undefined) {
    this.name = name;
    this.command = command;
    this.env = env;
    this.stderr = stderr;
    this.stdout = stdout;
  }

  async start() {
    this.port = await freePort();
    const [cmd, ...args] = this.command(this.port);
    const out = this.stdout ? fs.openSync(this.stdout, 'w') : 'ignore';
    this.proc = spawn(cmd, args, { stdio: ['ignore', out, this.stderr], env: { ...process.env, ...this.env } });
    if (this.stdout) fs.closeSync(out);
    for (let i = 0; i < 400 && !(await canConnect(this.port)); i++) await sleep(10);
    await sleep(300);
    this.pid = this.proc.pid;
    return this;
  }

  async stop() {
    const gone = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await gone;
  }

  /** A loadgen run against this server, with the server's CPU time over it. */
  measure(mode, args) {
    const before = cpuTicks(this.pid);
    const result = run(mode, { port: this.port, src: sourceRange(), seconds: SECONDS, ...args });
    const ticks = cpuTicks(this.pid) - before;
    if (result.errors > result.ops / 100) throw new Error(`${this.name}: ${mode} ${JSON.stringify(args)}: ${JSON.stringify(result)}`);
    return { ...result, rate: result.ops / result.seconds, cpuUsPerOp: result.ops ? (ticks / TICKS) * 1e6 / result.ops : NaN };
  }

  /** Holds `regs` registrations (node<first>…) and `idle` idle connections until release(). */
  async hold(regs, idle = 0, first = 0) {
    const child = spawn(loadgen, ['hold', `port=${this.port}`, `src=${sourceRange()}`, `regs=${regs}`, `idle=${idle}`, `first=${first}`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const line = await new Promise((resolve, reject) => {
      child.stdout.once('data', (d) => resolve(JSON.parse(d.toString())));
      child.once('exit', (code) => reject(new Error(`hold exited with ${code}`)));
    });
    if (line.failed > 0) throw new Error(`${this.name}: ${line.failed} of ${regs + idle} held connections failed`);
    await sleep(500);
    return {
      release: async () => {
        const gone = new Promise((r) => child.once('exit', r));
        child.stdin.end();
        await gone;
        await sleep(500);
      },
    };
  }
}

const node = process.execPath;
// OTP's epmd logs every connection that closes without a request (the benchmark's probes): quiet.
const otp = () => new Server("OTP's epmd", (port) => [OTP_EPMD, '-port', String(port), '-packet_timeout', LONG_TIMEOUT], {}, 'ignore');
// The bundle runs as installed: as an executable, with the node flags of its first line, and
// logging as under its systemd unit, whose stderr is the journal: the journal format (so pino is
// never loaded), at warn, so that nothing is logged on the measured paths, as OTP's epmd logs
// nothing without -d.
const NG_LOG = { EPMD_NG_LOG_FORMAT: 'journal', EPMD_NG_LOG_LEVEL: 'warn' };
const NG_ENV = { ...NG_LOG, EPMD_NG_MAX_CONNECTIONS: '19000' };
const ng = () => new Server('epmd-ng', (port) => [bundle, '-port', String(port), '-packet_timeout', LONG_TIMEOUT], NG_ENV);
const floor = () => new Server('floor', (port) => [node, floorScript, String(port)]);
// The node flags of the bundle's first line ("#!/usr/bin/env -S node FLAGS"), which its unit's
// ExecStart= repeats. The floor is measured on V8's defaults, and once more with these flags.
const NG_NODE_FLAGS = /^#!\/usr\/bin\/env -S node(.*)$/.exec(fs.readFileSync(bundle, 'utf8').split('\n', 1)[0])?.[1].trim().split(/\s+/).filter(Boolean) ?? [];
const floorWithNgFlags = () => new Server("floor, epmd-ng's node flags", (port) => [node, ...NG_NODE_FLAGS, floorScript, String(port)]);

// The same two with V8's scavenge trace (--trace-gc-nvp) on standard output: how much of what
// they allocate per operation outlives a scavenge, which is what the young generation's
// collections cost (README, Performance: "What outlives a scavenge").
const TRACE_GC = '--trace-gc-nvp';
const ngTraced = () =>
  new Server('epmd-ng, GC traced', (port) => [node, ...NG_NODE_FLAGS, TRACE_GC, bundle, '-port', String(port), '-packet_timeout', LONG_TIMEOUT], NG_ENV, 'inherit', path.join(cacheDir, 'bench-gc-ng.log'));
const floorTraced = () => new Server('floor, GC traced', (port) => [node, TRACE_GC, floorScript, String(port)], {}, 'inherit', path.join(cacheDir, 'bench-gc-floor.log'));

/** A measurement on a traced server, with the bytes that survived its scavenges meanwhile, per operation. */
function scavengeSurvival(server, mode, args) {
  const start = fs.statSync(server.stdout).size;
  const result = server.measure(mode, args);
  const text = fs.readFileSync(server.stdout).subarray(start).toString('latin1');
  let survived = 0;
  let scavenges = 0;
  for (const line of text.split('\n')) {
    const bytes = / gc=s .*\bnew_space_survived=(\d+)/.exec(line);
    if (!bytes) continue;
    survived += Number(bytes[1]);
    scavenges++;
  }
  return { survivedBytesPerOp: survived / result.ops, scavengesPerThousandOps: (scavenges * 1000) / result.ops };
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

/**
 * Runs `fn(server)` ROUNDS times on each server, rotating who goes first; medians per field, and
 * every round's figures (`rounds`) for ratios within a round (pairedRatio).
 */
function interleaved(servers, fn) {
  const runs = new Map(servers.map((s) => [s, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < servers.length; i++) {
      const s = servers[(i + r) % servers.length];
      runs.get(s).push(fn(s));
    }
  }
  const out = new Map();
  for (const [s, rs] of runs) out.set(s, { ...Object.fromEntries(Object.keys(rs[0]).map((k) => [k, median(rs.map((x) => x[k]))])), rounds: rs });
  return out;
}

const lookups = (names, conc, threads = 2) => ({ threads, conc, max: 2_000_000, lookup: `node:${names}`, expect: '7700' });
const namesRequest = (port) => ({ threads: 2, conc: 16, max: 200_000, req: '00016e', expect: port.toString(16).padStart(8, '0') });

function startup(server, extraEnv = {}) {
  const samples = [];
  for (let i = 0; i < 5; i++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const cmd = server.command(port);
    const notify = server.name === 'epmd-ng' ? 1 : 0;
    const r = spawnSync(loadgen, ['startup', `port=${port}`, `notify=${notify}`, '--', ...cmd], { env: { ...process.env, ...server.env, ...extraEnv }, timeout: 30_000 });
    const line = JSON.parse(r.stdout.toString().trim());
    if (line.listen_us >= 0) samples.push(line);
  }
  return { listenMs: median(samples.map((s) => s.listen_us / 1000)), readyMs: median(samples.map((s) => (s.ready_us >= 0 ? s.ready_us / 1000 : NaN))) };
}

/** exec → READY=1 on Debian's Node 18, inside the nspawn root of the systemd tests. */
function startupOnNode18() {
  if (process.env.BENCH_NODE18 === '0' || process.getuid?.() !== 0) return undefined;
  const sdh = path.join(root, 'scripts/sdh');
  const env = { ...process.env, SDH_NAME: `bench${process.pid}` };
  const boot = spawnSync('bash', [path.join(sdh, 'boot.sh')], { env, stdio: ['ignore', 'ignore', 'inherit'], timeout: 20 * 60_000 });
  if (boot.status !== 0) return { error: 'could not boot the nspawn root' };
  try {
    const share = path.join(process.env.SDH_HOME || '/var/cache/epmd-ng-sdh', 'share', env.SDH_NAME);
    fs.copyFileSync(bundle, path.join(share, 'epmd-ng.mjs'));
    fs.cpSync(path.join(root, 'dist/lib'), path.join(share, 'lib'), { recursive: true });
    fs.copyFileSync(loadgen, path.join(share, 'loadgen'));
    fs.copyFileSync(path.join(root, 'build/sd_native.node'), path.join(share, 'sd_native.node'));
    fs.copyFileSync(floorScript, path.join(share, 'floor.mjs'));
    const exec = (...cmd) => spawnSync('bash', [path.join(sdh, 'exec.sh'), ...cmd], { env, timeout: 60_000 }).stdout.toString().trim();
    const version = exec('/usr/bin/node', '--version');
    const samples = [];
    for (let i = 0; i < 7; i++) {
      const line = exec('env', ...Object.entries(NG_LOG).map(([k, v]) => `${k}=${v}`), '/host/loadgen', 'startup', 'port=4369', 'notify=1', '--', '/usr/bin/node', '/host/epmd-ng.mjs', '-port', '4369');
      samples.push(JSON.parse(line.split('\n').pop()));
    }
    const floorSamples = [];
    for (let i = 0; i < 7; i++) floorSamples.push(JSON.parse(exec('/host/loadgen', 'startup', 'port=4369', 'notify=0', '--', '/usr/bin/node', '/host/floor.mjs', '4369').split('\n').pop()));
    return {
      version,
      listenMs: median(samples.map((s) => s.listen_us / 1000)),
      readyMs: median(samples.map((s) => s.ready_us / 1000)),
      floorListenMs: median(floorSamples.map((s) => s.listen_us / 1000)),
    };
  } finally {
    spawnSync('bash', [path.join(sdh, 'stop.sh')], { env, stdio: 'ignore', timeout: 120_000 });
  }
}

/**
 * RSS once the heap has settled. After a burst of allocations V8 keeps its grown heap until its
 * memory reducer sees the process idle, 8 to 25 s later, and shrinks it, sometimes in a second
 * step 8 s after the first: what a host sees from then on. Returns when the RSS has dropped and
 * then held still for SETTLE_QUIET_MS, or after `maxMs` (a process without a garbage collector
 * never drops). Samples every 250 ms.
 */
const SETTLE_QUIET_MS = 10_000;
async function settledRss(pid, maxMs) {
  const start = Date.now();
  let last = rssBytes(pid);
  let changed = start;
  let dropped = false;
  while (Date.now() - start < maxMs && !(dropped && Date.now() - changed >= SETTLE_QUIET_MS)) {
    await sleep(250);
    const now = rssBytes(pid);
    if (now !== last) {
      dropped ||= now < last;
      changed = Date.now();
      last = now;
    }
  }
  return last;
}

/**
 * RSS of a fresh server: idle, then holding 1,000 and (where it can) 15,000 registrations. Each
 * figure is taken once the heap has settled (settledRss; at once for a server without a garbage
 * collector); the figure at 15,000 is also taken right after the burst of registrations.
 */
async function memory(make, big, gc = true) {
  const s = await make().start();
  const settle = (ms) => (gc ? settledRss(s.pid, ms) : rssBytes(s.pid));
  try {
    const idle = await settle(20_000);
    const small = await s.hold(1000);
    const at1000 = await settle(45_000);
    let at15000 = NaN;
    let burst15000 = NaN;
    if (big) {
      const more = await s.hold(14000, 0, 1000);
      burst15000 = rssBytes(s.pid);
      at15000 = await settle(45_000);
      await more.release();
    }
    await small.release();
    const perReg = (rss, n) => (rss - idle) / n / 1024;
    return { idleMB: idle / 2 ** 20, perReg1000KB: perReg(at1000, 1000), perReg15000KB: perReg(at15000, 15000), burstPerReg15000KB: perReg(burst15000, 15000) };
  } finally {
    await s.stop();
  }
}

/**
 * RSS per held registration on a fresh server when 1,000 registrations are made one at a time,
 * each followed by 256 that come and go (scripts/bench/interleaved-holder.mjs), once settled.
 */
const INTERLEAVED_KEEP = 1000;
const INTERLEAVED_CHURN = 256;
async function memoryInterleaved(make) {
  const s = await make().start();
  try {
    const idle = await settledRss(s.pid, 20_000);
    const holder = spawn(node, [interleavedHolder, String(s.port), String(INTERLEAVED_KEEP), String(INTERLEAVED_CHURN)], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      holder.stdout.once('data', resolve);
      holder.once('exit', (code) => reject(new Error(`${s.name}: the interleaved holder exited with ${code}`)));
    });
    const held = await settledRss(s.pid, 45_000);
    const gone = new Promise((r) => holder.once('exit', r));
    holder.stdin.end();
    await gone;
    return (held - idle) / INTERLEAVED_KEEP / 1024;
  } finally {
    await s.stop();
  }
}

/** A bare `node` process doing nothing, measured as the servers' idle RSS is. */
async function bareNodeRss() {
  const child = spawn(node, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  await sleep(800);
  const rss = await settledRss(child.pid, 20_000);
  child.kill('SIGKILL');
  return rss / 2 ** 20;
}

/**
 * Idle RSS in MB, the median of `measure` on three fresh processes at once: which pages of a
 * process are resident moves by some 0.3 MB from one start to the next.
 */
async function medianOfThree(measure) {
  return median(await Promise.all([0, 1, 2].map(() => measure())));
}

/** The idle RSS of a fresh server, in MB, once settled. */
async function idleRss(make, gc = true) {
  const s = await make().start();
  try {
    return (gc ? await settledRss(s.pid, 20_000) : rssBytes(s.pid)) / 2 ** 20;
  } finally {
    await s.stop();
  }
}

const fmt = (x, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–');
const times = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
const ratio = (a, b) => times(a / b);

/** a / b as the median over rounds of the two servers' figures in the same round. */
function pairedRatio(a, b, field) {
  if (!a?.rounds || !b?.rounds) return '–';
  return times(median(a.rounds.map((x, i) => x[field] / b.rounds[i][field])));
}

async function main() {
  ensureOtpEpmd();
  buildLoadgen();
  if (!fs.existsSync(bundle)) throw new Error('dist/epmd-ng.mjs is missing: npm run build');
  const started = Date.now();
  const rows = [];
  const add = (workload, results, field, digits, better = 'higher') => rows.push({ workload, results, field, digits, better });

  // Measured side by side: most of it is waiting for V8's memory reducer.
  const [bareMB, memOtp, memNg, memFloor] = await Promise.all([medianOfThree(bareNodeRss), memory(otp, false, false), memory(ng, true), memory(floor, true)]);
  const [ngInterleaved, floorInterleaved, ngIdle, floorIdle, otpIdle] = await Promise.all([
    memoryInterleaved(ng),
    memoryInterleaved(floor),
    medianOfThree(() => idleRss(ng)),
    medianOfThree(() => idleRss(floor)),
    medianOfThree(() => idleRss(otp, false)),
  ]);
  const mem = {
    otp: { ...memOtp, idleMB: otpIdle },
    ng: { ...memNg, idleMB: ngIdle, perRegInterleavedKB: ngInterleaved },
    floor: { ...memFloor, idleMB: floorIdle, perRegInterleavedKB: floorInterleaved },
  };

  const O = await otp().start();
  const N = await ng().start();
  const F = await floor().start();
  const all = [O, N, F];
  const byName = (m) => ({ otp: m.get(O), ng: m.get(N), floor: m.get(F) });
  try {
    let holds = await Promise.all(all.map((s) => s.hold(1)));
    const one = byName(interleaved(all, (s) => s.measure('req', lookups(1, 1, 1))));
    add('lookup, 1 client: lookups/s', one, 'rate', 0);
    add('lookup, 1 client: p50 µs', one, 'p50_us', 0, 'lower');
    for (const conc of [16, 64]) {
      const r = byName(interleaved(all, (s) => s.measure('req', lookups(1, conc))));
      add(`lookup, ${conc} clients: lookups/s`, r, 'rate', 0);
      add(`lookup, ${conc} clients: p50 µs`, r, 'p50_us', 0, 'lower');
      add(`lookup, ${conc} clients: p99 µs`, r, 'p99_us', 0, 'lower');
      add(`lookup, ${conc} clients: server CPU µs/lookup`, r, 'cpuUsPerOp', 1, 'lower');
    }
    const FN = await floorWithNgFlags().start();
    let heldByFN;
    try {
      heldByFN = await FN.hold(1);
      const flags = interleaved([N, FN, F], (s) => s.measure('req', lookups(1, 16)));
      add(`lookup, 16 clients: server CPU µs/lookup, the floor with epmd-ng's node flags (${NG_NODE_FLAGS.join(' ') || 'none'})`, { ng: flags.get(N), floor: flags.get(FN) }, 'cpuUsPerOp', 1, 'lower');
      add("… the same run, the floor on V8's defaults", { ng: flags.get(N), floor: flags.get(F) }, 'cpuUsPerOp', 1, 'lower');
    } finally {
      await heldByFN?.release();
      await FN.stop();
    }
    const [NT, FT] = [await ngTraced().start(), await floorTraced().start()];
    const traceHolds = await Promise.all([NT.hold(1), FT.hold(1)]);
    try {
      const traced = (m) => ({ ng: m.get(NT), floor: m.get(FT) });
      for (const [label, mode, args] of [
        ['lookup, 16 clients', 'req', lookups(1, 16)],
        ['register churn', 'churn', { threads: 2, conc: 16, max: 2_000_000 }],
      ]) {
        for (const s of [NT, FT]) s.measure(mode, { ...args, seconds: 1 });
        const gc = traced(interleaved([NT, FT], (s) => scavengeSurvival(s, mode, args)));
        add(`${label}: bytes outliving a scavenge, per operation (${TRACE_GC})`, gc, 'survivedBytesPerOp', 0, 'lower');
      }
    } finally {
      await Promise.all(traceHolds.map((h) => h.release()));
      await Promise.all([NT.stop(), FT.stop()]);
    }
    const churn = byName(interleaved(all, (s) => s.measure('churn', { threads: 2, conc: 16, max: 2_000_000 })));
    add('register churn (ALIVE2 + close), 16 clients: /s', churn, 'rate', 0);
    add('register churn: server CPU µs/op', churn, 'cpuUsPerOp', 1, 'lower');
    await Promise.all(holds.map((h) => h.release()));

    holds = await Promise.all(all.map((s) => s.hold(1000)));
    const reg1000 = byName(interleaved(all, (s) => s.measure('req', lookups(1000, 16))));
    add('lookups, 1,000 registered nodes, 16 clients: /s', reg1000, 'rate', 0);
    const names1000 = byName(interleaved([O, N], (s) => s.measure('req', { ...namesRequest(s.port), minlen: 20_000 })));
    add('NAMES with 1,000 nodes, 16 clients: /s', names1000, 'rate', 0);
    await Promise.all(holds.map((h) => h.release()));

    holds = await Promise.all(all.map((s) => s.hold(1, 1000)));
    const idle1000 = byName(interleaved(all, (s) => s.measure('req', lookups(1, 16))));
    add('lookups, 1,000 idle connections, 16 clients: /s', idle1000, 'rate', 0);
    await Promise.all(holds.map((h) => h.release()));

    // epmd-ng only: OTP's epmd holds at most 1,019 connections, the floor has no NAMES.
    const big = await N.hold(10000);
    const names10000 = byName(interleaved([N], (s) => s.measure('req', { ...namesRequest(s.port), minlen: 200_000 })));
    add('NAMES with 10,000 nodes, 16 clients: /s', names10000, 'rate', 1);
    // No stalls: one client keeps looking up node0 while 1,000 NAMES requests arrive at once.
    const probe = spawn(loadgen, ['req', `port=${N.port}`, `src=${sourceRange()}`, 'threads=1', 'conc=1', 'seconds=4', 'max=1000000', 'lookup=node:1', 'expect=7700']);
    let probeOut = '';
    probe.stdout.on('data', (d) => (probeOut += d));
    const probeDone = new Promise((r) => probe.once('exit', r));
    await sleep(1000);
    const burst = run('req', { port: N.port, src: sourceRange(), threads: 2, conc: 1000, max: 1000, seconds: 30, req: '00016e', expect: N.port.toString(16).padStart(8, '0'), minlen: 200_000 });
    await probeDone;
    const stall = { burst, lookup: JSON.parse(probeOut.trim()) };
    await big.release();

    const startupOf = { otp: startup(O), ng: startup(N), floor: startup(F) };
    const node18 = startupOnNode18();

    console.log(`\nepmd-ng benchmark: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}; ${ROUNDS} interleaved rounds of ${SECONDS} s: medians, and ratios as the median of each round's ratio\n`);
    console.log(`| workload | OTP's epmd | epmd-ng | floor | epmd-ng / OTP | floor / OTP | epmd-ng / floor |`);
    console.log(`|---|---|---|---|---|---|---|`);
    for (const r of rows) {
      const { otp: o, ng: n, floor: f } = r.results;
      const cell = (x) => fmt(x?.[r.field], r.digits);
      console.log(`| ${r.workload} | ${cell(o)} | ${cell(n)} | ${cell(f)} | ${pairedRatio(n, o, r.field)} | ${pairedRatio(f, o, r.field)} | ${pairedRatio(n, f, r.field)} |`);
    }
    console.log(`| RSS idle, MB, median of three fresh processes (bare \`node\`: ${fmt(bareMB, 2)}) | ${fmt(mem.otp.idleMB, 2)} | ${fmt(mem.ng.idleMB, 2)} | ${fmt(mem.floor.idleMB, 2)} | | | |`);
    console.log(`| RSS per held registration at 1,000, KB | ${fmt(mem.otp.perReg1000KB, 2)} | ${fmt(mem.ng.perReg1000KB, 2)} | ${fmt(mem.floor.perReg1000KB, 2)} | | | |`);
    console.log(`| RSS per held registration at 15,000, KB | – | ${fmt(mem.ng.perReg15000KB, 2)} | ${fmt(mem.floor.perReg15000KB, 2)} | | | |`);
    console.log(`| … right after the burst of 15,000 registrations, before the heap settles, KB | – | ${fmt(mem.ng.burstPerReg15000KB, 2)} | ${fmt(mem.floor.burstPerReg15000KB, 2)} | | | |`);
    console.log(`| RSS per held registration at ${fmt(INTERLEAVED_KEEP)}, each made after ${INTERLEAVED_CHURN} that come and go, KB | – | ${fmt(mem.ng.perRegInterleavedKB, 2)} | ${fmt(mem.floor.perRegInterleavedKB, 2)} | | | |`);
    console.log(`| start-up: exec → listening, ms | ${fmt(startupOf.otp.listenMs, 1)} | ${fmt(startupOf.ng.listenMs, 1)} | ${fmt(startupOf.floor.listenMs, 1)} | ${ratio(startupOf.ng.listenMs, startupOf.otp.listenMs)} | ${ratio(startupOf.floor.listenMs, startupOf.otp.listenMs)} | ${ratio(startupOf.ng.listenMs, startupOf.floor.listenMs)} |`);
    console.log(`| start-up: exec → READY=1, ms (Node ${process.version}) | – | ${fmt(startupOf.ng.readyMs, 1)} | – | | | |`);
    if (node18 && !node18.error) {
      console.log(`| start-up on Debian's Node ${node18.version} (nspawn root): exec → listening, ms | – | ${fmt(node18.listenMs, 1)} | ${fmt(node18.floorListenMs, 1)} | | | ${ratio(node18.listenMs, node18.floorListenMs)} |`);
      console.log(`| start-up on Debian's Node ${node18.version} (nspawn root): exec → READY=1, ms | – | ${fmt(node18.readyMs, 1)} | – | | | |`);
    }
    else if (node18?.error) console.log(`(Node 18 start-up not measured: ${node18.error})`);
    console.log(
      `\nNo stalls: while 1,000 NAMES requests for 10,000 nodes were served (${fmt(burst.ops)} replies of ≥ 200 kB in ${fmt(burst.seconds, 2)} s), ` +
        `${fmt(stall.lookup.ops)} lookups from one client: slowest ${fmt(stall.lookup.max_us / 1000, 1)} ms, p99 ${fmt(stall.lookup.p99_us / 1000, 2)} ms.`,
    );
    const file = path.join(cacheDir, `bench-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify({ machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version }, rows, mem, bareMB, startup: startupOf, node18, stall }, null, 1));
    console.log(`raw figures: ${path.relative(root, file)}; ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    await Promise.all(all.map((s) => s.stop()));
  }
}

await main();
