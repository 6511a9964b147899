// Closing a listening socket to new connections and watching its accept queue (the addon, as root:
// Linux 6.18 and later want CAP_NET_ADMIN to filter TCP sockets). `epmd-ng hand-over-sockets`
// retires erlang-base's socket this way; test/systemd/handover.test.ts runs the whole hand-over.
import fs from 'node:fs';
import net from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SdNative } from '../../src/systemd/native.js';
import { freePort } from '../helpers/ports.js';
import { nativeAsRoot } from '../helpers/sd-native.js';

const opened: { fds: number[]; sockets: net.Socket[]; servers: net.Server[] } = { fds: [], sockets: [], servers: [] };
afterEach(() => {
  opened.sockets.splice(0).forEach((s) => s.destroy());
  opened.servers.splice(0).forEach((s) => s.close());
  opened.fds.splice(0).forEach((fd) => fs.closeSync(fd));
});

/** Connects and reports whether the handshake completed within ms. */
function connects(host: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    opened.sockets.push(s);
    const timer = setTimeout(() => resolve(false), ms);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

async function queueReaches(native: SdNative, fd: number, n: number): Promise<void> {
  for (let i = 0; i < 100 && native.acceptQueueLength(fd) !== n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(native.acceptQueueLength(fd)).toBe(n);
}

describe('retiring a listening socket (the addon)', () => {
  let native: SdNative;
  beforeAll(() => {
    native = nativeAsRoot();
  });

  it('acceptQueueLength counts the connections waiting to be accepted; null for other fds', async () => {
    const port = await freePort();
    const fd = native.listenTcp('127.0.0.1', port, {});
    opened.fds.push(fd);
    expect(native.acceptQueueLength(fd)).toBe(0);
    for (let i = 0; i < 3; i++) expect(await connects('127.0.0.1', port, 1000)).toBe(true);
    await queueReaches(native, fd, 3);
    const file = fs.openSync('/dev/null', 'r');
    opened.fds.push(file);
    expect(native.acceptQueueLength(file)).toBeNull();
    expect(() => native.acceptQueueLength(60_000)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('dropNewConnections: a dual-stack socket takes no new connection over either family, and keeps the queued one', async () => {
    const port = await freePort();
    const fd = native.listenTcp('::', port, { ipv6Only: false });
    expect(await connects('::1', port, 1000)).toBe(true);
    await queueReaches(native, fd, 1);
    expect(native.filterState(fd)).toBe('none');
    native.dropNewConnections(fd);
    expect(native.filterState(fd)).toBe('no-new-connections');
    // The SYN is dropped: no SYN-ACK and no RST, so the clients wait (and would send it again after 1 s).
    const [v6, v4] = await Promise.all([connects('::1', port, 600), connects('127.0.0.1', port, 600)]);
    expect({ v6, v4 }).toEqual({ v6: false, v4: false });
    expect(native.acceptQueueLength(fd)).toBe(1);
    // What was queued before is still there to accept (the server owns the fd from here on).
    const server = new net.Server();
    opened.servers.push(server);
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    server.listen({ fd });
    opened.sockets.push(await accepted);
    await queueReaches(native, fd, 0);
  });
});
