// KILL_REQ and STOP_REQ: golden transcript G-B (B1..B9), vectors V11..V15, spec §5.5, §5.6, §8.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../helpers/daemon.js';
import { alive2Payload } from '../helpers/wire.js';
import {
  ALIVE2_X_FAIL,
  DUMP_REQ,
  KILL_REQ,
  PORT2_NOT_FOUND,
  Resources,
  dumpReply,
  exchange,
  frame,
  hex,
  listedNames,
  maskFd,
  portPleaseReq,
  stopReq,
  u32,
  waitGone,
} from './util.js';

function exitWithin(d: Daemon, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'running'> {
  return Promise.race([d.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), ms))]);
}

describe('G-B -relaxed_command_check transcript', () => {
  const res = new Resources();
  let d: Daemon;
  let port: number;

  beforeAll(async () => {
    d = await res.daemon(['-relaxed_command_check']);
    port = d.port;
  });
  afterAll(() => res.cleanup());

  let gammaEnded: Promise<void>;

  it('B1 register gamma', async () => {
    const g = await res.register(port, { port: 5101, name: 'gamma' });
    expect(g.reply.subarray(0, 2)).toEqual(hex('76 00'));
    gammaEnded = g.closed;
  });

  it('B2/V14 STOP_REQ gamma replies STOPPED and closes gamma\'s registration connection', async () => {
    const r = await exchange(port, hex('00 06 73 67 61 6d 6d 61'));
    expect(r.recv).toEqual(Buffer.from('STOPPED'));
    expect(r.end).toBe('FIN');
    const closed = await Promise.race([gammaEnded.then(() => true), new Promise<boolean>((x) => setTimeout(() => x(false), 3000))]);
    expect(closed).toBe(true);
  });

  it('B3 PORT_PLEASE2 gamma after STOP: not found', async () => {
    const r = await exchange(port, hex('00 06 7a 67 61 6d 6d 61'));
    expect(r.recv).toEqual(PORT2_NOT_FOUND);
    expect(r.end).toBe('FIN');
  });

  it('B4/V15 STOP_REQ for an unknown name replies NOEXIST followed by STOPPED (14 bytes)', async () => {
    const r = await exchange(port, hex('00 07 73 6e 6f 62 6f 64 79'));
    expect(r.recv).toEqual(hex('4e 4f 45 58 49 53 54 53 54 4f 50 50 45 44'));
    expect(r.end).toBe('FIN');
  });

  it('B5 STOP_REQ with an empty name: no reply, FIN', async () => {
    const r = await exchange(port, hex('00 01 73'));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  let deltaEnded: Promise<void>;

  it('B6/B7 register delta; DUMP shows delta active and gamma old/unused', async () => {
    const dl = await res.register(port, { port: 5102, name: 'delta' });
    expect(dl.reply.subarray(0, 2)).toEqual(hex('76 00'));
    deltaEnded = dl.closed;
    const r = await exchange(port, DUMP_REQ);
    const golden = hex(
      '00 00 95 e1 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 64 65 6c 74 61 3e 20 61 74 20 70 6f 72 74 20 35 31 30 32 2c 20 66 64 20 3d 20 35 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 67 61 6d 6d 61 3e 2c 20 70 6f 72 74 20 3d 20 35 31 30 31 2c 20 66 64 20 3d 20 36 20 0a 00',
    );
    u32(port).copy(golden, 0);
    expect(maskFd(r.recv)).toEqual(maskFd(golden));
    expect(r.end).toBe('FIN');
  });

  it('B8 KILL_REQ with delta still registered (relaxed): OK, daemon exits 0, delta\'s connection is closed', async () => {
    const r = await exchange(port, KILL_REQ);
    expect(r.recv).toEqual(hex('4f 4b'));
    expect(r.end).toBe('FIN');
    expect(await exitWithin(d, 5000)).toEqual({ code: 0, signal: null });
    const closed = await Promise.race([deltaEnded.then(() => true), new Promise<boolean>((x) => setTimeout(() => x(false), 3000))]);
    expect(closed).toBe(true);
  });
});

describe('relaxed command check via ERL_EPMD_RELAXED_COMMAND_CHECK (presence only)', () => {
  const res = new Resources();
  afterEach(() => res.cleanup());

  it.each([
    ['set to the empty string (B9)', ''],
    ['set to 1', '1'],
    ['set to "false" (the value is not looked at)', 'false'],
  ])('KILL_REQ with a node registered succeeds when the variable is %s', async (_label, value) => {
    const d = await res.daemon([], { env: { ERL_EPMD_RELAXED_COMMAND_CHECK: value } });
    const reg = await res.register(d.port, { port: 5201, name: 'envnode' });
    expect(reg.reply.subarray(0, 2)).toEqual(hex('76 00'));
    const r = await exchange(d.port, KILL_REQ);
    expect(r.recv).toEqual(hex('4f 4b'));
    expect(await exitWithin(d, 5000)).toEqual({ code: 0, signal: null });
  });

  it('STOP_REQ is honoured when the variable is set', async () => {
    const d = await res.daemon([], { env: { ERL_EPMD_RELAXED_COMMAND_CHECK: '' } });
    const reg = await res.register(d.port, { port: 5202, name: 'envstop' });
    const r = await exchange(d.port, stopReq('envstop'));
    expect(r.recv).toEqual(Buffer.from('STOPPED'));
    await reg.closed;
    expect(await listedNames(d.port)).not.toContain('envstop');
  });
});

describe('KILL and STOP without relaxed checking (V11, V13, no_live_killing)', () => {
  const res = new Resources();
  afterEach(() => res.cleanup());

  it('KILL is refused with NO while a node lives, STOP gets no reply, and KILL succeeds once the node is gone', async () => {
    const d = await res.daemon();
    const reg = await res.register(d.port, { port: 1000, name: 'foo', high: 5, low: 5 });
    expect(reg.reply.subarray(0, 2)).toEqual(hex('79 00'));

    const k1 = await exchange(d.port, KILL_REQ);
    expect(k1.recv).toEqual(Buffer.from('NO'));
    expect(k1.end).toBe('FIN');

    const s = await exchange(d.port, stopReq('foo'));
    expect(s.recv.length).toBe(0);
    expect(s.end).toBe('FIN');
    expect(await listedNames(d.port)).toEqual(['foo']);

    await reg.close();
    expect(await waitGone(d.port, 'foo')).toBe(true);
    const k2 = await exchange(d.port, KILL_REQ);
    expect(k2.recv).toEqual(Buffer.from('OK'));
    expect(await exitWithin(d, 5000)).toEqual({ code: 0, signal: null });
  });

  it('KILL counts only live registrations: refused registrations and old/unused names do not block it', async () => {
    const d = await res.daemon();
    const a = await res.register(d.port, { port: 1001, name: 'holder' });
    // A refused duplicate keeps its connection open (Q2) but is no registration.
    const dup = await res.conn(d.port);
    dup.write(frame(alive2Payload({ port: 1002, name: 'holder' })));
    expect(await dup.waitBytes(6)).toEqual(ALIVE2_X_FAIL);
    await a.close();
    expect(await waitGone(d.port, 'holder')).toBe(true);
    const k = await exchange(d.port, KILL_REQ);
    expect(k.recv).toEqual(Buffer.from('OK'));
    expect(await exitWithin(d, 5000)).toEqual({ code: 0, signal: null });
  });
});

describe('STOP_REQ details under -relaxed_command_check', () => {
  const res = new Resources();
  afterEach(() => res.cleanup());

  it('the name ends at the first NUL: "s gamma\\0junk" stops gamma', async () => {
    const d = await res.daemon(['-relaxed_command_check']);
    const reg = await res.register(d.port, { port: 5301, name: 'gamma' });
    const r = await exchange(d.port, hex('00 0b 73 67 61 6d 6d 61 00 6a 75 6e 6b'));
    expect(r.recv).toEqual(Buffer.from('STOPPED'));
    await reg.closed;
    expect(await listedNames(d.port)).toEqual([]);
  });

  it('a stopped name can register again and is found again', async () => {
    const d = await res.daemon(['-relaxed_command_check']);
    const reg = await res.register(d.port, { port: 5302, name: 'again' });
    expect((await exchange(d.port, stopReq('again'))).recv).toEqual(Buffer.from('STOPPED'));
    await reg.closed;
    const reg2 = await res.register(d.port, { port: 5303, name: 'again' });
    expect(reg2.reply.subarray(0, 2)).toEqual(hex('76 00'));
    const r = await exchange(d.port, portPleaseReq('again'));
    expect(r.recv.readUInt16BE(2)).toBe(5303);
  });

  it('STOP only removes the named node; the others stay registered (DUMP)', async () => {
    const d = await res.daemon(['-relaxed_command_check']);
    await res.register(d.port, { port: 5304, name: 'keep1' });
    const victim = await res.register(d.port, { port: 5305, name: 'gone' });
    await res.register(d.port, { port: 5306, name: 'keep2' });
    expect((await exchange(d.port, stopReq('gone'))).recv).toEqual(Buffer.from('STOPPED'));
    await victim.closed;
    const r = await exchange(d.port, DUMP_REQ);
    expect(maskFd(r.recv)).toEqual(
      dumpReply(
        d.port,
        [
          ['keep2', 5306],
          ['keep1', 5304],
        ],
        [['gone', 5305]],
      ),
    );
  });
});
