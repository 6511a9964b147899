// decodeRequest: every validation rule of spec §5, in OTP's order, on payloads from the golden file.
import { describe, expect, it } from 'vitest';
import { hex } from '../helpers/wire.js';
import { decodeRequest, isLocalOnly, requestTypeOf, type Alive2Request, type Request, type Malformed } from '../../src/protocol/requests.js';
import { countCodePoints, isStrictUtf8 } from '../../src/protocol/utf8.js';


/** A golden request line without its 2-byte length header, checking the header first. */
function payloadOf(frameHex: string): Buffer {
  const f = hex(frameHex);
  expect(f.readUInt16BE(0), 'golden length header').toBe(f.length - 2);
  return f.subarray(2);
}

interface Alive2Fields {
  port?: number;
  nodeType?: number;
  protocol?: number;
  high?: number;
  low?: number;
  name: Buffer | string;
  extra?: Buffer;
  /** Override the Nlen / Elen fields (for overrun cases). */
  nlen?: number;
  elen?: number;
  /** Bytes after Extra. */
  tail?: Buffer;
}

function alive2(f: Alive2Fields): Buffer {
  const name = typeof f.name === 'string' ? Buffer.from(f.name, 'utf8') : f.name;
  const extra = f.extra ?? Buffer.alloc(0);
  const head = Buffer.alloc(11);
  head[0] = 0x78;
  head.writeUInt16BE(f.port ?? 5000, 1);
  head[3] = f.nodeType ?? 77;
  head[4] = f.protocol ?? 0;
  head.writeUInt16BE(f.high ?? 6, 5);
  head.writeUInt16BE(f.low ?? 5, 7);
  head.writeUInt16BE(f.nlen ?? name.length, 9);
  const elen = Buffer.alloc(2);
  elen.writeUInt16BE(f.elen ?? extra.length);
  return Buffer.concat([head, name, elen, extra, f.tail ?? Buffer.alloc(0)]);
}

function expectMalformed(result: Request | Malformed, request: Malformed['request'], reason?: RegExp): void {
  expect(result.type).toBe('malformed');
  if (result.type !== 'malformed') return;
  expect(result.request).toBe(request);
  if (reason) expect(result.reason).toMatch(reason);
}

function expectAlive2(result: Request | Malformed): Alive2Request {
  expect(result.type, result.type === 'malformed' ? result.reason : '').toBe('alive2');
  if (result.type !== 'alive2') throw new Error('not alive2');
  return result;
}

function expectAccepted(result: Request | Malformed): Alive2Request {
  const req = expectAlive2(result);
  expect(req.rejection, 'rejection').toBeUndefined();
  return req;
}

function expectRejected(result: Request | Malformed, reason?: RegExp): Alive2Request {
  const req = expectAlive2(result);
  expect(req.rejection, 'rejection').toBeDefined();
  if (reason) expect(req.rejection).toMatch(reason);
  return req;
}

function expectPort2(result: Request | Malformed, name: Buffer): void {
  expect(result.type, result.type === 'malformed' ? result.reason : '').toBe('port-please2');
  if (result.type !== 'port-please2') return;
  expect(result.name.equals(name), `name ${result.name.toString('hex')}`).toBe(true);
}

const EMOJI = 'f0 9f 98 80'; // U+1F600

describe('ALIVE2_REQ: field decoding (spec §5.1 layout)', () => {
  it('A3 alpha: port 5001, type 77, proto 0, high 6, low 5, empty extra', () => {
    const req = expectAccepted(decodeRequest(payloadOf('00 12 78 13 89 4d 00 00 06 00 05 00 05 61 6c 70 68 61 00 00')));
    expect(req.port).toBe(5001);
    expect(req.nodeType).toBe(77);
    expect(req.protocol).toBe(0);
    expect(req.highestVersion).toBe(6);
    expect(req.lowestVersion).toBe(5);
    expect(req.name.toString('latin1')).toBe('alpha');
    expect(req.extra.length).toBe(0);
  });

  it('A4 beta: hidden node type 72 and highest version 5 are kept verbatim', () => {
    const req = expectAccepted(decodeRequest(payloadOf('00 11 78 13 8a 48 00 00 05 00 05 00 04 62 65 74 61 00 00')));
    expect(req.port).toBe(5002);
    expect(req.nodeType).toBe(72);
    expect(req.highestVersion).toBe(5);
    expect(req.name.toString('latin1')).toBe('beta');
  });

  it('A20 withextra: extra 41 42 43 00 00 (NULs allowed in Extra), lowest version 6', () => {
    const req = expectAccepted(decodeRequest(payloadOf('00 1b 78 13 8b 4d 00 00 06 00 06 00 09 77 69 74 68 65 78 74 72 61 00 05 41 42 43 00 00')));
    expect(req.port).toBe(5003);
    expect(req.lowestVersion).toBe(6);
    expect(req.name.toString('latin1')).toBe('withextra');
    expect(req.extra.equals(hex('41 42 43 00 00'))).toBe(true);
  });

  it('A29: 8 junk bytes after Extra inside the frame are ignored', () => {
    const req = expectAccepted(decodeRequest(payloadOf('00 1b 78 13 96 4d 00 00 06 00 05 00 06 74 72 61 69 6c 32 00 00 4a 55 4e 4b 4a 55 4e 4b')));
    expect(req.name.toString('latin1')).toBe('trail2');
    expect(req.port).toBe(5014);
    expect(req.extra.length).toBe(0);
  });

  it('bytes after a non-empty Extra are not part of Extra', () => {
    const req = expectAccepted(decodeRequest(alive2({ name: 'x', extra: hex('01 02'), tail: hex('03 04 05') })));
    expect(req.extra.equals(hex('01 02'))).toBe(true);
  });

  it('node type, protocol and both versions are stored uninterpreted (any values)', () => {
    const req = expectAccepted(decodeRequest(alive2({ name: 'odd', port: 65535, nodeType: 0xff, protocol: 7, high: 0xffff, low: 0 })));
    expect(req).toMatchObject({ port: 65535, nodeType: 0xff, protocol: 7, highestVersion: 0xffff, lowestVersion: 0 });
  });

  it('the decoded name and extra are copies, unaffected if the receive buffer is reused', () => {
    const p = alive2({ name: 'alpha', extra: hex('41 42') });
    const req = expectAccepted(decodeRequest(p));
    p.fill(0x5a);
    expect(req.name.toString('latin1')).toBe('alpha');
    expect(req.extra.equals(hex('41 42'))).toBe(true);
  });

  it("the name and extra are copied out of a slice of Node's 8 kB buffer pool", () => {
    // A registration keeps both for as long as the node lives: a pool slice would keep its slab.
    const req = expectAccepted(decodeRequest(alive2({ name: 'alpha', extra: hex('41 42') })));
    expect(req.name.buffer.byteLength).toBe(5);
    expect(req.extra.buffer.byteLength).toBe(2);
    expect(req.name.byteOffset).toBe(0);
  });

  it('a request read into memory of its own (how the server reads one) is kept as views, not copied', () => {
    const pooled = alive2({ name: 'alpha', extra: hex('41 42') });
    const own = Buffer.alloc(pooled.length);
    pooled.copy(own);
    const req = expectAccepted(decodeRequest(own));
    expect(req.name.buffer).toBe(own.buffer);
    expect(req.extra.buffer).toBe(own.buffer);
    expect(req.name.toString('latin1')).toBe('alpha');
  });
});

describe('ALIVE2_REQ: silent-close validations, in OTP order (spec §5.1 steps 2–5, V7)', () => {
  it('A21/A26: a 13-byte payload (empty name, empty extra) is too small', () => {
    expectMalformed(decodeRequest(payloadOf('00 0d 78 13 8c 4d 00 00 06 00 06 00 00 00 00')), 'alive2', /small/);
  });

  for (const size of [1, 2, 9, 11, 12, 13]) {
    it(`a ${size}-byte ALIVE2 payload is too small (≤ 13)`, () => {
      const p = Buffer.alloc(size);
      p[0] = 0x78;
      expectMalformed(decodeRequest(p), 'alive2', /small/);
    });
  }

  it('A21c: empty name with Elen=1 (14-byte payload) is accepted (Q3)', () => {
    const req = expectAccepted(decodeRequest(payloadOf('00 0e 78 13 b4 4d 00 00 06 00 06 00 00 00 01 45')));
    expect(req.name.length).toBe(0);
    expect(req.extra.equals(hex('45'))).toBe(true);
    expect(req.port).toBe(5044);
  });

  it('empty name, empty extra and one junk byte (14-byte payload) is accepted too', () => {
    const req = expectAccepted(decodeRequest(alive2({ name: '', tail: hex('00') })));
    expect(req.name.length).toBe(0);
    expect(req.extra.length).toBe(0);
  });

  it('A27: Nlen larger than the packet -> node name size error', () => {
    expectMalformed(decodeRequest(payloadOf('00 10 78 13 95 4d 00 00 06 00 05 00 32 61 62 63 00 00')), 'alive2', /name size/i);
  });

  it('Nlen overrun by exactly one byte (13 + Nlen = size + 1) -> name size error', () => {
    // 'ab' + Elen(2) = 13 + 2 = 15 bytes; Nlen 3 needs 16.
    const p = alive2({ name: 'ab', nlen: 3 });
    expect(p.length).toBe(15);
    expectMalformed(decodeRequest(p), 'alive2', /name size/i);
  });

  it('Nlen that exactly fits (13 + Nlen = size) is not a name size error', () => {
    const p = alive2({ name: 'ab' });
    expect(13 + 2).toBe(p.length);
    expectAccepted(decodeRequest(p));
  });

  it('A28: Elen larger than the packet -> extra info size error', () => {
    expectMalformed(decodeRequest(payloadOf('00 12 78 13 95 4d 00 00 06 00 05 00 03 61 62 63 00 09 78 79')), 'alive2', /extra size/i);
  });

  it('Elen overrun by one byte -> extra size error; Elen exactly fitting is fine', () => {
    expectMalformed(decodeRequest(alive2({ name: 'ab', extra: hex('01 02'), elen: 3 })), 'alive2', /extra size/i);
    expectAccepted(decodeRequest(alive2({ name: 'ab', extra: hex('01 02 03'), elen: 3 })));
  });

  it('A23a: NUL inside the name -> silent close', () => {
    expectMalformed(decodeRequest(payloadOf('00 14 78 13 91 4d 00 00 06 00 05 00 07 66 6f 6f 00 62 61 72 00 00')), 'alive2', /NUL/);
  });

  it('A23b: trailing NUL in the name -> silent close', () => {
    expectMalformed(decodeRequest(payloadOf('00 14 78 13 91 4d 00 00 06 00 05 00 07 66 6f 6f 62 61 72 00 00 00')), 'alive2', /NUL/);
  });

  it('leading NUL and a name that is a single NUL -> silent close', () => {
    expectMalformed(decodeRequest(alive2({ name: hex('00 61') })), 'alive2', /NUL/);
    expectMalformed(decodeRequest(alive2({ name: hex('00') })), 'alive2', /NUL/);
  });

  it('NUL bytes in Extra are not a name error', () => {
    expectAccepted(decodeRequest(alive2({ name: 'n', extra: hex('00 00 00') })));
  });

  it('order: a Nlen overrun is reported before a NUL in the name', () => {
    expectMalformed(decodeRequest(alive2({ name: hex('61 00'), nlen: 10 })), 'alive2', /name size/i);
  });

  it('order: an Elen overrun is reported before a NUL in the name', () => {
    expectMalformed(decodeRequest(alive2({ name: hex('61 00'), elen: 10 })), 'alive2', /extra size/i);
  });

  it('order: NUL in a name that is also too long (1021 bytes) is a silent close, not an error reply', () => {
    const name = Buffer.alloc(1021, 0x61);
    name[500] = 0;
    expectMalformed(decodeRequest(alive2({ name })), 'alive2', /NUL/);
  });

  it('order: NUL in a name with invalid UTF-8 is a silent close, not an error reply', () => {
    expectMalformed(decodeRequest(alive2({ name: hex('ff 00') })), 'alive2', /NUL/);
  });

  it('order: NUL in the name with an oversized Extra (1021) is a silent close', () => {
    expectMalformed(decodeRequest(alive2({ name: hex('61 00'), extra: Buffer.alloc(1021, 0x45) })), 'alive2', /NUL/);
  });
});

describe('ALIVE2_REQ: registration failures that get an error reply (spec §5.1 step 6, V5/V6)', () => {
  it('name of 1020 bytes of ASCII is too many characters (1020 > 255)', () => {
    expectRejected(decodeRequest(alive2({ name: Buffer.alloc(1020, 0x61) })));
  });

  it('Nlen 1021 -> "node name is too long"', () => {
    expectRejected(decodeRequest(alive2({ name: Buffer.alloc(1021, 0x61) })), /too long/);
  });

  it('Nlen 3044, the largest that fits a 3057-byte frame -> too long (still an error reply)', () => {
    const p = alive2({ name: Buffer.alloc(3044, 0x61) });
    expect(p.length).toBe(3057);
    expectRejected(decodeRequest(p), /too long/);
  });

  it('A22a: 255 × "n" is accepted', () => {
    const req = expectAccepted(decodeRequest(alive2({ name: 'n'.repeat(255) })));
    expect(req.name.length).toBe(255);
  });

  it('A22b: 256 × "m" is rejected (too long)', () => {
    expectRejected(decodeRequest(payloadOf('01 0d 78 13 8e 4d 00 00 06 00 05 01 00 6d×256 00 00')), /too long/);
  });

  it('A22c: 255 × U+1F600 (1020 bytes, exactly MAXSYMLEN) is accepted', () => {
    const req = expectAccepted(decodeRequest(alive2({ name: hex(`(${EMOJI})×255`) })));
    expect(req.name.length).toBe(1020);
  });

  it('256 × U+1F600 (1024 bytes) is rejected', () => {
    expectRejected(decodeRequest(alive2({ name: hex(`(${EMOJI})×256`) })), /too long/);
  });

  it('A22d: 256 × "é" (512 bytes but 256 characters) is rejected', () => {
    expectRejected(decodeRequest(payloadOf('02 0d 78 13 90 4d 00 00 06 00 05 02 00 (c3 a9)×256 00 00')), /too long/);
  });

  it('255 × "é" (510 bytes) is accepted', () => {
    expectAccepted(decodeRequest(alive2({ name: hex('(c3 a9)×255') })));
  });

  it('mixed widths: 254 × "a" + one U+1F600 = 255 characters is accepted; one more "a" is not', () => {
    expectAccepted(decodeRequest(alive2({ name: Buffer.concat([Buffer.alloc(254, 0x61), hex(EMOJI)]) })));
    expectRejected(decodeRequest(alive2({ name: Buffer.concat([Buffer.alloc(255, 0x61), hex(EMOJI)]) })));
  });

  const invalidUtf8: [string, string][] = [
    ['A24 c3 28 (lead without continuation)', 'c3 28'],
    ['A24c overlong NUL c0 80', 'c0 80'],
    ['overlong c1 bf', 'c1 bf'],
    ['overlong 3-byte e0 80 80', 'e0 80 80'],
    ['overlong 3-byte e0 9f bf', 'e0 9f bf'],
    ['overlong 4-byte f0 80 80 80', 'f0 80 80 80'],
    ['overlong 4-byte f0 8f bf bf', 'f0 8f bf bf'],
    ['A24d surrogate ed a0 80 (U+D800)', 'ed a0 80'],
    ['surrogate ed bf bf (U+DFFF)', 'ed bf bf'],
    ['above U+10FFFF f4 90 80 80', 'f4 90 80 80'],
    ['lead f5', 'f5 80 80 80'],
    ['lead f8', 'f8 88 80 80 80'],
    ['lead fe', 'fe'],
    ['lead ff', 'ff'],
    ['stray continuation 80', '61 80 62'],
    ['stray continuation bf at start', 'bf'],
    ['truncated 2-byte sequence at end', '61 c3'],
    ['truncated 3-byte sequence e2 82', 'e2 82'],
    ['truncated 4-byte sequence f0 9f 98', 'f0 9f 98'],
    ['5 continuation bytes after a valid char', 'c3 a9 80 80 80 80 80'],
  ];
  for (const [label, bytes] of invalidUtf8) {
    it(`invalid UTF-8 name: ${label} -> error reply (A24)`, () => {
      expectRejected(decodeRequest(alive2({ name: hex(bytes) })), /encoding/);
    });
  }

  it('A24b: invalid UTF-8 with high=5 keeps highestVersion 5 so the server picks the 16-bit error reply', () => {
    const req = expectRejected(decodeRequest(payloadOf('00 0f 78 13 92 4d 00 00 05 00 05 00 02 c3 28 00 00')));
    expect(req.highestVersion).toBe(5);
  });

  const validUtf8: [string, string][] = [
    ['U+0080 c2 80', 'c2 80'],
    ['U+07FF df bf', 'df bf'],
    ['U+0800 e0 a0 80', 'e0 a0 80'],
    ['U+D7FF ed 9f bf', 'ed 9f bf'],
    ['U+E000 ee 80 80', 'ee 80 80'],
    ['U+FFFF ef bf bf', 'ef bf bf'],
    ['U+10000 f0 90 80 80', 'f0 90 80 80'],
    ['U+10FFFF f4 8f bf bf', 'f4 8f bf bf'],
    ['control characters 01 7f', '01 7f'],
  ];
  for (const [label, bytes] of validUtf8) {
    it(`valid UTF-8 name: ${label} is accepted`, () => {
      expectAccepted(decodeRequest(alive2({ name: hex(bytes) })));
    });
  }

  it('A25: extra of 1021 bytes -> "extra data is too long"', () => {
    expectRejected(decodeRequest(payloadOf('04 0e 78 13 93 4d 00 00 06 00 05 00 04 62 69 67 78 03 fd 45×1021')), /extra/);
  });

  it('A25b: extra of 1020 bytes is accepted and kept whole', () => {
    const req = expectAccepted(decodeRequest(alive2({ name: 'bigextra', extra: Buffer.alloc(1020, 0x45) })));
    expect(req.extra.length).toBe(1020);
  });

  it('Extra is not validated: invalid UTF-8 and NULs in a 1020-byte extra are fine', () => {
    const extra = Buffer.alloc(1020, 0xff);
    extra[3] = 0;
    expectAccepted(decodeRequest(alive2({ name: 'x', extra })));
  });

  it('a rejected request still carries its decoded fields (the connection becomes a registration connection, §5.1 step 8)', () => {
    const req = expectRejected(decodeRequest(alive2({ name: 'bigx', port: 5011, high: 6, extra: Buffer.alloc(1021, 0x45) })));
    expect(req.port).toBe(5011);
    expect(req.highestVersion).toBe(6);
    expect(req.name.toString('latin1')).toBe('bigx');
  });
});

describe('PORT_PLEASE2_REQ (spec §5.2, V8–V10, G-K)', () => {
  it('V8/A7: "alpha"', () => {
    expectPort2(decodeRequest(payloadOf('00 06 7a 61 6c 70 68 61')), Buffer.from('alpha'));
  });

  it('A10: one trailing NUL is dropped', () => {
    expectPort2(decodeRequest(payloadOf('00 07 7a 61 6c 70 68 61 00')), Buffer.from('alpha'));
  });

  it('only one trailing NUL is dropped: "alpha\\0\\0" has an embedded NUL -> silent close', () => {
    expectMalformed(decodeRequest(hex('7a 61 6c 70 68 61 00 00')), 'port-please2');
  });

  it('A11: embedded NUL -> silent close', () => {
    expectMalformed(decodeRequest(payloadOf('00 07 7a 61 6c 00 70 68 61')), 'port-please2', /NUL/);
  });

  it('A12: empty name -> silent close', () => {
    expectMalformed(decodeRequest(payloadOf('00 01 7a')), 'port-please2', /empty/);
  });

  it('a name consisting of one NUL is empty after dropping it -> silent close', () => {
    expectMalformed(decodeRequest(hex('7a 00')), 'port-please2', /empty/);
  });

  it('a leading NUL is embedded, not trailing -> silent close', () => {
    expectMalformed(decodeRequest(hex('7a 00 61')), 'port-please2', /NUL/);
  });

  it('A13: invalid UTF-8 (ff) -> silent close', () => {
    expectMalformed(decodeRequest(payloadOf('00 02 7a ff')), 'port-please2', /invalid node name/);
  });

  for (const [label, bytes] of [
    ['overlong c0 80', 'c0 80'],
    ['surrogate ed a0 80', 'ed a0 80'],
    ['above U+10FFFF f4 90 80 80', 'f4 90 80 80'],
    ['truncated e2 82', 'e2 82'],
    ['stray continuation', '61 80'],
  ] as const) {
    it(`invalid UTF-8 ${label} -> silent close`, () => {
      expectMalformed(decodeRequest(Buffer.concat([hex('7a'), hex(bytes)])), 'port-please2', /invalid node name/);
    });
  }

  it('G-K P1: 253 × "a" and 254 × "a" are looked up', () => {
    expectPort2(decodeRequest(Buffer.concat([hex('7a'), Buffer.alloc(253, 0x61)])), Buffer.alloc(253, 0x61));
    expectPort2(decodeRequest(Buffer.concat([hex('7a'), Buffer.alloc(254, 0x61)])), Buffer.alloc(254, 0x61));
  });

  it('A14a/G-K P1: 255 × "a" -> silent close (Q15: OTP counts its internal NUL)', () => {
    expectMalformed(decodeRequest(payloadOf('01 00 7a 61×255')), 'port-please2', /invalid node name/);
  });

  it('A14b: 256 × "a" -> silent close', () => {
    expectMalformed(decodeRequest(payloadOf('01 01 7a 61×256')), 'port-please2');
  });

  it('G-K P4: 255 × "b" + NUL -> silent close (the NUL is dropped first, still 255 characters)', () => {
    expectMalformed(decodeRequest(Buffer.concat([hex('7a'), Buffer.alloc(255, 0x62), hex('00')])), 'port-please2');
  });

  it('254 × "a" + NUL -> looked up as 254 × "a"', () => {
    expectPort2(decodeRequest(Buffer.concat([hex('7a'), Buffer.alloc(254, 0x61), hex('00')])), Buffer.alloc(254, 0x61));
  });

  it('G-K P6: 254 × U+1F600 (1016 bytes) is looked up; 255 × U+1F600 is not', () => {
    expectPort2(decodeRequest(Buffer.concat([hex('7a'), hex(`(${EMOJI})×254`)])), hex(`(${EMOJI})×254`));
    expectMalformed(decodeRequest(Buffer.concat([hex('7a'), hex(`(${EMOJI})×255`)])), 'port-please2');
  });

  it('a multi-byte name "é" is returned byte-exact', () => {
    expectPort2(decodeRequest(hex('7a c3 a9')), hex('c3 a9'));
  });

  it('the name is a view of the payload, not a copy (a lookup holds it only while answered)', () => {
    const p = hex('7a 61 6c 70 68 61');
    const result = decodeRequest(p);
    expectPort2(result, Buffer.from('alpha'));
    const name = (result as { name: Buffer }).name;
    expect(name.buffer).toBe(p.buffer);
    expect(name.byteOffset).toBe(p.byteOffset + 1);
  });
});

describe('STOP_REQ (spec §5.6)', () => {
  it('B2: "gamma"', () => {
    const r = decodeRequest(payloadOf('00 06 73 67 61 6d 6d 61'));
    expect(r.type).toBe('stop');
    if (r.type === 'stop') expect(r.name.toString('latin1')).toBe('gamma');
  });

  it('B5: payload of 1 byte (empty name) -> silent close', () => {
    expectMalformed(decodeRequest(payloadOf('00 01 73')), 'stop');
  });

  it('the name ends at the first NUL', () => {
    const r = decodeRequest(hex('73 61 62 00 63 64'));
    expect(r.type).toBe('stop');
    if (r.type === 'stop') expect(r.name.equals(hex('61 62'))).toBe(true);
  });

  it('a 2-byte payload "s\\0" is not "too small": the name is empty', () => {
    const r = decodeRequest(hex('73 00'));
    expect(r.type).toBe('stop');
    if (r.type === 'stop') expect(r.name.length).toBe(0);
  });

  it('no UTF-8 or length check on the name', () => {
    const r = decodeRequest(Buffer.concat([hex('73 ff fe'), Buffer.alloc(2000, 0x61)]));
    expect(r.type).toBe('stop');
    if (r.type === 'stop') expect(r.name.length).toBe(2002);
  });
});

describe('NAMES / DUMP / KILL: trailing bytes ignored (spec §4 rule 7, A31)', () => {
  it('V1 NAMES 6e', () => expect(decodeRequest(hex('6e'))).toEqual({ type: 'names' }));
  it('A31 NAMES with a trailing byte', () => expect(decodeRequest(payloadOf('00 02 6e 58'))).toEqual({ type: 'names' }));
  it('A32 NAMES padded to 3057 bytes', () => expect(decodeRequest(payloadOf('0b f1 6e 50×3056'))).toEqual({ type: 'names' }));
  it('V2 DUMP 64', () => expect(decodeRequest(hex('64'))).toEqual({ type: 'dump' }));
  it('DUMP with trailing bytes', () => expect(decodeRequest(hex('64 00 ff 61'))).toEqual({ type: 'dump' }));
  it('V11 KILL 6b', () => expect(decodeRequest(hex('6b'))).toEqual({ type: 'kill' }));
  it('KILL with trailing bytes', () => expect(decodeRequest(hex('6b 6b 6b'))).toEqual({ type: 'kill' }));
});

describe('unknown request codes -> silent close (spec §2, V19)', () => {
  const codes: [string, number][] = [
    ["A19/V19 legacy 'a' (ALIVE_REQ)", 0x61],
    ["legacy 'p' (PORT_REQ)", 0x70],
    ['0', 0],
    ["'y' (a reply code)", 0x79],
    ["'v' (a reply code)", 0x76],
    ["'w' (a reply code)", 0x77],
    ["'X' (upper-case x)", 0x58],
    ['255', 0xff],
  ];
  for (const [label, code] of codes) {
    it(`${label}`, () => {
      expectMalformed(decodeRequest(Buffer.from([code, 0x61, 0x62])), 'unknown');
      expect(requestTypeOf(Buffer.from([code]))).toBeUndefined();
    });
  }

  it('an empty payload is unknown (cannot come from FrameReader, but must not throw)', () => {
    expectMalformed(decodeRequest(Buffer.alloc(0)), 'unknown');
    expect(requestTypeOf(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('requestTypeOf / isLocalOnly (spec §2, §7)', () => {
  it('maps every request code', () => {
    expect(requestTypeOf(hex('78'))).toBe('alive2');
    expect(requestTypeOf(hex('7a'))).toBe('port-please2');
    expect(requestTypeOf(hex('6e'))).toBe('names');
    expect(requestTypeOf(hex('64'))).toBe('dump');
    expect(requestTypeOf(hex('6b'))).toBe('kill');
    expect(requestTypeOf(hex('73'))).toBe('stop');
    expect(requestTypeOf(hex('53'))).toBe('status');
  });

  it('ALIVE2, DUMP, KILL, STOP (and epmd-ng\'s STATUS) are local-only; NAMES and PORT_PLEASE2 are served to anyone (G-G)', () => {
    expect(isLocalOnly('status')).toBe(true);
    expect(isLocalOnly('alive2')).toBe(true);
    expect(isLocalOnly('dump')).toBe(true);
    expect(isLocalOnly('kill')).toBe(true);
    expect(isLocalOnly('stop')).toBe(true);
    expect(isLocalOnly('names')).toBe(false);
    expect(isLocalOnly('port-please2')).toBe(false);
  });
});

describe("STATUS_REQ (epmd-ng's own: 'S' + layout version 1)", () => {
  it('53 01 is a status request', () => expect(decodeRequest(hex('53 01'))).toEqual({ type: 'status' }));
  it('another version, a missing version or trailing bytes get no reply', () => {
    expectMalformed(decodeRequest(hex('53 02')), 'status', /unsupported STATUS_REQ \(2 bytes, version 2\)/);
    expectMalformed(decodeRequest(hex('53')), 'status', /version none/);
    expectMalformed(decodeRequest(hex('53 01 00')), 'status', /3 bytes/);
  });
});

describe('utf8.ts: isStrictUtf8 / countCodePoints (spec §5.1 step 6 validity rules)', () => {
  it('accepts the empty string and ASCII', () => {
    expect(isStrictUtf8(Buffer.alloc(0))).toBe(true);
    expect(isStrictUtf8(Buffer.from('alpha'))).toBe(true);
  });

  it('accepts every boundary code point of each sequence length', () => {
    for (const h of ['7f', 'c2 80', 'df bf', 'e0 a0 80', 'ed 9f bf', 'ee 80 80', 'ef bf bf', 'f0 90 80 80', 'f4 8f bf bf']) {
      expect(isStrictUtf8(hex(h)), h).toBe(true);
    }
  });

  it('rejects overlongs (C0/C1 leads, E0 < A0, F0 < 90), surrogates, > U+10FFFF, F5..FF leads, stray and truncated sequences', () => {
    const bad = ['c0 80', 'c1 bf', 'e0 80 80', 'e0 9f bf', 'f0 80 80 80', 'f0 8f bf bf', 'ed a0 80', 'ed bf bf', 'f4 90 80 80',
      'f5 80 80 80', 'f6', 'f7', 'f8', 'f9', 'fa', 'fb', 'fc', 'fd', 'fe', 'ff', '80', 'bf', '61 80', 'c3', 'e2 82', 'f0 9f 98', 'c3 28', 'e2 28 a1'];
    for (const h of bad) expect(isStrictUtf8(hex(h)), h).toBe(false);
  });

  it('works on a Uint8Array view at an offset (not only whole Buffers)', () => {
    const whole = hex('ff 61 62 ff');
    expect(isStrictUtf8(whole.subarray(1, 3))).toBe(true);
    expect(isStrictUtf8(new Uint8Array(whole.buffer, whole.byteOffset + 1, 2))).toBe(true);
  });

  it('counts code points, not bytes', () => {
    expect(countCodePoints(Buffer.alloc(0))).toBe(0);
    expect(countCodePoints(Buffer.from('alpha'))).toBe(5);
    expect(countCodePoints(hex('(c3 a9)×256'))).toBe(256);
    expect(countCodePoints(hex(`(${EMOJI})×255`))).toBe(255);
    expect(countCodePoints(hex('61 e2 82 ac f0 9f 98 80 c3 a9'))).toBe(4);
  });
});
