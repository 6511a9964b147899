// Small helpers shared by the benchmark scripts (bench.mjs, soak.mjs, bench/interleaved-holder.mjs).
import net from 'node:net';

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** A TCP port free on 127.0.0.1 right now (the kernel's pick). */
export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** An EPMD request: the payload behind its 2-byte length. */
export function frame(payload) {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(payload.length);
  return Buffer.concat([h, payload]);
}

/** ALIVE2_REQ for a normal node at `port`, versions 6 to 5, no extra. */
function alive2(name, port) {
  const n = Buffer.from(name);
  const p = Buffer.alloc(13 + n.length);
  p[0] = 120; p.writeUInt16BE(port, 1); p[3] = 77; p.writeUInt16BE(6, 5); p.writeUInt16BE(5, 7); p.writeUInt16BE(n.length, 9);
  n.copy(p, 11);
  return frame(p);
}

/**
 * Registers `name` and resolves with the open registration connection once the reply says ok.
 * Without `localAddress` the kernel picks the source at connect(), which may reuse a port whose
 * earlier connection is in TIME_WAIT; a bound source address cannot, and runs out of ports after
 * some 28,000 short-lived registrations.
 */
export function register(port, name, nodePort, localAddress) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => s.write(alive2(name, nodePort)));
    s.once('data', (d) => (d[1] === 0 ? resolve(s) : reject(new Error(`registration of ${name} refused`))));
    s.on('error', reject);
  });
}
