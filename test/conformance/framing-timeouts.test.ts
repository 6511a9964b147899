// Framing edge cases (spec §4) and golden section G-D: idle timeouts under -packet_timeout,
// slow senders, -delay_write and -delay_accept. Timing windows follow spec §9: a silent or
// partial connection is closed after T + 1 s, accepted in [T + 1 - 0.2, T + 6] seconds.
// The 60 s default timeout is deliberately not exercised (too slow); -packet_timeout covers it.
import { afterEach, describe, expect, it } from 'vitest';
import { alive2Payload } from '../helpers/wire.js';
import { Conn, NAMES_REQ, withResources, PORT2_NOT_FOUND, Resources, exchange, frame, hex, namesReply, port2Ok, portPleaseReq, sleep, u32 } from './util.js';

const res = new Resources();
afterEach(() => res.cleanup());

// it.concurrent tests below use their own Resources (withResources), since afterEach would
// otherwise tear down the daemons of tests still running.
interface Timed {
  end: string;
  recv: Buffer;
  seconds: number;
}

/** Opens a connection, sends `initial` (if any) and measures how long until the server closes it. */
async function idleClose(res: Resources, port: number, initial: Buffer | null, limitMs: number): Promise<Timed> {
  const c = await res.conn(port);
  if (initial) c.write(initial);
  const start = Date.now();
  const end = await c.waitEnd(limitMs);
  return { end, recv: c.data, seconds: (Date.now() - start) / 1000 };
}

describe.each([1, 2])('G-D -packet_timeout %i', (T) => {
  it.concurrent(
    'silent, 1-byte, header-only and partial connections are closed without reply after T + 1 s',
    () =>
      withResources(async (res) => {
        const d = await res.daemon(['-packet_timeout', String(T)]);
        const limit = (T + 8) * 1000;
        const results = await Promise.all([
          idleClose(res, d.port, null, limit),
          idleClose(res, d.port, hex('00'), limit),
          idleClose(res, d.port, hex('00 03'), limit),
          idleClose(res, d.port, Buffer.concat([hex('00 64'), Buffer.from('only a few bytes')]), limit),
        ]);
        for (const r of results) {
          expect(r.end).toBe('FIN');
          expect(r.recv.length).toBe(0);
          expect(r.seconds).toBeGreaterThanOrEqual(T + 1 - 0.2);
          expect(r.seconds).toBeLessThanOrEqual(T + 6);
        }
      }),
    30_000,
  );
});

describe('G-D connections that must not time out', () => {
  it.concurrent(
    'a registration connection idle for 3.5 s under -packet_timeout 1 stays registered (PORT2 finds it)',
    () =>
      withResources(async (res) => {
        const d = await res.daemon(['-packet_timeout', '1']);
        const f = { port: 9999, name: 'keep' };
        const reg = await res.register(d.port, f);
        let closed = false;
        void reg.closed.then(() => (closed = true));
        await sleep(3500);
        expect(closed).toBe(false);
        const r = await exchange(d.port, portPleaseReq('keep'));
        expect(r.recv).toEqual(port2Ok(f));
        expect(r.recv).toEqual(hex('77 00 27 0f 4d 00 00 06 00 05 00 04 6b 65 65 70 00 00'));
      }),
    15_000,
  );

  it.concurrent(
    'a refused registration connection is not timed out either (server never closes it)',
    () =>
      withResources(async (res) => {
        const d = await res.daemon(['-packet_timeout', '1']);
        await res.register(d.port, { port: 9998, name: 'taken' });
        const dup = await res.conn(d.port);
        dup.write(frame(alive2Payload({ port: 9997, name: 'taken' })));
        expect(await dup.waitBytes(6)).toEqual(hex('76 01 00 00 00 63'));
        expect(await dup.waitEnd(3500)).toBe('open');
      }),
    15_000,
  );

  it.concurrent(
    'G-D slow sender: PORT_PLEASE2 at one byte per 1.5 s under -packet_timeout 2 is served',
    () =>
      withResources(async (res) => {
        const d = await res.daemon(['-packet_timeout', '2']);
        const req = portPleaseReq('slowpoke1'); // 12 bytes: 11 gaps of 1.5 s = 16.5 s
        expect(req.length).toBe(12);
        const chunks = [...req].map((b) => Buffer.from([b]));
        const r = await exchange(d.port, req, { chunks, gapMs: 1500, waitMs: 3000 });
        expect(r.recv).toEqual(PORT2_NOT_FOUND);
        expect(r.end).toBe('FIN');
      }),
    40_000,
  );
});

describe('G-D artificial delays', () => {
  it.concurrent(
    '-delay_write 1: ALIVE2 replies after >= 1 s, PORT2 after >= 1 s, NAMES with 3 nodes takes >= 4 s',
    () =>
      withResources(async (res) => {
        const d = await res.daemon(['-delay_write', '1']);
        for (const name of ['d1', 'd2', 'd3']) {
          const c = await res.conn(d.port);
          const start = Date.now();
          c.write(frame(alive2Payload({ port: 1234, name })));
          const reply = await c.waitBytes(6, 6000);
          const s = (Date.now() - start) / 1000;
          expect(reply.subarray(0, 2)).toEqual(hex('76 00'));
          expect(s).toBeGreaterThanOrEqual(0.9);
          expect(s).toBeLessThan(4);
        }
        const names = await exchange(d.port, NAMES_REQ, { waitMs: 10_000 });
        expect(names.recv).toEqual(
          namesReply(d.port, [
            ['d3', 1234],
            ['d2', 1234],
            ['d1', 1234],
          ]),
        );
        expect(names.end).toBe('FIN');
        expect(names.elapsedMs).toBeGreaterThanOrEqual(3900);
        const pp = await exchange(d.port, portPleaseReq('d2'), { waitMs: 6000 });
        expect(pp.recv).toEqual(port2Ok({ port: 1234, name: 'd2' }));
        expect(pp.elapsedMs).toBeGreaterThanOrEqual(900);
      }),
    40_000,
  );

  it.concurrent(
    '-delay_write 1: a client that closes its sending side right after the request still gets the reply',
    () =>
      withResources(async (res) => {
        const d = await res.daemon(['-delay_write', '1']);
        await res.register(d.port, { port: 1234, name: 'half' });
        // The same over IPv6: how a socket ends does not depend on the address family.
        for (const host of ['127.0.0.1', '::1']) {
          const c = await res.conn(d.port, { host });
          c.write(portPleaseReq('half'));
          // A half-close: the server reads end-of-file while it waits to write.
          c.socket.end();
          await c.waitEnd(6000);
          expect(c.data, host).toEqual(port2Ok({ port: 1234, name: 'half' }));
          expect(c.serverEnd, host).toBe('FIN');
        }
      }),
    20_000,
  );

  it.concurrent(
    '-delay_accept 2: a NAMES request takes >= 2 s and is then served',
    () =>
      withResources(async (res) => {
        const d = await res.daemon(['-delay_accept', '2']);
        const r = await exchange(d.port, NAMES_REQ, { waitMs: 15_000 });
        expect(r.recv).toEqual(u32(d.port));
        expect(r.end).toBe('FIN');
        expect(r.elapsedMs).toBeGreaterThanOrEqual(1900);
      }),
    40_000,
  );
});

describe('framing details (spec §4)', () => {
  it('EOF before the frame is complete: the server closes silently', async () => {
    const d = await res.daemon();
    const c = await res.conn(d.port);
    c.write(hex('00 05 7a 61'));
    await sleep(100);
    c.socket.end();
    expect(await c.waitEnd(3000)).toBe('FIN');
    expect(c.data.length).toBe(0);
    // The daemon is unaffected.
    expect((await exchange(d.port, NAMES_REQ)).recv).toEqual(u32(d.port));
  });

  it('a frame whose length arrives byte by byte and whose payload arrives later is served', async () => {
    const d = await res.daemon();
    const f = { port: 4242, name: 'frag' };
    await res.register(d.port, f);
    const req = portPleaseReq('frag');
    const r = await exchange(d.port, req, { chunks: [req.subarray(0, 1), req.subarray(1, 2), req.subarray(2, 4), req.subarray(4)], gapMs: 150 });
    expect(r.recv).toEqual(port2Ok(f));
    expect(r.end).toBe('FIN');
  });

  it('an ALIVE2 request split into pieces registers normally', async () => {
    const d = await res.daemon();
    const req = frame(alive2Payload({ port: 4243, name: 'pieces', extra: Buffer.from('xyz') }));
    const c = await res.conn(d.port);
    for (const [a, b] of [
      [0, 3],
      [3, 12],
      [12, req.length],
    ] as const) {
      c.write(req.subarray(a, b));
      await sleep(100);
    }
    const reply = await c.waitBytes(6);
    expect(reply.subarray(0, 2)).toEqual(hex('76 00'));
    const r = await exchange(d.port, portPleaseReq('pieces'));
    expect(r.recv).toEqual(port2Ok({ port: 4243, name: 'pieces', extra: Buffer.from('xyz') }));
  });

  it('a request followed by a stray byte in the same write gets no reply (ALIVE2: not registered)', async () => {
    const d = await res.daemon();
    const req = Buffer.concat([frame(alive2Payload({ port: 4244, name: 'stray' })), hex('00')]);
    const r = await exchange(d.port, req);
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
    expect((await exchange(d.port, NAMES_REQ)).recv).toEqual(u32(d.port));
  });

  it('surplus bytes arriving after the length is known are never read: the request is answered, then closed', async () => {
    const d = await res.daemon();
    const r = await exchange(d.port, NAMES_REQ, { chunks: [hex('00 01'), hex('6e 21')], gapMs: 200 });
    expect(r.recv).toEqual(u32(d.port));
    // OTP resets here (the unread byte; a Python client sees ECONNRESET every time), but a Node
    // client cannot observe it reliably: when the reply and the RST arrive in one wake-up, libuv
    // reads the reply, sees POLLHUP after a partial read and reports EOF without reading the
    // error. So both endings are accepted; the A32b/A32c checks (no data before the RST) stay strict.
    expect(['FIN', 'RST']).toContain(r.end);
  });

  it('a second, valid request on a registration connection unregisters the node and gets no reply', async () => {
    const d = await res.daemon();
    const c = await res.conn(d.port);
    c.write(frame(alive2Payload({ port: 4245, name: 'twice' })));
    expect((await c.waitBytes(6)).subarray(0, 2)).toEqual(hex('76 00'));
    c.write(NAMES_REQ);
    expect(await c.waitEnd(3000)).not.toBe('open');
    expect(c.data.length).toBe(6);
    expect((await exchange(d.port, portPleaseReq('twice'))).recv).toEqual(PORT2_NOT_FOUND);
  });

  it('a connection closed by the client right after connecting does not disturb the daemon', async () => {
    const d = await res.daemon();
    for (let i = 0; i < 20; i++) {
      const c = await Conn.open(d.port);
      c.destroy();
    }
    expect((await exchange(d.port, NAMES_REQ)).recv).toEqual(u32(d.port));
  });
});
