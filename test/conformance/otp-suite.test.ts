// A clean-room port of the checks made by OTP's own epmd test suite (erts/epmd/test/epmd_SUITE.erl
// in erlang/otp). Like that suite, every daemon runs with -packet_timeout 1. The two cases that
// need an ssh proxy host (no_nonlocal_register, no_nonlocal_kill) are not ported: their checks need
// a non-loopback peer (see golden section G-G). Case names are kept so results can be compared.
// Nothing here branches on the implementation: every ported case must pass unchanged on both.
import { afterEach, describe, expect, it } from 'vitest';
import { alive2Payload, type Alive2Fields, type Registration } from '../helpers/wire.js';
import {
  Conn,
  KILL_REQ,
  NAMES_REQ,
  Resources,
  creationOf,
  exchange,
  frame,
  hex,
  listedNames,
  port2Ok,
  portPleaseReq,
  runCmd,
  sleep,
  stopReq,
  u32,
  waitGone,
  waitUntil,
  withResources,
} from './util.js';

const BASE = ['-packet_timeout', '1'];
const DUMMY_PORT = 1000;

const res = new Resources();
afterEach(() => res.cleanup());

/** The suite's default registration: node type M, protocol 0, versions 5/5, no extra. */
function v5(name: Buffer | string, port = DUMMY_PORT, more: Partial<Alive2Fields> = {}): Alive2Fields {
  return { port, name, nodeType: 77, protocol: 0, high: 5, low: 5, ...more };
}

/** Registers and checks the suite's success criterion: a 4-byte y reply with result 0. */
async function registerOk(r: Resources, epmdPort: number, f: Alive2Fields, host?: string): Promise<Registration> {
  const reg = await r.register(epmdPort, f, host);
  expect(reg.reply.length).toBe(4);
  expect(reg.reply.subarray(0, 2)).toEqual(hex('79 00'));
  return reg;
}

/** The suite's failure criterion for a registration: anything but "y, 0" (error reply or close). */
async function registerRefused(epmdPort: number, f: Alive2Fields): Promise<Buffer> {
  const r = await exchange(epmdPort, frame(alive2Payload(f)), { waitMs: 1500 });
  expect(r.recv.subarray(0, 2)).not.toEqual(hex('79 00'));
  return r.recv;
}

/** Parses a NAMES reply into name -> port, checking the port header like the suite does. */
function parseNames(epmdPort: number, reply: Buffer): Map<string, number> {
  expect(reply.subarray(0, 4)).toEqual(u32(epmdPort));
  const out = new Map<string, number>();
  for (const line of reply.subarray(4).toString('utf8').split('\n')) {
    const m = /^name (\S*) at port (\d+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

async function registerMany(epmdPort: number, n: number, prefix: string, batch = 100): Promise<Registration[]> {
  const regs: Registration[] = [];
  for (let b = 1; b <= n; b += batch) {
    const wave: Promise<Registration>[] = [];
    for (let i = b; i < Math.min(b + batch, n + 1); i++) wave.push(res.register(epmdPort, v5(`${prefix}${i}`, DUMMY_PORT + i)));
    regs.push(...(await Promise.all(wave)));
  }
  for (const r of regs) expect(r.reply.subarray(0, 2)).toEqual(hex('79 00'));
  return regs;
}

describe('registration cases', () => {
  it('register_name', async () => {
    const d = await res.daemon(BASE);
    const reg = await registerOk(res, d.port, v5('foobar'));
    expect(await listedNames(d.port)).toEqual(['foobar']);
    await reg.close();
    expect(await waitGone(d.port, 'foobar')).toBe(true);
  });

  it('register_name_ipv6 (over ::1)', async () => {
    const d = await res.daemon(BASE);
    const reg = await registerOk(res, d.port, v5('foobar6'), '::1');
    expect(await listedNames(d.port, '::1')).toEqual(['foobar6']);
    await reg.close();
    expect(await waitGone(d.port, 'foobar6')).toBe(true);
  });

  it.each([
    ['register_names_1', [0, 1]],
    ['register_names_2', [1, 0]],
  ])('%s (two nodes, unregistered in order %j)', async (_name, order) => {
    const d = await res.daemon(BASE);
    const regs = [await registerOk(res, d.port, v5('foobar')), await registerOk(res, d.port, v5('foozap'))];
    expect((await listedNames(d.port)).sort()).toEqual(['foobar', 'foozap']);
    const names = ['foobar', 'foozap'];
    await regs[order[0]!]!.close();
    expect(await waitGone(d.port, names[order[0]!]!)).toBe(true);
    expect(await listedNames(d.port)).toEqual([names[order[1]!]]);
    await regs[order[1]!]!.close();
    expect(await waitGone(d.port, names[order[1]!]!)).toBe(true);
  });

  it('register_duplicate_name', async () => {
    const d = await res.daemon(BASE);
    await registerOk(res, d.port, v5('foobar'));
    expect(await registerRefused(d.port, v5('foobar'))).toEqual(hex('79 01 00 63'));
    expect(await listedNames(d.port)).toEqual(['foobar']);
  });

  it('duplicate name with 32-bit creation reply (high 6) and after the holder leaves', async () => {
    const d = await res.daemon(BASE);
    const first = await res.register(d.port, { port: 2001, name: 'dup' });
    expect(await registerRefused(d.port, { port: 2002, name: 'dup' })).toEqual(hex('76 01 00 00 00 63'));
    expect((await exchange(d.port, portPleaseReq('dup'))).recv).toEqual(port2Ok({ port: 2001, name: 'dup' }));
    await first.close();
    expect(await waitGone(d.port, 'dup')).toBe(true);
    const second = await res.register(d.port, { port: 2002, name: 'dup' });
    expect(second.reply.subarray(0, 2)).toEqual(hex('76 00'));
    expect(creationOf(second.reply)).toBe(creationOf(first.reply) + 1);
    expect((await exchange(d.port, portPleaseReq('dup'))).recv).toEqual(port2Ok({ port: 2002, name: 'dup' }));
  });

  it('unicode_name (U+1F608, node type 72)', async () => {
    const d = await res.daemon(BASE);
    const f = v5('\u{1F608}', 4711, { nodeType: 72 });
    await registerOk(res, d.port, f);
    const r = await exchange(d.port, portPleaseReq(f.name));
    expect(r.recv).toEqual(port2Ok(f));
    expect(r.recv.subarray(12, 16).toString('utf8')).toBe('\u{1F608}');
  });

  it('long_unicode_name (201 characters, 804 bytes)', async () => {
    const d = await res.daemon(BASE);
    const name = Array.from({ length: 201 }, (_, i) => String.fromCodePoint(0x1f600 + i)).join('');
    expect(Buffer.byteLength(name)).toBe(804);
    const f = v5(name, 4711, { nodeType: 72 });
    await registerOk(res, d.port, f);
    const r = await exchange(d.port, portPleaseReq(name));
    expect(r.recv).toEqual(port2Ok(f));
  });

  it.each([
    ['name_with_null_inside', 'foo\0bar'],
    ['name_null_terminated', 'foobar\0'],
  ])('%s is refused', async (_case, name) => {
    const d = await res.daemon(BASE);
    const r = await registerRefused(d.port, v5(name));
    expect(r.length).toBe(0);
    expect(await listedNames(d.port)).toEqual([]);
  });

  it('alive_req_too_large (600-character name): reply starts with y, 1', async () => {
    const d = await res.daemon(BASE);
    const c = await res.conn(d.port);
    c.write(frame(alive2Payload(v5('a'.repeat(600)))));
    const got = await c.waitBytes(2, 2000);
    expect(got.subarray(0, 2)).toEqual(hex('79 01'));
  });

  it('creation replies: high >= 6 gives ALIVE2_X_RESP (32-bit), high < 6 gives ALIVE2_RESP (16-bit, 1..3); lowest version ignored', async () => {
    const d = await res.daemon(BASE);
    const cases: Array<[number, number, 'v' | 'y']> = [
      [6, 5, 'v'],
      [7, 7, 'v'],
      [65535, 0, 'v'],
      [5, 5, 'y'],
      [5, 6, 'y'],
      [1, 1, 'y'],
      [0, 0, 'y'],
    ];
    for (const [i, [high, low, kind]] of cases.entries()) {
      const reg = await res.register(d.port, { port: 3000 + i, name: `cr${i}`, high, low });
      if (kind === 'v') {
        expect(reg.reply.length).toBe(6);
        expect(reg.reply.subarray(0, 2)).toEqual(hex('76 00'));
        expect(creationOf(reg.reply)).toBeGreaterThanOrEqual(4);
      } else {
        expect(reg.reply.length).toBe(4);
        expect(reg.reply.subarray(0, 2)).toEqual(hex('79 00'));
        expect([1, 2, 3]).toContain(creationOf(reg.reply));
      }
      // The versions are echoed verbatim in PORT2_RESP.
      expect((await exchange(d.port, portPleaseReq(`cr${i}`))).recv).toEqual(port2Ok({ port: 3000 + i, name: `cr${i}`, high, low }));
    }
  });
});

describe('port lookup cases', () => {
  it('get_port_nr', async () => {
    const d = await res.daemon(BASE);
    await registerOk(res, d.port, v5('foo', 1042));
    const r = await exchange(d.port, portPleaseReq('foo'));
    expect(r.recv).toEqual(port2Ok(v5('foo', 1042)));
    expect(r.recv.readUInt16BE(2)).toBe(1042);
  });

  it('slow_get_port_nr (request written with 1 s pauses under -packet_timeout 1)', async () => {
    const d = await res.daemon(BASE);
    await registerOk(res, d.port, v5('foo', 1042));
    const req = portPleaseReq('foo');
    const r = await exchange(d.port, req, {
      chunks: [req.subarray(0, 3), req.subarray(3, 4), req.subarray(4, 5), req.subarray(5)],
      gapMs: 1000,
    });
    expect(r.recv).toEqual(port2Ok(v5('foo', 1042)));
    expect(r.end).toBe('FIN');
  });

  it('returns_valid_empty_extra (empty extra still carries its 2-byte length)', async () => {
    const d = await res.daemon(BASE);
    const f = v5('foo', 4711, { nodeType: 72 });
    await registerOk(res, d.port, f);
    const r = await exchange(d.port, portPleaseReq('foo'));
    expect(r.recv).toEqual(port2Ok(f));
    expect(r.recv.subarray(-2)).toEqual(hex('00 00'));
  });

  it('returns_valid_populated_extra_with_nulls', async () => {
    const d = await res.daemon(BASE);
    const f = v5('foo', 4711, { nodeType: 72, extra: Buffer.from('ABC\0\0', 'latin1') });
    await registerOk(res, d.port, f);
    const r = await exchange(d.port, portPleaseReq('foo'));
    expect(r.recv).toEqual(port2Ok(f));
    expect(r.recv.subarray(-7)).toEqual(hex('00 05 41 42 43 00 00'));
  });
});

describe('STOP and KILL cases', () => {
  it('unregister_others_name_1 (relaxed: STOP of a registered name reads STOPPED)', async () => {
    const d = await res.daemon([...BASE, '-relaxed_command_check']);
    const reg = await registerOk(res, d.port, v5('foo'));
    const r = await exchange(d.port, stopReq('foo'));
    expect(r.recv.subarray(0, 7).toString()).toBe('STOPPED');
    await reg.closed;
    expect(await listedNames(d.port)).toEqual([]);
  });

  it('unregister_others_name_2 (relaxed: STOP of an unknown name reads NOEXIST)', async () => {
    const d = await res.daemon([...BASE, '-relaxed_command_check']);
    const r = await exchange(d.port, stopReq('xxx42'));
    expect(r.recv.subarray(0, 7).toString()).toBe('NOEXIST');
  });

  it('unregister via ERL_EPMD_RELAXED_COMMAND_CHECK instead of the flag', async () => {
    const d = await res.daemon(BASE, { env: { ERL_EPMD_RELAXED_COMMAND_CHECK: '1' } });
    const reg = await registerOk(res, d.port, v5('foo'));
    expect((await exchange(d.port, stopReq('foo'))).recv.subarray(0, 7).toString()).toBe('STOPPED');
    await reg.closed;
    const k = await exchange(d.port, KILL_REQ);
    expect(k.recv).toEqual(Buffer.from('OK'));
  });

  it('no_live_killing', async () => {
    const d = await res.daemon(BASE);
    const reg = await registerOk(res, d.port, v5('foo'));
    expect((await exchange(d.port, KILL_REQ)).recv).toEqual(Buffer.from('NO'));
    const s = await exchange(d.port, stopReq('foo'));
    expect(s.recv.length).toBe(0);
    expect(s.end).not.toBe('open');
    await reg.close();
    await sleep(1000);
    expect((await exchange(d.port, KILL_REQ)).recv).toEqual(Buffer.from('OK'));
    const ex = await Promise.race([d.exited, sleep(5000).then(() => 'running')]);
    expect(ex).toEqual({ code: 0, signal: null });
  });

  it('KILL with a live node succeeds under -relaxed_command_check (flag) and the node\'s connection is closed', async () => {
    const d = await res.daemon([...BASE, '-relaxed_command_check']);
    const reg = await registerOk(res, d.port, v5('foo'));
    expect((await exchange(d.port, KILL_REQ)).recv).toEqual(Buffer.from('OK'));
    const ex = await Promise.race([d.exited, sleep(5000).then(() => 'running')]);
    expect(ex).toEqual({ code: 0, signal: null });
    expect(await Promise.race([reg.closed.then(() => true), sleep(3000).then(() => false)])).toBe(true);
  });
});

describe('malformed and partial requests', () => {
  it.concurrent.each([
    ['no_data', null],
    ['one_byte', hex('00')],
    ['two_bytes', hex('00 03')],
    ['partial_packet', Buffer.concat([hex('00 64'), Buffer.from('only a few bytes')])],
  ])('%s: the server closes the connection within 5 s without reply', (_case, data) =>
    withResources(async (r) => {
      const d = await r.daemon(BASE);
      const c = await r.conn(d.port);
      if (data) c.write(data);
      expect(await c.waitEnd(5000)).toBe('FIN');
      expect(c.data.length).toBe(0);
    }),
  );

  it.each([
    ['zero_length', hex('00×10')],
    ['alive_req_too_small_1', frame(hex('78 03 e8 4d 00 00 05 00 05 00 00'))],
    ['alive_req_too_small_2', frame(hex('78 03 e8 4d 00 00 05 00 05'))],
  ])('%s: closed without reply within 1 s', async (_case, data) => {
    const d = await res.daemon(BASE);
    const r = await exchange(d.port, data, { waitMs: 1000 });
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it('too_large (63000-byte frame): closed without reply (reset accepted, as in the suite)', async () => {
    const d = await res.daemon(BASE);
    const r = await exchange(d.port, Buffer.concat([hex('f6 18'), Buffer.alloc(63000, 0x7a)]), { waitMs: 1000 });
    expect(r.recv.length).toBe(0);
    expect(['FIN', 'RST']).toContain(r.end);
  });
});

/** Runs `fn` over 0..n-1 with at most `width` in flight. */
async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/** ALIVE2 for "gurka" (versions 5/5, port 4747) with Elen = n followed by `extraBytes` bytes 0xff. */
function hostileReq(n: number, extraBytes: number): Buffer {
  const head = hex('78 12 8b 4d 00 00 05 00 05 00 05 67 75 72 6b 61');
  const elen = Buffer.alloc(2);
  elen.writeUInt16BE(n);
  return frame(Buffer.concat([head, elen, Buffer.alloc(extraBytes, 0xff)]));
}

describe('buffer_overrun group', () => {
  it('buffer_overrun_1: Elen 1..10000 with no extra bytes present is always closed without reply', async () => {
    const d = await res.daemon(BASE);
    const bad: number[] = [];
    await pool(10000, 64, async (i) => {
      const n = i + 1;
      const r = await exchange(d.port, hostileReq(n, 0), { waitMs: 3000 });
      if (r.recv.length !== 0 || r.end === 'open') bad.push(n);
    });
    expect(bad).toEqual([]);
    expect(await listedNames(d.port)).toEqual([]);
  }, 120_000);

  it('buffer_overrun_2: Elen = number of extra bytes, 1020..10000: only 1020 registers, the rest are refused or closed', async () => {
    const d = await res.daemon(BASE);
    const results = new Map<number, string>();
    await pool(10000 - 1020 + 1, 64, async (i) => {
      const n = 1020 + i;
      const c = await Conn.open(d.port);
      try {
        c.write(hostileReq(n, n));
        await c.until(() => c.data.length >= 4 || c.serverEnd !== null, 3000);
        const data = c.data;
        if (data.length === 0 && c.serverEnd !== null) results.set(n, 'closed');
        else results.set(n, data.subarray(0, 4).toString('hex'));
      } finally {
        c.destroy();
      }
    });
    expect(results.get(1020)!.slice(0, 4)).toBe('7900');
    const wrong: string[] = [];
    for (let n = 1021; n <= 10000; n++) {
      const v = results.get(n);
      // Frames that fit (payload 18 + n <= 3057) get the error reply; larger ones are closed.
      const want = 18 + n <= 3057 ? '79010063' : 'closed';
      if (v !== want) wrong.push(`${n}:${v}`);
    }
    expect(wrong).toEqual([]);
  }, 120_000);
});

describe('many registrations (1001 simultaneous connections)', () => {
  it('1000 registrations kept open are all listed by one NAMES; stupid_names_req: after the first leaves, 999 remain', async () => {
    const d = await res.daemon(BASE);
    const regs = await registerMany(d.port, 1000, 'foo');
    const all = parseNames(d.port, (await exchange(d.port, NAMES_REQ, { waitMs: 10_000 })).recv);
    expect(all.size).toBe(1000);
    for (let i = 1; i <= 1000; i++) expect(all.get(`foo${i}`)).toBe(DUMMY_PORT + i);

    await regs[0]!.close();
    await sleep(1000);
    const rest = parseNames(d.port, (await exchange(d.port, NAMES_REQ, { waitMs: 10_000 })).recv);
    expect(rest.size).toBe(999);
    expect(rest.has('foo1')).toBe(false);
    for (let i = 2; i <= 1000; i++) expect(rest.get(`foo${i}`)).toBe(DUMMY_PORT + i);
  }, 60_000);

  it('register_overflow: 1000 names register and unregister 11 times (alternating forward and reverse close order)', async () => {
    const d = await res.daemon(BASE);
    for (const reverse of [false, false, true, false, true, false, true, false, true, false, true]) {
      const regs = await registerMany(d.port, 1000, 'foo');
      expect(regs.length).toBe(1000);
      expect((await listedNames(d.port)).length).toBe(1000);
      for (const r of reverse ? [...regs].reverse() : regs) r.socket.destroy();
      expect(await waitUntil(async () => (await listedNames(d.port)).length === 0, 10_000)).toBe(true);
    }
  }, 120_000);
});

describe('client and regression cases', () => {
  it('names_stdout: "epmd -names" output has the header and the node lines in its first chunk', async () => {
    const d = await res.daemon(BASE);
    await registerOk(res, d.port, v5('foobar'));
    const r = await runCmd([...BASE, '-port', String(d.port), '-names']);
    expect(r.code).toBe(0);
    const first = r.stdoutChunks[0]!.toString('utf8');
    expect(first).toMatch(/^epmd: up and running/m);
    expect(first).toMatch(/^name foobar at port/m);
  });

  it('socket_reset_before_alive2_reply_is_written (-delay_write 1): no zombie registration remains', async () => {
    const d = await res.daemon([...BASE, '-delay_write', '1', '-relaxed_command_check']);
    const c = await res.conn(d.port);
    c.write(frame(alive2Payload(v5('test', 4711))));
    await sleep(500);
    c.reset();
    await sleep(600 + 1000);
    const r = await exchange(d.port, NAMES_REQ, { waitMs: 6000 });
    expect(parseNames(d.port, r.recv).size).toBe(0);
    expect(r.recv).toEqual(u32(d.port));
    // The name is free again.
    const again = await res.register(d.port, v5('test', 4712));
    expect(again.reply.subarray(0, 2)).toEqual(hex('79 00'));
  });
});
