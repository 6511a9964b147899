// The listening sockets' backlog: how many connections the kernel completes and queues while the
// daemon is not accepting (a long garbage collection, a stop under a debugger, many nodes starting
// at once). OTP's epmd asks for SOMAXCONN. Node's listen() asks for 511, and Node takes a socket it
// is handed (ours from the addon, systemd's) over by calling listen() on it again, which would cut
// the backlog to 511 as well: SYNs beyond it are dropped, and their clients wait a second for a
// retransmit. Every case runs against epmd-ng and OTP's epmd alike.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { daemonCommand, startDaemon, type Daemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { frame, register, type Registration } from '../helpers/wire.js';
import { exchange, launchDaemon, NAMES_REQ, port2Ok, sleep, u32 } from '../conformance/util.js';

const IMPLS = [
  { id: 'epmd-ng', command: daemonCommand('ng') },
  { id: "OTP's epmd", command: daemonCommand('otp') },
];

/** SOMAXCONN as glibc defines it (what OTP's epmd passes to listen()), capped by the kernel. */
const SOMAXCONN = Math.min(4096, Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8')));

interface ListeningSocket {
  local: string;
  /** Connections completed by the kernel and not yet accepted (Recv-Q). */
  queued: number;
  /** The most it queues (Send-Q). */
  backlog: number;
}

/** The TCP sockets listening on `port`, as the kernel reports them (ss, through inet_diag). */
function listening(port: number): ListeningSocket[] {
  const out = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [, recvQ, sendQ, local] = line.trim().split(/\s+/);
      return { local: local!, queued: Number(recvQ), backlog: Number(sendQ) };
    });
}

/** One PORT_PLEASE2_REQ on its own connection, written as soon as it connects; resolves with the reply. */
function lookup(host: string, port: number, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const chunks: Buffer[] = [];
    socket.once('connect', () => socket.write(frame(Buffer.from(`z${name}`))));
    socket.on('data', (d) => chunks.push(d));
    socket.once('end', () => {
      socket.destroy();
      resolve(Buffer.concat(chunks));
    });
    socket.once('error', reject);
  });
}

describe.each(IMPLS)('$id: the listen backlog', ({ command }) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(): Promise<Daemon> {
    const d = await startDaemon([], { command });
    cleanups.push(() => d.stop());
    return d;
  }

  it('is SOMAXCONN on each of its default sockets', async () => {
    const d = await start();
    const sockets = listening(d.port);
    expect(sockets.map((s) => s.local).sort()).toEqual([`0.0.0.0:${d.port}`, `[::]:${d.port}`]);
    for (const s of sockets) expect(s.backlog).toBe(SOMAXCONN);
  });

  // Each family has a socket of its own (0.0.0.0 and [::], IPv6-only), so each is tried.
  it.each([
    ['127.0.0.1', '0.0.0.0'],
    ['::1', '[::]'],
  ])('queues a burst of 800 connections to %s while it is stopped, and answers every one once it runs again', async (host, wildcard) => {
    const d = await start();
    const node: Registration = await register(d.port, { port: 7100, name: 'burst' });
    cleanups.push(() => void node.socket.destroy());
    const burst = 800;
    process.kill(d.pid, 'SIGSTOP');
    cleanups.push(() => void process.kill(d.pid, 'SIGCONT'));
    const replies = Array.from({ length: burst }, () => lookup(host, d.port, 'burst'));
    // Wait until the kernel has queued them all, or has stopped queueing more for a second.
    const queued = () => listening(d.port).find((s) => s.local === `${wildcard}:${d.port}`)?.queued ?? -1;
    let last = -1;
    for (let since = Date.now(); Date.now() - since < 1000 && last < burst; await sleep(50)) {
      const now = queued();
      if (now !== last) since = Date.now();
      last = now;
    }
    process.kill(d.pid, 'SIGCONT');
    expect(last).toBe(burst);
    const answers = await Promise.all(replies);
    const wanted = port2Ok({ port: 7100, name: 'burst' });
    expect(answers.filter((a) => a.equals(wanted)).length).toBe(burst);
  });

  it("keeps the backlog of a socket it is handed (a socket unit's Backlog=)", async () => {
    const port = await freePort();
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port, backlog: 1000 }, resolve));
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    expect(listening(port)[0]?.backlog).toBe(1000);
    try {
      const d = await launchDaemon({ args: ['-port', String(port), '-systemd'], listenFds: [fd], probePort: port, command });
      cleanups.push(() => d.stop());
    } finally {
      server.close(); // our copy only; the daemon keeps its own descriptor
    }
    // Our copy accepted too until now: only a reply shows that the daemon has taken the socket over.
    expect((await exchange(port, NAMES_REQ)).recv.subarray(0, 4)).toEqual(u32(port));
    expect(listening(port)).toEqual([{ local: `127.0.0.1:${port}`, queued: 0, backlog: 1000 }]);
  });
});
