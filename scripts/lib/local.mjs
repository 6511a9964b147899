// Small helpers shared by the benchmark scripts (bench.mjs, soak.mjs).
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
