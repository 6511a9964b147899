// Node-name validation (spec §5.1 step 6, §5.2 step 4) and the PORT_PLEASE2 length limit of
// golden section G-K (254 characters, because OTP counts its internal NUL terminator).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../helpers/daemon.js';
import { alive2Payload } from '../helpers/wire.js';
import { ALIVE2_X_FAIL, PORT2_NOT_FOUND, Resources, exchange, frame, hex, port2Ok, portPleaseReq } from './util.js';

describe('G-K PORT_PLEASE2 name-length limit', () => {
  const res = new Resources();
  let d: Daemon;

  beforeAll(async () => {
    d = await res.daemon();
  });
  afterAll(() => res.cleanup());

  it('P1 unknown names of 253 and 254 x a get 77 01; 255 x a gets a silent close', async () => {
    for (const n of [253, 254]) {
      const r = await exchange(d.port, portPleaseReq('a'.repeat(n)));
      expect(r.recv).toEqual(PORT2_NOT_FOUND);
      expect(r.end).toBe('FIN');
    }
    const r = await exchange(d.port, portPleaseReq('a'.repeat(255)));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  it('P2..P4 a registered 255-character name cannot be looked up (with or without trailing NUL)', async () => {
    const reg = await res.register(d.port, { port: 7253, name: 'b'.repeat(255) });
    expect(reg.reply.subarray(0, 2)).toEqual(hex('76 00'));
    for (const req of [portPleaseReq('b'.repeat(255)), portPleaseReq(Buffer.concat([Buffer.alloc(255, 0x62), hex('00')]))]) {
      const r = await exchange(d.port, req);
      expect(r.recv.length).toBe(0);
      expect(r.end).toBe('FIN');
    }
  });

  it('P5 a registered 254 x c name is found (268-byte reply)', async () => {
    const f = { port: 7254, name: 'c'.repeat(254) };
    await res.register(d.port, f);
    const r = await exchange(d.port, portPleaseReq(f.name));
    expect(r.recv).toEqual(port2Ok(f));
    expect(r.recv.length).toBe(268);
    expect(r.end).toBe('FIN');
  });

  it('P6 a registered 254 x U+1F600 name (1016 bytes) is found (1030-byte reply)', async () => {
    const f = { port: 7256, name: '\u{1F600}'.repeat(254) };
    await res.register(d.port, f);
    const r = await exchange(d.port, portPleaseReq(f.name));
    expect(r.recv).toEqual(port2Ok(f));
    expect(r.recv.length).toBe(1030);
    expect(r.end).toBe('FIN');
  });
});

describe('UTF-8 validation of node names (spec §5.1 step 6)', () => {
  const res = new Resources();
  let d: Daemon;

  beforeAll(async () => {
    d = await res.daemon();
  });
  afterAll(() => res.cleanup());

  const invalid: Array<[string, string]> = [
    ['C0 lead (overlong)', 'c0 80'],
    ['C1 lead (overlong)', 'c1 bf'],
    ['E0 followed by < A0 (overlong)', 'e0 9f bf'],
    ['F0 followed by < 90 (overlong)', 'f0 8f bf bf'],
    ['surrogate ED A0 80', 'ed a0 80'],
    ['surrogate ED BF BF', 'ed bf bf'],
    ['above U+10FFFF (F4 90)', 'f4 90 80 80'],
    ['F5 lead', 'f5 80 80 80'],
    ['FF byte', '61 ff'],
    ['stray continuation byte', '61 80'],
    ['truncated 2-byte sequence', '61 c3'],
    ['truncated 3-byte sequence', 'e2 82'],
    ['truncated 4-byte sequence', 'f0 9f 98'],
    ['lead byte followed by ASCII', 'e2 28 a1'],
  ];

  it.each(invalid)('ALIVE2 with %s fails with the error reply and the connection stays open', async (_label, name) => {
    const r = await exchange(d.port, frame(alive2Payload({ port: 7300, name: hex(name) })), { waitMs: 400 });
    expect(r.recv).toEqual(ALIVE2_X_FAIL);
    expect(r.end).toBe('open');
  });

  it.each(invalid)('PORT_PLEASE2 with %s gets a silent close', async (_label, name) => {
    const r = await exchange(d.port, portPleaseReq(hex(name)));
    expect(r.recv.length).toBe(0);
    expect(r.end).toBe('FIN');
  });

  const valid: Array<[string, string]> = [
    ['U+0080 (c2 80)', 'c2 80'],
    ['U+07FF (df bf)', 'df bf'],
    ['U+0800 (e0 a0 80)', 'e0 a0 80'],
    ['U+D7FF (ed 9f bf)', 'ed 9f bf'],
    ['U+E000 (ee 80 80)', 'ee 80 80'],
    ['U+10000 (f0 90 80 80)', 'f0 90 80 80'],
    ['U+10FFFF (f4 8f bf bf)', 'f4 8f bf bf'],
    ['DEL and other control characters', '7f 01 1f'],
  ];

  it.each(valid)('%s registers and is found byte-exact', async (_label, name) => {
    const f = { port: 7301, name: hex(name) };
    const reg = await res.register(d.port, f);
    expect(reg.reply.subarray(0, 2)).toEqual(hex('76 00'));
    const r = await exchange(d.port, portPleaseReq(f.name));
    expect(r.recv).toEqual(port2Ok(f));
    await reg.close();
  });

  it('names are compared byte-exact: "Alpha" is not "alpha"', async () => {
    const reg = await res.register(d.port, { port: 7302, name: 'alpha' });
    const r = await exchange(d.port, portPleaseReq('Alpha'));
    expect(r.recv).toEqual(PORT2_NOT_FOUND);
    const other = await res.register(d.port, { port: 7303, name: 'Alpha' });
    expect(other.reply.subarray(0, 2)).toEqual(hex('76 00'));
    await reg.close();
    await other.close();
  });

  it('ALIVE2 name of 1021 bytes (too long in bytes) fails; extra is not validated as UTF-8', async () => {
    const long = await exchange(d.port, frame(alive2Payload({ port: 7304, name: Buffer.alloc(1021, 0x61) })), { waitMs: 400 });
    expect(long.recv).toEqual(ALIVE2_X_FAIL);
    const f = { port: 7305, name: 'rawextra', extra: hex('ff fe 00 c0 80') };
    await res.register(d.port, f);
    const r = await exchange(d.port, portPleaseReq('rawextra'));
    expect(r.recv).toEqual(port2Ok(f));
  });
});
