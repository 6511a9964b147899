// npm run bench: how fast epmd-ng answers, and whether the cost of a request grows with the number
// of registrations or of open connections (it must not: no scan of all connections per event).
// Starts the built daemon (dist/epmd-ng.mjs) on a free loopback port; prints one table.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

const bundle = new URL('../dist/epmd-ng.mjs', import.meta.url).pathname;
const LOOKUPS = Number(process.env.BENCH_LOOKUPS ?? 20000);
const CONCURRENCY = 32;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function frame(payload) {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(payload.length);
  return Buffer.concat([h, payload]);
}

function alive2(name, port) {
  const n = Buffer.from(name);
  const p = Buffer.alloc(13 + n.length);
  p[0] = 120; p.writeUInt16BE(port, 1); p[3] = 77; p.writeUInt16BE(6, 5); p.writeUInt16BE(5, 7); p.writeUInt16BE(n.length, 9);
  n.copy(p, 11);
  return frame(p);
}

/**
 * One request on a fresh connection; resolves with the reply when the server closes. Each part of
 * the benchmark connects from its own loopback address: epmd closes first, so its side keeps every
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

function register(port, name, nodePort) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.1.1' }, () => s.write(alive2(name, nodePort)));
    s.once('data', (d) => (d[1] === 0 ? resolve(s) : reject(new Error(`registration of ${name} refused`))));
    s.on('error', reject);
  });
}

async function inBatches(count, make, batch = 500) {
  const out = [];
  for (let i = 0; i < count; i += batch) out.push(...(await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => make(i + j)))));
  return out;
}

async function lookups(port, names, localAddress) {
  const latencies = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < LOOKUPS) {
      const name = names[next++ % names.length];
      const t = performance.now();
      const reply = await request(port, frame(Buffer.from(`z${name}`)), localAddress);
      if (reply[0] !== 119 || reply[1] !== 0) throw new Error(`lookup of ${name} failed`);
      latencies.push(performance.now() - t);
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))].toFixed(2);
  return { rate: Math.round(LOOKUPS / seconds), p50: pct(0.5), p99: pct(0.99) };
}

/**
 * Registrations and idle connections are held by a separate process, so that the lookups measured
 * here do not share an event loop with 15,000 sockets of the benchmark's own.
 */
async function holder(port) {
  const [regs, idleCount] = process.argv.slice(4).map(Number);
  const t = performance.now();
  await inBatches(regs, (i) => register(port, `node${i}`, 20000 + (i % 40000)));
  const registerRate = Math.round(regs / ((performance.now() - t) / 1000));
  await inBatches(idleCount, () => new Promise((r, j) => { const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.1.2' }, () => r(s)); s.on('error', j); }));
  process.stdout.write(`${JSON.stringify({ registerRate })}\n`);
  setInterval(() => {}, 1 << 30);
}

function hold(port, regs, idleCount) {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, 'hold', String(port), String(regs), String(idleCount)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => child.stdout.once('data', (d) => resolve({ child, ...JSON.parse(d.toString()) })));
}

if (process.argv[2] === 'hold') {
  await holder(Number(process.argv[3]));
} else {
  const port = await freePort();
  const daemon = spawn(process.execPath, [bundle, '-port', String(port)], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, EPMD_NG_LOG_LEVEL: 'warn', EPMD_NG_MAX_CONNECTIONS: '30000' } });
  for (let i = 0; i < 200; i++) {
    if (await new Promise((r) => net.connect(port, '127.0.0.1').on('connect', function () { this.destroy(); r(true); }).on('error', () => r(false)))) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const rows = [];
  const small = await hold(port, 10, 0);
  rows.push({ scenario: '10 registrations', ...(await lookups(port, ['node0', 'node9'], '127.0.2.1')) });
  small.child.kill();
  await new Promise((r) => setTimeout(r, 300));

  const large = await hold(port, 10000, 0);
  rows.push({ scenario: '10,000 registrations', ...(await lookups(port, ['node0', 'node9999', 'node5000'], '127.0.2.2')) });
  const t = performance.now();
  const names = await request(port, frame(Buffer.from('n')), '127.0.2.3');
  const namesMs = (performance.now() - t).toFixed(1);
  const idle = await hold(port, 0, 5000);
  rows.push({ scenario: '10,000 registrations + 5,000 idle connections', ...(await lookups(port, ['node0', 'node9999'], '127.0.2.4')) });

  console.log(`epmd-ng benchmark (node ${process.version}, ${LOOKUPS} PORT_PLEASE2 lookups per row, ${CONCURRENCY} in flight, one connection each)`);
  console.table(rows.map((r) => ({ scenario: r.scenario, 'lookups/s': r.rate, 'p50 ms': r.p50, 'p99 ms': r.p99 })));
  console.log(`registrations: ${large.registerRate}/s (ALIVE2, 500 in flight); NAMES with 10,000 nodes: ${names.length} bytes in ${namesMs} ms`);
  large.child.kill();
  idle.child.kill();
  daemon.kill('SIGTERM');
}
