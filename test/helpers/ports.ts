import net from 'node:net';

function listenOnce(host: string, port: number): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(null));
    server.listen({ host, port, exclusive: true }, () => resolve(server));
  });
}

function close(server: net.Server | null): Promise<void> {
  return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
}

/**
 * A TCP port that is free right now on both 127.0.0.1 and ::1 (the daemon binds both by default).
 * The kernel picks it, so parallel test files do not collide; there is still a small window before
 * the daemon binds it, which startDaemon covers by retrying.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const v4 = await listenOnce('127.0.0.1', 0);
    if (!v4) continue;
    const port = (v4.address() as net.AddressInfo).port;
    const v6 = await listenOnce('::1', port);
    await close(v4);
    await close(v6);
    if (v6) return port;
  }
  throw new Error('no free loopback port found');
}
