// Local versus non-local peers (spec §7), loopback-only parts of golden sections G-G and G-F:
// 127.0.0.5 -> 127.0.0.1 is local, ::1 is local (OTP suite register_name_ipv6), and on a dual-stack
// socket 127.0.0.2 -> 127.0.0.1 arrives as a v4-mapped peer, which OTP treats as non-local (Q12;
// epmd-ng deliberately treats ::ffff:127.0.0.0/104 as loopback). The documentation-address cases of
// G-G need a private network namespace and are not part of this suite.
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { impl, type Daemon } from '../helpers/daemon.js';
import { alive2Payload } from '../helpers/wire.js';
import {
  DUMP_REQ,
  KILL_REQ,
  NAMES_REQ,
  PORT2_NOT_FOUND,
  Resources,
  dumpReply,
  exchange,
  frame,
  freePort,
  hex,
  launchDaemon,
  maskFd,
  namesReply,
  port2Ok,
  portPleaseReq,
  stopReq,
  u32,
  waitGone,
} from './util.js';

describe('G-G 127.0.0.5 -> 127.0.0.1 is a local peer', () => {
  const res = new Resources();
  let d: Daemon;
  const from = { localAddress: '127.0.0.5' };

  beforeAll(async () => {
    d = await res.daemon();
  });
  afterAll(() => res.cleanup());

  it('ALIVE2 rem is accepted and the connection stays open', async () => {
    const c = await res.conn(d.port, from);
    c.write(frame(alive2Payload({ port: 5555, name: 'rem' })));
    const reply = await c.waitBytes(6);
    expect(reply.subarray(0, 2)).toEqual(hex('76 00'));
    expect(reply.length).toBe(6);
    expect(await c.waitEnd(800)).toBe('open');
    c.destroy();
    expect(await waitGone(d.port, 'rem')).toBe(true);
  });

  it('NAMES and PORT_PLEASE2 are served', async () => {
    const n = await exchange(d.port, NAMES_REQ, from);
    expect(n.recv).toEqual(u32(d.port));
    expect(n.end).toBe('FIN');
    const p = await exchange(d.port, portPleaseReq('rem'), from);
    expect(p.recv).toEqual(PORT2_NOT_FOUND);
    expect(p.end).toBe('FIN');
  });

  it('DUMP is served (rem is old/unused)', async () => {
    const r = await exchange(d.port, DUMP_REQ, from);
    expect(maskFd(r.recv)).toEqual(dumpReply(d.port, [], [['rem', 5555]]));
    expect(r.end).toBe('FIN');
  });

  it('STOP without relaxed checking gets no reply', async () => {
    const r = await exchange(d.port, stopReq('rem'), from);
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it('KILL is obeyed (OK, exit 0)', async () => {
    const r = await exchange(d.port, KILL_REQ, from);
    expect(r.recv).toEqual(hex('4f 4b'));
    const ex = await Promise.race([d.exited, new Promise<null>((x) => setTimeout(() => x(null), 5000))]);
    expect(ex).toEqual({ code: 0, signal: null });
  });
});

describe('IPv6 loopback ::1 (G-F G3, OTP suite register_name_ipv6)', () => {
  const res = new Resources();
  afterEach(() => res.cleanup());

  it('registration, lookup, NAMES, DUMP and KILL work over ::1 exactly as over 127.0.0.1', async () => {
    const d = await res.daemon();
    const f = { port: 1000, name: 'foobar6', high: 5, low: 5 };
    const reg = await res.register(d.port, f, '::1');
    expect(reg.reply.subarray(0, 3)).toEqual(hex('79 00 00'));
    const f2 = { port: 4002, name: 'v6node' };
    await res.register(d.port, f2, '::1');
    // Visible from both families.
    for (const host of ['::1', '127.0.0.1']) {
      expect((await exchange(d.port, portPleaseReq('foobar6'), { host })).recv).toEqual(port2Ok(f));
      expect((await exchange(d.port, NAMES_REQ, { host })).recv).toEqual(
        namesReply(d.port, [
          ['v6node', 4002],
          ['foobar6', 1000],
        ]),
      );
    }
    const dump = await exchange(d.port, DUMP_REQ, { host: '::1' });
    expect(maskFd(dump.recv)).toEqual(
      dumpReply(d.port, [
        ['v6node', 4002],
        ['foobar6', 1000],
      ]),
    );
    await reg.close();
    expect(await waitGone(d.port, 'foobar6')).toBe(true);
    const k = await exchange(d.port, KILL_REQ, { host: '::1' });
    expect(k.recv).toEqual(Buffer.from('NO'));
  });
});

/** A dual-stack IPv6 listening socket bound to ::ffff:127.0.0.1 (IPv4 clients appear v4-mapped). */
function dualStackListener(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: '::ffff:127.0.0.1', port, ipv6Only: false }, () => resolve(s));
  });
}

describe('v4-mapped peers on an inherited dual-stack socket (-systemd; G-F G1/G2, Q12)', () => {
  const res = new Resources();
  let d: Daemon;
  const other = { localAddress: '127.0.0.2' };

  beforeAll(async () => {
    const port = await freePort();
    const server = await dualStackListener(port);
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    try {
      // -port only sets the port reported in NAMES/DUMP; the socket comes from LISTEN_FDS.
      d = res.adoptDaemon(await launchDaemon({ args: ['-port', String(port), '-systemd'], listenFds: [fd], probePort: port }));
    } finally {
      server.close(); // our copy only; the daemon keeps its own descriptor
    }
  });
  afterAll(() => res.cleanup());

  it('G1 127.0.0.1 -> 127.0.0.1 (peer ::ffff:127.0.0.1) is local: ALIVE2 accepted', async () => {
    const reg = await res.register(d.port, { port: 4000, name: 'sysd' });
    expect(reg.reply.subarray(0, 2)).toEqual(hex('76 00'));
    expect((await exchange(d.port, NAMES_REQ)).recv).toEqual(namesReply(d.port, [['sysd', 4000]]));
  });

  it('G2b NAMES and PORT_PLEASE2 from 127.0.0.2 are served', async () => {
    expect((await exchange(d.port, portPleaseReq('sysd'), other)).recv).toEqual(port2Ok({ port: 4000, name: 'sysd' }));
    expect((await exchange(d.port, NAMES_REQ, other)).recv).toEqual(namesReply(d.port, [['sysd', 4000]]));
  });

  it('G2 ALIVE2 from 127.0.0.2: OTP treats the v4-mapped peer as non-local (silent close); epmd-ng accepts it (Q12)', async () => {
    const r = await exchange(d.port, frame(alive2Payload({ port: 4001, name: 'mapped' })), { ...other, waitMs: 800 });
    if (impl === 'otp') {
      expect(r.recv.length).toBe(0);
      expect(r.end).toBe('FIN');
      expect((await exchange(d.port, portPleaseReq('mapped'))).recv).toEqual(PORT2_NOT_FOUND);
    } else {
      expect(r.recv.subarray(0, 2)).toEqual(hex('76 00'));
      expect(r.end).toBe('open');
    }
  });

  it('G2c DUMP from 127.0.0.2: OTP closes silently; epmd-ng serves it (Q12)', async () => {
    const r = await exchange(d.port, DUMP_REQ, other);
    expect(r.end).toBe('FIN');
    if (impl === 'otp') expect(r.recv.length).toBe(0);
    else expect(maskFd(r.recv).subarray(0, 4)).toEqual(u32(d.port));
  });

  it('G2d KILL from 127.0.0.2: OTP closes silently and keeps running; epmd-ng answers (NO: a node is registered)', async () => {
    const r = await exchange(d.port, KILL_REQ, other);
    expect(r.end).toBe('FIN');
    if (impl === 'otp') expect(r.recv.length).toBe(0);
    else expect(r.recv).toEqual(Buffer.from('NO'));
    expect((await exchange(d.port, NAMES_REQ)).recv.subarray(0, 4)).toEqual(u32(d.port));
  });
});
