import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { alive2Payload, exchange, frame, hex, register, type Registration } from '../helpers/wire.js';

/** Each socket's own port, which a destroyed socket no longer tells. */
const localPorts = new WeakMap<net.Socket, number>();

/** Opens `count` connections that never send anything; resolves once all are connected. */
async function openIdle(port: number, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  const batch = 250;
  for (let i = 0; i < count; i += batch) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, () => new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.once('connect', () => {
          localPorts.set(s, s.localPort!);
          resolve(s);
        });
        s.once('error', reject);
      })),
    );
    for (const s of opened) s.on('error', () => {});
    sockets.push(...opened);
  }
  return sockets;
}

/** How many of the sockets the server has closed. */
function closedCount(sockets: net.Socket[]): number {
  return sockets.filter((s) => s.destroyed || s.readableEnded).length;
}

const lookup = (name: string) => frame(Buffer.concat([Buffer.from([122]), Buffer.from(name)]));

describe('5,000 idle connections', () => {
  let daemon: Daemon;
  let idle: net.Socket[] = [];
  let node: Registration;

  beforeAll(async () => {
    daemon = await startDaemon();
    node = await register(daemon.port, { port: 7001, name: 'steady' });
  });
  afterAll(async () => {
    idle.forEach((s) => s.destroy());
    node?.socket.destroy();
    await daemon?.stop();
  });

  it('keeps answering lookups and NAMES while 5,000 connections sit idle', async () => {
    idle = await openIdle(daemon.port, 5000);
    for (let i = 0; i < 20; i++) {
      const r = await exchange(daemon.port, lookup('steady'));
      expect(r.recv.subarray(0, 4)).toEqual(hex('77 00 1b 59'));
    }
    const names = await exchange(daemon.port, frame(Buffer.from('n')));
    expect(names.recv.subarray(4).toString()).toBe('name steady at port 7001\n');
    // The default cap comes from the fd limit, far above 5,000: nobody was evicted.
    expect(closedCount(idle)).toBe(0);
  });
});

describe('connection cap: idle clients cannot starve lookups', () => {
  let daemon: Daemon;
  let sockets: net.Socket[] = [];
  const nodes: Registration[] = [];

  beforeAll(async () => {
    daemon = await startDaemon([], { env: { EPMD_NG_MAX_CONNECTIONS: '100' } });
  });
  afterEach(() => undefined);
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    nodes.forEach((n) => n.socket.destroy());
    await daemon?.stop();
  });

  it('evicts the oldest idle connections, never registrations, and keeps serving', async () => {
    for (let i = 0; i < 30; i++) nodes.push(await register(daemon.port, { port: 8000 + i, name: `reg${i}` }));
    sockets = await openIdle(daemon.port, 150);
    // Give the daemon time to evict: at most 70 idle connections fit beside the 30 registrations.
    await new Promise((r) => setTimeout(r, 300));
    const closed = closedCount(sockets);
    expect(closed).toBeGreaterThanOrEqual(80);
    // The oldest were evicted first: the newest idle connection is still open.
    expect(sockets[sockets.length - 1]!.destroyed).toBe(false);
    expect(sockets[0]!.destroyed || sockets[0]!.readableEnded).toBe(true);
    for (let i = 0; i < 30; i++) {
      const r = await exchange(daemon.port, lookup(`reg${i}`));
      expect(r.recv.readUInt16BE(2)).toBe(8000 + i);
    }
    const names = await exchange(daemon.port, frame(Buffer.from('n')));
    expect(names.recv.subarray(4).toString().split('\n').filter(Boolean)).toHaveLength(30);
    expect(nodes.every((n) => !n.socket.destroyed)).toBe(true);
    // The warning names whom it evicted, and in which phase: the oldest idle connection first.
    const evictions = daemon
      .stderr()
      .split('\n')
      .filter((line) => line.includes('"kind":"overload"'))
      .map((line) => JSON.parse(line) as { peer: string; phase: string; msg: string });
    const idlePeers = new Set(sockets.map((s) => `127.0.0.1:${localPorts.get(s)}`));
    expect(evictions.length).toBeGreaterThan(0);
    for (const e of evictions) expect(e).toMatchObject({ peer: expect.toSatisfy((p: string) => idlePeers.has(p)), phase: 'reading', msg: expect.stringContaining('evicting the oldest') });
  });
});

describe('registrations up to the connection cap', () => {
  // A cap of 20 keeps 1 connection for queries (queryReserve): 19 may hold registrations.
  let daemon: Daemon;
  const nodes: Registration[] = [];

  beforeAll(async () => {
    daemon = await startDaemon([], { env: { EPMD_NG_MAX_CONNECTIONS: '20' } });
  });
  afterAll(async () => {
    nodes.forEach((n) => n.socket.destroy());
    await daemon?.stop();
  });

  it('refuses the registration that would take the last slot, and keeps answering lookups', async () => {
    for (let i = 0; i < 19; i++) nodes.push(await register(daemon.port, { port: 9300 + i, name: `held${i}` }));
    expect(nodes.every((n) => n.reply.subarray(0, 2).equals(hex('76 00')))).toBe(true);
    // The 20th: the failure reply, and the connection closed, as for a query.
    const refused = await exchange(daemon.port, frame(alive2Payload({ port: 9399, name: 'one-too-many' })));
    expect(refused).toMatchObject({ recv: hex('76 01 00 00 00 63'), end: 'FIN' });
    expect(daemon.stderr()).toContain('registration refused: the rest of the connection cap is kept for queries');
    // Lookups and NAMES still get in, also when an idle connection takes the last slot (evicted).
    const idle = await openIdle(daemon.port, 1);
    expect((await exchange(daemon.port, lookup('held7'))).recv.subarray(0, 4)).toEqual(hex('77 00 24 5b'));
    const names = await exchange(daemon.port, frame(Buffer.from('n')));
    expect(names.recv.subarray(4).toString().split('\n').filter(Boolean)).toHaveLength(19);
    expect(closedCount(idle)).toBe(1);
    expect(nodes.every((n) => !n.socket.destroyed)).toBe(true);
  });

  it('counts failed registrations that keep their connection, and frees the slot when one ends', async () => {
    await nodes.pop()!.close();
    // A duplicate name is refused but keeps its connection (spec Q2), so it holds the 19th slot.
    const duplicate = await register(daemon.port, { port: 9398, name: 'held0' });
    nodes.push(duplicate);
    expect(duplicate.reply).toEqual(hex('76 01 00 00 00 63'));
    expect((await exchange(daemon.port, frame(alive2Payload({ port: 9397, name: 'newcomer' })))).recv).toEqual(hex('76 01 00 00 00 63'));
    await nodes.pop()!.close();
    const newcomer = await register(daemon.port, { port: 9397, name: 'newcomer' });
    nodes.push(newcomer);
    expect(newcomer.reply.subarray(0, 2)).toEqual(hex('76 00'));
  });
});

describe('file descriptor exhaustion (OTP exits here, spec Q5)', () => {
  let daemon: Daemon;
  let sockets: net.Socket[] = [];
  let node: Registration;

  beforeAll(async () => {
    // 100 fds in all, but a cap far above it: accept() itself runs out of descriptors.
    daemon = await startDaemon([], { wrapper: ['prlimit', '--nofile=100:100'], env: { EPMD_NG_MAX_CONNECTIONS: '5000' } });
    node = await register(daemon.port, { port: 9200, name: 'keeper' });
  });
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    node?.socket.destroy();
    await daemon?.stop();
  });

  it('keeps running and keeps its registrations when accept() hits EMFILE', async () => {
    sockets = await openIdle(daemon.port, 200);
    await new Promise((r) => setTimeout(r, 300));
    // Connections beyond the descriptors were dropped by the kernel-side accept-and-close of
    // libuv, which proves the limit was really hit; the daemon lives on.
    expect(closedCount(sockets)).toBeGreaterThan(50);
    expect(daemon.proc.exitCode).toBeNull();
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => setTimeout(r, 300));
    const r = await exchange(daemon.port, lookup('keeper'));
    expect(r.recv.readUInt16BE(2)).toBe(9200);
    expect(node.socket.destroyed).toBe(false);
  });
});
