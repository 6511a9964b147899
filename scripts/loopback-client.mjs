// Wire helpers for the benchmarks (bench.mjs, soak.mjs): plain JavaScript so that they run on the
// built daemon without a TypeScript step. Every connection goes to 127.0.0.1.
import { spawn } from 'node:child_process';
import net from 'node:net';

export const bundle = new URL('../dist/epmd-ng.mjs', import.meta.url).pathname;

export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function frame(payload) {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(payload.length);
  return Buffer.concat([h, payload]);
}

export function alive2(name, port) {
  const n = Buffer.from(name);
  const p = Buffer.alloc(13 + n.length);
  p[0] = 120; p.writeUInt16BE(port, 1); p[3] = 77; p.writeUInt16BE(6, 5); p.writeUInt16BE(5, 7); p.writeUInt16BE(n.length, 9);
  n.copy(p, 11);
  return frame(p);
}

/**
 * One request on a fresh connection; resolves with the reply when the server closes. Each part of
 * a benchmark connects from its own loopback address: epmd closes first, so its side keeps every
 * connection in TIME_WAIT, and tens of thousands of connections from one address would start to
 * collide with them (SYN retransmits, refused connects) and measure the kernel, not epmd.
 */
export function request(port, bytes, localAddress) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => s.write(bytes));
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

/** Registers `name` and resolves with the open registration connection once the reply says ok. */
export function register(port, name, nodePort, localAddress = '127.0.1.1') {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => s.write(alive2(name, nodePort)));
    s.once('data', (d) => (d[1] === 0 ? resolve(s) : reject(new Error(`registration of ${name} refused`))));
    s.on('error', reject);
  });
}

/** Starts the built daemon on `port` with `env` added and resolves once it accepts connections. */
export async function startDaemon(port, env, stdio = ['ignore', 'ignore', 'inherit']) {
  const daemon = spawn(process.execPath, [bundle, '-port', String(port)], { stdio, env: { ...process.env, ...env } });
  for (let i = 0; i < 200; i++) {
    if (await new Promise((r) => net.connect(port, '127.0.0.1').on('connect', function () { this.destroy(); r(true); }).on('error', () => r(false)))) return daemon;
    await new Promise((r) => setTimeout(r, 25));
  }
  daemon.kill('SIGKILL');
  throw new Error(`the daemon did not listen on port ${port}`);
}
