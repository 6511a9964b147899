// Golden transcript G-A of epmd-golden.md (A1..A40), replayed in order against one daemon, so that
// the registry accumulates exactly as in the capture. The quick-reference vectors V1..V19 that
// G-A exercises are named next to the transcript ids. Expected bytes are the captured ones, with
// the daemon's own port substituted for 38369 (00 00 95 e1) and fd numbers masked in DUMP replies.
import type { Daemon } from '../helpers/daemon.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive2Payload } from '../helpers/wire.js';
import {
  ALIVE2_FAIL,
  ALIVE2_X_FAIL,
  DUMP_REQ,
  KILL_REQ,
  NAMES_REQ,
  PORT2_NOT_FOUND,
  Resources,
  creationOf,
  exchange,
  frame,
  hex,
  listedNames,
  maskFd,
  u32,
  waitGone,
  waitUntil,
} from './util.js';

/** The captured reply with its first 4 bytes (epmd's port 38369) replaced by `port`. */
function withPort(golden: string, port: number): Buffer {
  const b = hex(golden);
  u32(port).copy(b, 0);
  return b;
}

const OPEN_WAIT = 800; // how long to watch a connection the server is expected to keep open

describe('G-A raw protocol transcript (default daemon)', () => {
  const res = new Resources();
  let d: Daemon;
  let port: number;

  beforeAll(async () => {
    d = await res.daemon();
    port = d.port;
  });
  afterAll(() => res.cleanup());

  it('A1/V1 NAMES_REQ on an empty registry returns only the port, then FIN', async () => {
    const r = await exchange(port, hex('00 01 6e'));
    expect(r.recv).toEqual(u32(port));
    expect(r.end).toBe('FIN');
  });

  it('A2/V2 DUMP_REQ on an empty registry returns only the port, then FIN', async () => {
    const r = await exchange(port, hex('00 01 64'));
    expect(r.recv).toEqual(u32(port));
    expect(r.end).toBe('FIN');
  });

  it('A3/V3 ALIVE2_REQ alpha (high 6) gets 76 00 + 32-bit creation near the clock; connection stays open', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const c = await res.conn(port);
    c.write(hex('00 12 78 13 89 4d 00 00 06 00 05 00 05 61 6c 70 68 61 00 00'));
    const reply = await c.waitBytes(6);
    const t1 = Math.floor(Date.now() / 1000);
    expect(reply.length).toBe(6);
    expect(reply.subarray(0, 2)).toEqual(hex('76 00'));
    // New slot: creation = clock + 1 (spec §6), give or take a second of scheduling.
    const cr = creationOf(reply);
    expect(cr).toBeGreaterThanOrEqual(t0);
    expect(cr).toBeLessThanOrEqual(t1 + 2);
    expect(await c.waitEnd(OPEN_WAIT)).toBe('open');
  });

  it('A4/V4 ALIVE2_REQ beta (high 5, type H) gets 79 00 + 16-bit creation in 1..3; stays open', async () => {
    const c = await res.conn(port);
    c.write(hex('00 11 78 13 8a 48 00 00 05 00 05 00 04 62 65 74 61 00 00'));
    const reply = await c.waitBytes(4);
    expect(reply.length).toBe(4);
    expect(reply.subarray(0, 3)).toEqual(hex('79 00 00'));
    expect([1, 2, 3]).toContain(reply[3]);
    expect(await c.waitEnd(OPEN_WAIT)).toBe('open');
  });

  it('A5/V5 duplicate ALIVE2_REQ alpha (high 6) gets 76 01 00 00 00 63 and the connection stays open', async () => {
    const r = await exchange(port, hex('00 12 78 17 71 4d 00 00 06 00 05 00 05 61 6c 70 68 61 00 00'), { waitMs: OPEN_WAIT });
    expect(r.recv).toEqual(hex('76 01 00 00 00 63'));
    expect(r.end).toBe('open');
  });

  it('A6/V6 duplicate ALIVE2_REQ beta (high 5) gets 79 01 00 63 and the connection stays open', async () => {
    const r = await exchange(port, hex('00 11 78 17 72 4d 00 00 05 00 05 00 04 62 65 74 61 00 00'), { waitMs: OPEN_WAIT });
    expect(r.recv).toEqual(hex('79 01 00 63'));
    expect(r.end).toBe('open');
  });

  it('A7/V8 PORT_PLEASE2 alpha returns the full PORT2_RESP (closing the refused duplicate did not unregister alpha)', async () => {
    const r = await exchange(port, hex('00 06 7a 61 6c 70 68 61'));
    expect(r.recv).toEqual(hex('77 00 13 89 4d 00 00 06 00 05 00 05 61 6c 70 68 61 00 00'));
    expect(r.end).toBe('FIN');
  });

  it('A8 PORT_PLEASE2 beta echoes type 72 and versions 5/5', async () => {
    const r = await exchange(port, hex('00 05 7a 62 65 74 61'));
    expect(r.recv).toEqual(hex('77 00 13 8a 48 00 00 05 00 05 00 04 62 65 74 61 00 00'));
    expect(r.end).toBe('FIN');
  });

  it('A9/V9 PORT_PLEASE2 for an unknown name returns 77 01', async () => {
    const r = await exchange(port, hex('00 05 7a 6e 6f 70 65'));
    expect(r.recv).toEqual(hex('77 01'));
    expect(r.end).toBe('FIN');
  });

  it('A10 PORT_PLEASE2 alpha with a trailing NUL: the NUL is dropped', async () => {
    const r = await exchange(port, hex('00 07 7a 61 6c 70 68 61 00'));
    expect(r.recv).toEqual(hex('77 00 13 89 4d 00 00 06 00 05 00 05 61 6c 70 68 61 00 00'));
    expect(r.end).toBe('FIN');
  });

  it.each([
    ['A11/V10 embedded NUL', '00 07 7a 61 6c 00 70 68 61'],
    ['A12/V10 empty name', '00 01 7a'],
    ['A13/V10 invalid UTF-8 (ff)', '00 02 7a ff'],
    ['A14a/V10 255 x a', '01 00 7a 61×255'],
    ['A14b/V10 256 x a', '01 01 7a 61×256'],
  ])('%s: PORT_PLEASE2 gets no reply, FIN', async (_id, req) => {
    const r = await exchange(port, hex(req));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it('A15 NAMES lists beta then alpha (most recent first)', async () => {
    const r = await exchange(port, hex('00 01 6e'));
    expect(r.recv).toEqual(
      withPort(
        '00 00 95 e1 6e 61 6d 65 20 62 65 74 61 20 61 74 20 70 6f 72 74 20 35 30 30 32 0a 6e 61 6d 65 20 61 6c 70 68 61 20 61 74 20 70 6f 72 74 20 35 30 30 31 0a',
        port,
      ),
    );
    expect(r.end).toBe('FIN');
  });

  it('A16 DUMP lists the active names with NUL-terminated records (fd masked)', async () => {
    const r = await exchange(port, hex('00 01 64'));
    const golden = withPort(
      '00 00 95 e1 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 62 65 74 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 32 2c 20 66 64 20 3d 20 36 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 61 6c 70 68 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 31 2c 20 66 64 20 3d 20 35 0a 00',
      port,
    );
    expect(maskFd(r.recv)).toEqual(maskFd(golden));
    expect(r.end).toBe('FIN');
  });

  it('A17/V11 KILL_REQ with live registrations (not relaxed) gets NO', async () => {
    const r = await exchange(port, hex('00 01 6b'));
    expect(r.recv).toEqual(hex('4e 4f'));
    expect(r.end).toBe('FIN');
  });

  it('A18/V13 STOP_REQ without -relaxed_command_check gets no reply; alpha stays registered', async () => {
    const r = await exchange(port, hex('00 06 73 61 6c 70 68 61'));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
    expect(await listedNames(port)).toContain('alpha');
  });

  it('A19/V19 unknown request byte a: no reply, FIN', async () => {
    const r = await exchange(port, hex('00 01 61'));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it('V19 legacy R3 request codes (p = 112, e = 101) are garbage too', async () => {
    for (const req of ['00 06 70 61 6c 70 68 61', '00 01 65']) {
      const r = await exchange(port, hex(req));
      expect(r.recv.length).toBe(0);
      expect(r.end).toBe('FIN');
    }
  });

  it('A20/A20b ALIVE2 with extra "ABC\\0\\0" and lowest version 6; PORT_PLEASE2 echoes extra and versions', async () => {
    const c = await res.conn(port);
    c.write(hex('00 1b 78 13 8b 4d 00 00 06 00 06 00 09 77 69 74 68 65 78 74 72 61 00 05 41 42 43 00 00'));
    const reply = await c.waitBytes(6);
    expect(reply.subarray(0, 2)).toEqual(hex('76 00'));
    expect(reply.length).toBe(6);
    const r = await exchange(port, hex('00 0a 7a 77 69 74 68 65 78 74 72 61'));
    expect(r.recv).toEqual(hex('77 00 13 8b 4d 00 00 06 00 06 00 09 77 69 74 68 65 78 74 72 61 00 05 41 42 43 00 00'));
    expect(r.end).toBe('FIN');
  });

  it('A21/V7 ALIVE2 with empty name and empty extra (payload 13 bytes): no reply, FIN', async () => {
    const r = await exchange(port, hex('00 0d 78 13 8c 4d 00 00 06 00 06 00 00 00 00'));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it('A21b NAMES unchanged after the rejected empty name', async () => {
    const r = await exchange(port, NAMES_REQ);
    expect(r.recv).toEqual(
      withPort(
        '00 00 95 e1 6e 61 6d 65 20 77 69 74 68 65 78 74 72 61 20 61 74 20 70 6f 72 74 20 35 30 30 33 0a 6e 61 6d 65 20 62 65 74 61 20 61 74 20 70 6f 72 74 20 35 30 30 32 0a 6e 61 6d 65 20 61 6c 70 68 61 20 61 74 20 70 6f 72 74 20 35 30 30 31 0a',
        port,
      ),
    );
  });

  it('A21c/A21d empty name with Elen = 1 (payload 14 bytes) registers and is listed as "name  at port 5044"', async () => {
    const c = await res.conn(port);
    c.write(hex('00 0e 78 13 b4 4d 00 00 06 00 06 00 00 00 01 45'));
    const reply = await c.waitBytes(6);
    expect(reply.subarray(0, 2)).toEqual(hex('76 00'));
    const r = await exchange(port, NAMES_REQ);
    expect(r.recv).toEqual(
      withPort(
        '00 00 95 e1 6e 61 6d 65 20 20 61 74 20 70 6f 72 74 20 35 30 34 34 0a 6e 61 6d 65 20 77 69 74 68 65 78 74 72 61 20 61 74 20 70 6f 72 74 20 35 30 30 33 0a 6e 61 6d 65 20 62 65 74 61 20 61 74 20 70 6f 72 74 20 35 30 30 32 0a 6e 61 6d 65 20 61 6c 70 68 61 20 61 74 20 70 6f 72 74 20 35 30 30 31 0a',
        port,
      ),
    );
    // The capture's later DUMP (A37) shows the empty name as old/unused: its node went away.
    c.destroy();
    expect(await waitGone(port, '')).toBe(true);
  });

  it('A22a ALIVE2 with a 255-character name succeeds', async () => {
    const r = await res.register(port, { port: 5005, name: 'n'.repeat(255) });
    expect(r.reply.subarray(0, 2)).toEqual(hex('76 00'));
    expect(r.reply.length).toBe(6);
  });

  it('A22b/V5 ALIVE2 with a 256-character name fails with 76 01 00 00 00 63, stays open', async () => {
    const r = await exchange(port, hex('01 0d 78 13 8e 4d 00 00 06 00 05 01 00 6d×256 00 00'), { waitMs: OPEN_WAIT });
    expect(r.recv).toEqual(ALIVE2_X_FAIL);
    expect(r.end).toBe('open');
  });

  it('A22c ALIVE2 with 255 x U+1F600 (1020 bytes) succeeds', async () => {
    const r = await res.register(port, { port: 5007, name: '\u{1F600}'.repeat(255) });
    expect(r.reply.subarray(0, 2)).toEqual(hex('76 00'));
  });

  it('A22d ALIVE2 with 256 x U+00E9 (512 bytes, 256 characters) fails', async () => {
    const r = await exchange(port, hex('02 0d 78 13 90 4d 00 00 06 00 05 02 00 (c3 a9)×256 00 00'), { waitMs: OPEN_WAIT });
    expect(r.recv).toEqual(ALIVE2_X_FAIL);
    expect(r.end).toBe('open');
  });

  it.each([
    ['A23a/V7 embedded NUL', '00 14 78 13 91 4d 00 00 06 00 05 00 07 66 6f 6f 00 62 61 72 00 00'],
    ['A23b/V7 trailing NUL', '00 14 78 13 91 4d 00 00 06 00 05 00 07 66 6f 6f 62 61 72 00 00 00'],
  ])('%s in the ALIVE2 name: no reply, FIN', async (_id, req) => {
    const r = await exchange(port, hex(req));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it.each([
    ['A24 invalid UTF-8 c3 28, high 6', '00 0f 78 13 92 4d 00 00 06 00 05 00 02 c3 28 00 00', ALIVE2_X_FAIL],
    ['A24b invalid UTF-8 c3 28, high 5', '00 0f 78 13 92 4d 00 00 05 00 05 00 02 c3 28 00 00', ALIVE2_FAIL],
    ['A24c overlong c0 80', '00 0f 78 13 92 4d 00 00 06 00 05 00 02 c0 80 00 00', ALIVE2_X_FAIL],
    ['A24d surrogate ed a0 80', '00 10 78 13 92 4d 00 00 06 00 05 00 03 ed a0 80 00 00', ALIVE2_X_FAIL],
    ['A25/V5 extra of 1021 bytes', '04 0e 78 13 93 4d 00 00 06 00 05 00 04 62 69 67 78 03 fd 45×1021', ALIVE2_X_FAIL],
  ])('%s: error reply, connection stays open', async (_id, req, want) => {
    const r = await exchange(port, hex(req), { waitMs: OPEN_WAIT });
    expect(r.recv).toEqual(want);
    expect(r.end).toBe('open');
  });

  it('A25b ALIVE2 with an extra of exactly 1020 bytes succeeds', async () => {
    const r = await res.register(port, { port: 5012, name: 'bigextra', extra: Buffer.alloc(1020, 0x45) });
    expect(r.reply.subarray(0, 2)).toEqual(hex('76 00'));
  });

  it.each([
    ['A26/V7 payload of 13 bytes', '00 0d 78 13 95 4d 00 00 06 00 05 00 00 00 00'],
    ['A27/V7 Nlen larger than the packet', '00 10 78 13 95 4d 00 00 06 00 05 00 32 61 62 63 00 00'],
    ['A28/V7 Elen larger than the packet', '00 12 78 13 95 4d 00 00 06 00 05 00 03 61 62 63 00 09 78 79'],
  ])('%s: no reply, FIN', async (_id, req) => {
    const r = await exchange(port, hex(req));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it('(between A28 and A29) a node "trail" on port 5014 registers and goes away', async () => {
    const r = await res.register(port, { port: 5014, name: 'trail' });
    expect(r.reply.subarray(0, 2)).toEqual(hex('76 00'));
    await r.close();
    expect(await waitGone(port, 'trail')).toBe(true);
  });

  it('A29 ALIVE2 with 8 junk bytes after Extra inside the frame succeeds (junk ignored)', async () => {
    const c = await res.conn(port);
    c.write(hex('00 1b 78 13 96 4d 00 00 06 00 05 00 06 74 72 61 69 6c 32 00 00 4a 55 4e 4b 4a 55 4e 4b'));
    const reply = await c.waitBytes(6);
    expect(reply.subarray(0, 2)).toEqual(hex('76 00'));
    expect(reply.length).toBe(6);
    expect(await c.waitEnd(OPEN_WAIT)).toBe('open');
  });

  it('A30/V16 frame length 0: no reply, FIN', async () => {
    const r = await exchange(port, hex('00 00'));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it('A30b length 0 followed by 8 zero bytes: no reply, closed', async () => {
    const r = await exchange(port, hex('00×10'));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  const fullNames =
    '00 00 95 e1 6e 61 6d 65 20 74 72 61 69 6c 32 20 61 74 20 70 6f 72 74 20 35 30 31 34 0a 6e 61 6d 65 20 62 69 67 65 78 74 72 61 20 61 74 20 70 6f 72 74 20 35 30 31 32 0a 6e 61 6d 65 20 (f0 9f 98 80)×255 20 61 74 20 70 6f 72 74 20 35 30 30 37 0a 6e 61 6d 65 20 6e×255 20 61 74 20 70 6f 72 74 20 35 30 30 35 0a 6e 61 6d 65 20 77 69 74 68 65 78 74 72 61 20 61 74 20 70 6f 72 74 20 35 30 30 33 0a 6e 61 6d 65 20 62 65 74 61 20 61 74 20 70 6f 72 74 20 35 30 30 32 0a 6e 61 6d 65 20 61 6c 70 68 61 20 61 74 20 70 6f 72 74 20 35 30 30 31 0a';

  it('A31 NAMES with one trailing payload byte is served (trailing bytes ignored)', async () => {
    const r = await exchange(port, hex('00 02 6e 58'));
    expect(r.recv).toEqual(withPort(fullNames, port));
    expect(r.end).toBe('FIN');
  });

  it('A32 NAMES padded to length 3057 (the maximum) is served', async () => {
    const r = await exchange(port, hex('0b f1 6e 50×3056'));
    expect(r.recv).toEqual(withPort(fullNames, port));
    expect(r.end).toBe('FIN');
  });

  it('A32b/V17 NAMES padded to length 3058 is rejected without reply, with RST', async () => {
    const r = await exchange(port, hex('0b f2 6e 50×3057'));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('RST');
  });

  it('A32c/V17 length field 63000 followed by 63000 bytes (too_large): no reply, RST', async () => {
    const r = await exchange(port, hex('f6 18 7a×63000'));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('RST');
  });

  it('V17 length field 65535 with a full frame: no reply, RST', async () => {
    const r = await exchange(port, Buffer.concat([hex('ff ff'), Buffer.alloc(65535, 0x6e)]));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('RST');
  });

  it('A33 NAMES sent in 3 one-byte chunks 0.3 s apart is served', async () => {
    const r = await exchange(port, NAMES_REQ, { chunks: [hex('00'), hex('01'), hex('6e')], gapMs: 300 });
    expect(r.recv).toEqual(withPort(fullNames, port));
    expect(r.end).toBe('FIN');
  });

  it('A34/V18 two NAMES requests pipelined in one write: no reply at all', async () => {
    const r = await exchange(port, hex('00 01 6e 00 01 6e'));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it('A34b PORT_PLEASE2 alpha plus a junk byte in the same write: no reply', async () => {
    const r = await exchange(port, hex('00 06 7a 61 6c 70 68 61 21'));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it('A35 one more byte on a registration connection unregisters the node and closes it', async () => {
    const c = await res.conn(port);
    c.write(frame(alive2Payload({ port: 5015, name: 'chatty' })));
    const reply = await c.waitBytes(6);
    expect(reply.subarray(0, 2)).toEqual(hex('76 00'));
    c.write(hex('21'));
    expect(await c.waitEnd(3000)).toBe('FIN');
    expect(c.data.length).toBe(6);
    const r = await exchange(port, hex('00 07 7a 63 68 61 74 74 79'));
    expect(r.recv).toEqual(PORT2_NOT_FOUND);
    expect(r.end).toBe('FIN');
  });

  it('A36 creation sequence for "cre": +1 on re-registration; 16-bit value is (cr mod 3) + 1', async () => {
    const replies: Buffer[] = [];
    const highs = [6, 6, 5, 5];
    for (let i = 0; i < highs.length; i++) {
      const r = await res.register(port, { port: 5016, name: 'cre', high: highs[i] });
      replies.push(r.reply);
      if (i < highs.length - 1) {
        await r.close();
        expect(await waitGone(port, 'cre')).toBe(true);
      }
    }
    expect(replies.map((r) => r.subarray(0, 2).toString('hex'))).toEqual(['7600', '7600', '7900', '7900']);
    expect(replies[0]!.length).toBe(6);
    expect(replies[2]!.length).toBe(4);
    const c1 = creationOf(replies[0]!);
    expect(creationOf(replies[1]!)).toBe(c1 + 1);
    expect(creationOf(replies[2]!)).toBe(((c1 + 2) % 3) + 1);
    expect(creationOf(replies[3]!)).toBe(((c1 + 3) % 3) + 1);
  });

  it('A37 DUMP shows active names (most recent first) then old/unused names (oldest first)', async () => {
    const r = await exchange(port, DUMP_REQ);
    const golden = withPort(
      '00 00 95 e1 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 63 72 65 3e 20 61 74 20 70 6f 72 74 20 35 30 31 36 2c 20 66 64 20 3d 20 31 32 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 74 72 61 69 6c 32 3e 20 61 74 20 70 6f 72 74 20 35 30 31 34 2c 20 66 64 20 3d 20 39 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 62 69 67 65 78 74 72 61 3e 20 61 74 20 70 6f 72 74 20 35 30 31 32 2c 20 66 64 20 3d 20 31 31 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c (f0 9f 98 80)×255 3e 20 61 74 20 70 6f 72 74 20 35 30 30 37 2c 20 66 64 20 3d 20 31 30 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 6e×255 3e 20 61 74 20 70 6f 72 74 20 35 30 30 35 2c 20 66 64 20 3d 20 38 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 77 69 74 68 65 78 74 72 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 33 2c 20 66 64 20 3d 20 37 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 62 65 74 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 32 2c 20 66 64 20 3d 20 36 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 61 6c 70 68 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 31 2c 20 66 64 20 3d 20 35 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 3e 2c 20 70 6f 72 74 20 3d 20 35 30 34 34 2c 20 66 64 20 3d 20 38 20 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 74 72 61 69 6c 3e 2c 20 70 6f 72 74 20 3d 20 35 30 31 34 2c 20 66 64 20 3d 20 39 20 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 63 68 61 74 74 79 3e 2c 20 70 6f 72 74 20 3d 20 35 30 31 35 2c 20 66 64 20 3d 20 31 32 20 0a 00',
      port,
    );
    expect(maskFd(r.recv)).toEqual(maskFd(golden));
    expect(r.end).toBe('FIN');
  });

  it('A38 NAMES lists the current registrations', async () => {
    const r = await exchange(port, NAMES_REQ);
    expect(r.recv).toEqual(
      withPort(
        '00 00 95 e1 6e 61 6d 65 20 63 72 65 20 61 74 20 70 6f 72 74 20 35 30 31 36 0a 6e 61 6d 65 20 74 72 61 69 6c 32 20 61 74 20 70 6f 72 74 20 35 30 31 34 0a 6e 61 6d 65 20 62 69 67 65 78 74 72 61 20 61 74 20 70 6f 72 74 20 35 30 31 32 0a 6e 61 6d 65 20 (f0 9f 98 80)×255 20 61 74 20 70 6f 72 74 20 35 30 30 37 0a 6e 61 6d 65 20 6e×255 20 61 74 20 70 6f 72 74 20 35 30 30 35 0a 6e 61 6d 65 20 77 69 74 68 65 78 74 72 61 20 61 74 20 70 6f 72 74 20 35 30 30 33 0a 6e 61 6d 65 20 62 65 74 61 20 61 74 20 70 6f 72 74 20 35 30 30 32 0a 6e 61 6d 65 20 61 6c 70 68 61 20 61 74 20 70 6f 72 74 20 35 30 30 31 0a',
        port,
      ),
    );
  });

  it('A39 NAMES after every registration connection closed returns only the port', async () => {
    await res.closeSockets();
    expect(await waitUntil(async () => (await exchange(port, NAMES_REQ)).recv.length === 4)).toBe(true);
    const r = await exchange(port, NAMES_REQ);
    expect(r.recv).toEqual(u32(port));
    expect(r.end).toBe('FIN');
  });

  it('A40/V12 KILL_REQ with an empty registry: OK, then the daemon exits with status 0', async () => {
    const r = await exchange(port, KILL_REQ);
    expect(r.recv).toEqual(hex('4f 4b'));
    expect(r.end).toBe('FIN');
    const ex = await Promise.race([d.exited, new Promise<null>((r2) => setTimeout(() => r2(null), 5000))]);
    expect(ex).toEqual({ code: 0, signal: null });
  });
});
