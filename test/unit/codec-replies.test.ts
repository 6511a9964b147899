// Reply encoders, byte-exact against the golden transcripts (epmd-golden.md) — spec §5, §6.
import { describe, expect, it } from 'vitest';
import { hex } from '../helpers/wire.js';
import {
  encodeAlive2Reply,
  encodeDumpReply,
  encodeNamesReply,
  encodePort2Reply,
  KILL_OK,
  KILL_REFUSED,
  STOP_DONE,
  STOP_UNKNOWN,
  type DumpEntry,
  type NamedPort,
} from '../../src/protocol/replies.js';
import type { NodeInfo } from '../../src/protocol/requests.js';
import { creationFor } from '../../src/registry/registry.js';


/** Compares as hex strings so a mismatch shows where the bytes differ. */
function expectBytes(actual: Buffer, expectedHex: string): void {
  expect(actual.toString('hex')).toBe(hex(expectedHex).toString('hex'));
}

function node(name: Buffer | string, port: number, extra: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name: typeof name === 'string' ? Buffer.from(name, 'utf8') : name,
    port,
    nodeType: 77,
    protocol: 0,
    highestVersion: 6,
    lowestVersion: 5,
    extra: Buffer.alloc(0),
    ...extra,
  };
}

const EMOJI255 = hex('(f0 9f 98 80)×255');
const N255 = Buffer.alloc(255, 0x6e);
const PORT_38369 = 38369; // 00 00 95 e1

/** The server's path: the registry's counter folded once by creationFor, then encoded. */
function alive2Ok(counter: number, high: number): Buffer {
  return encodeAlive2Reply(true, creationFor(counter, high), high);
}

describe('ALIVE2 replies (spec §5.1 step 7, §6 "Value returned")', () => {
  it('A3: success, high=6, creation 1795248377 -> 76 00 6b 01 50 f9', () => {
    expectBytes(alive2Ok(1795248377, 6), '76 00 6b 01 50 f9');
  });

  it('A4: success, high=5, same counter 1795248377 -> 16-bit (counter % 3) + 1 = 3 -> 79 00 00 03', () => {
    expectBytes(alive2Ok(1795248377, 5), '79 00 00 03');
  });

  it('A5/V5: failure, high=6 -> 76 01 00 00 00 63 (creation 99 whatever value is passed)', () => {
    expectBytes(encodeAlive2Reply(false, 1795248377, 6), '76 01 00 00 00 63');
    expectBytes(encodeAlive2Reply(false, 0, 6), '76 01 00 00 00 63');
  });

  it('A6/V6: failure, high=5 -> 79 01 00 63', () => {
    expectBytes(encodeAlive2Reply(false, 1795248377, 5), '79 01 00 63');
    expectBytes(encodeAlive2Reply(false, 0, 5), '79 01 00 63');
    expectBytes(encodeAlive2Reply(false, 5, 0), '79 01 00 63');
  });

  it('A36: cre counters …51 27, …51 28 (high 6), …51 29, …51 2a (high 5) -> 76…27 | 76…28 | 79 00 00 03 | 79 00 00 01', () => {
    expectBytes(alive2Ok(0x6b015127, 6), '76 00 6b 01 51 27');
    expectBytes(alive2Ok(0x6b015128, 6), '76 00 6b 01 51 28');
    expectBytes(alive2Ok(0x6b015129, 5), '79 00 00 03');
    expectBytes(alive2Ok(0x6b01512a, 5), '79 00 00 01');
  });

  it('G-I conn1: node b creation 0x6b014ef0 -> 76 00 6b 01 4e f0', () => {
    expectBytes(alive2Ok(0x6b014ef0, 6), '76 00 6b 01 4e f0');
  });

  it('the 16-bit creation is always 1..3 and cycles with the counter (folded exactly once)', () => {
    expectBytes(alive2Ok(4, 5), '79 00 00 02');
    expectBytes(alive2Ok(5, 5), '79 00 00 03');
    expectBytes(alive2Ok(6, 5), '79 00 00 01');
    expectBytes(alive2Ok(0xffffffff, 5), '79 00 00 01'); // 4294967295 % 3 = 0
    for (let counter = 4; counter < 200; counter++) {
      const v = alive2Ok(counter, 5).readUInt16BE(2);
      expect(v).toBe((counter % 3) + 1);
    }
  });

  it('encodeAlive2Reply writes the creation it is given (already folded by creationFor): 3 -> 79 00 00 03', () => {
    expectBytes(encodeAlive2Reply(true, 3, 5), '79 00 00 03');
    expectBytes(encodeAlive2Reply(true, 1, 0), '79 00 00 01');
  });

  it('the form depends only on HighestVersion: 5 -> y, 6 -> v, 0 -> y, 65535 -> v', () => {
    expect(alive2Ok(100, 5)[0]).toBe(0x79);
    expect(alive2Ok(100, 5).length).toBe(4);
    expect(alive2Ok(100, 6)[0]).toBe(0x76);
    expect(alive2Ok(100, 6).length).toBe(6);
    expect(alive2Ok(100, 0)[0]).toBe(0x79);
    expect(alive2Ok(100, 0xffff)[0]).toBe(0x76);
    expect(alive2Ok(100, 0xffff).length).toBe(6);
  });

  it('the full unsigned 32-bit range is encoded (0xffffffff, and the minimum 4)', () => {
    expectBytes(alive2Ok(0xffffffff, 6), '76 00 ff ff ff ff');
    expectBytes(alive2Ok(4, 6), '76 00 00 00 00 04');
  });
});

describe('PORT2_RESP (spec §5.2 step 5)', () => {
  it('V8/A7: alpha -> 77 00 13 89 4d 00 00 06 00 05 00 05 alpha 00 00', () => {
    expectBytes(encodePort2Reply(node('alpha', 5001)), '77 00 13 89 4d 00 00 06 00 05 00 05 61 6c 70 68 61 00 00');
  });

  it('A8: beta, hidden type 72, high 5', () => {
    expectBytes(
      encodePort2Reply(node('beta', 5002, { nodeType: 72, highestVersion: 5 })),
      '77 00 13 8a 48 00 00 05 00 05 00 04 62 65 74 61 00 00',
    );
  });

  it('A20b: withextra, low 6, extra 41 42 43 00 00 with NULs echoed verbatim', () => {
    expectBytes(
      encodePort2Reply(node('withextra', 5003, { lowestVersion: 6, extra: hex('41 42 43 00 00') })),
      '77 00 13 8b 4d 00 00 06 00 06 00 09 77 69 74 68 65 78 74 72 61 00 05 41 42 43 00 00',
    );
  });

  it('G-I conn4: b on 43219 -> 77 00 a8 d3 4d 00 00 06 00 05 00 01 62 00 00', () => {
    expectBytes(encodePort2Reply(node('b', 43219)), '77 00 a8 d3 4d 00 00 06 00 05 00 01 62 00 00');
  });

  it('G-D: keep on 9999 -> 77 00 27 0f … 6b 65 65 70 00 00', () => {
    expectBytes(encodePort2Reply(node('keep', 9999)), '77 00 27 0f 4d 00 00 06 00 05 00 04 6b 65 65 70 00 00');
  });

  it('G-K P5: 254 × "c" on 7254 -> 268 bytes starting 77 00 1c 56 4d 00 00 06 00 05 00 fe 63', () => {
    const reply = encodePort2Reply(node(Buffer.alloc(254, 0x63), 0x1c56));
    expect(reply.length).toBe(268);
    expectBytes(reply, '77 00 1c 56 4d 00 00 06 00 05 00 fe 63×254 00 00');
  });

  it('G-K P6: 254 × U+1F600 (1016 bytes) -> 1030 bytes, Nlen 03 f8', () => {
    const reply = encodePort2Reply(node(hex('(f0 9f 98 80)×254'), 0x1c58));
    expect(reply.length).toBe(1030);
    expectBytes(reply, '77 00 1c 58 4d 00 00 06 00 05 03 f8 (f0 9f 98 80)×254 00 00');
  });

  it('an empty extra still carries its 2-byte length; a 1020-byte extra gets 03 fc', () => {
    const reply = encodePort2Reply(node('bigextra', 5012, { extra: Buffer.alloc(1020, 0x45) }));
    expectBytes(reply, '77 00 13 94 4d 00 00 06 00 05 00 08 62 69 67 65 78 74 72 61 03 fc 45×1020');
  });

  it('an empty name (Q3) is echoed with Nlen 0', () => {
    expectBytes(encodePort2Reply(node('', 5044, { lowestVersion: 6, extra: hex('45') })), '77 00 13 b4 4d 00 00 06 00 06 00 00 00 01 45');
  });

  it('every stored field is echoed verbatim (port 65535, type ff, protocol 7, versions 0xffff/0)', () => {
    expectBytes(
      encodePort2Reply(node('z', 65535, { nodeType: 0xff, protocol: 7, highestVersion: 0xffff, lowestVersion: 0 })),
      '77 00 ff ff ff 07 ff ff 00 00 00 01 7a 00 00',
    );
  });

  it('V9/A9: unknown name -> 77 01', () => {
    expectBytes(encodePort2Reply(undefined), '77 01');
  });
});

describe('NAMES reply (spec §5.3)', () => {
  it('A1/V1: empty registry -> only the configured port 00 00 95 e1', () => {
    expectBytes(encodeNamesReply(PORT_38369, []), '00 00 95 e1');
  });

  it('A15: beta then alpha (newest first as given)', () => {
    const nodes: NamedPort[] = [
      { name: Buffer.from('beta'), port: 5002 },
      { name: Buffer.from('alpha'), port: 5001 },
    ];
    expectBytes(
      encodeNamesReply(PORT_38369, nodes),
      '00 00 95 e1 6e 61 6d 65 20 62 65 74 61 20 61 74 20 70 6f 72 74 20 35 30 30 32 0a 6e 61 6d 65 20 61 6c 70 68 61 20 61 74 20 70 6f 72 74 20 35 30 30 31 0a',
    );
  });

  it('A21d: an empty name gives "name  at port 5044" (two spaces)', () => {
    const nodes: NamedPort[] = [
      { name: Buffer.alloc(0), port: 5044 },
      { name: Buffer.from('withextra'), port: 5003 },
      { name: Buffer.from('beta'), port: 5002 },
      { name: Buffer.from('alpha'), port: 5001 },
    ];
    expectBytes(
      encodeNamesReply(PORT_38369, nodes),
      '00 00 95 e1 6e 61 6d 65 20 20 61 74 20 70 6f 72 74 20 35 30 34 34 0a 6e 61 6d 65 20 77 69 74 68 65 78 74 72 61 20 61 74 20 70 6f 72 74 20 35 30 30 33 0a 6e 61 6d 65 20 62 65 74 61 20 61 74 20 70 6f 72 74 20 35 30 30 32 0a 6e 61 6d 65 20 61 6c 70 68 61 20 61 74 20 70 6f 72 74 20 35 30 30 31 0a',
    );
  });

  it('A31/A32: raw UTF-8 names (255 × U+1F600, 255 × "n") are written as their bytes', () => {
    const nodes: NamedPort[] = [
      { name: Buffer.from('trail2'), port: 5014 },
      { name: Buffer.from('bigextra'), port: 5012 },
      { name: EMOJI255, port: 5007 },
      { name: N255, port: 5005 },
      { name: Buffer.from('withextra'), port: 5003 },
      { name: Buffer.from('beta'), port: 5002 },
      { name: Buffer.from('alpha'), port: 5001 },
    ];
    expectBytes(
      encodeNamesReply(PORT_38369, nodes),
      '00 00 95 e1 6e 61 6d 65 20 74 72 61 69 6c 32 20 61 74 20 70 6f 72 74 20 35 30 31 34 0a 6e 61 6d 65 20 62 69 67 65 78 74 72 61 20 61 74 20 70 6f 72 74 20 35 30 31 32 0a 6e 61 6d 65 20 (f0 9f 98 80)×255 20 61 74 20 70 6f 72 74 20 35 30 30 37 0a 6e 61 6d 65 20 6e×255 20 61 74 20 70 6f 72 74 20 35 30 30 35 0a 6e 61 6d 65 20 77 69 74 68 65 78 74 72 61 20 61 74 20 70 6f 72 74 20 35 30 30 33 0a 6e 61 6d 65 20 62 65 74 61 20 61 74 20 70 6f 72 74 20 35 30 30 32 0a 6e 61 6d 65 20 61 6c 70 68 61 20 61 74 20 70 6f 72 74 20 35 30 30 31 0a',
    );
  });

  it('G-I conn3: port 38371 (00 00 95 e3), a on 42795, b on 43219', () => {
    expectBytes(
      encodeNamesReply(38371, [
        { name: Buffer.from('a'), port: 42795 },
        { name: Buffer.from('b'), port: 43219 },
      ]),
      '00 00 95 e3 6e 61 6d 65 20 61 20 61 74 20 70 6f 72 74 20 34 32 37 39 35 0a 6e 61 6d 65 20 62 20 61 74 20 70 6f 72 74 20 34 33 32 31 39 0a',
    );
  });

  it('G-F G1: the default port 4369 -> 00 00 11 11', () => {
    expectBytes(encodeNamesReply(4369, []), '00 00 11 11');
  });

  it('G-E F6: the port field is a full u32 (70000 -> 00 01 11 70)', () => {
    expectBytes(encodeNamesReply(70000, []), '00 01 11 70');
  });

  it('port numbers are written in decimal without padding (port 0 and 65535)', () => {
    expect(encodeNamesReply(1, [{ name: Buffer.from('x'), port: 0 }]).subarray(4).toString('latin1')).toBe('name x at port 0\n');
    expect(encodeNamesReply(1, [{ name: Buffer.from('x'), port: 65535 }]).subarray(4).toString('latin1')).toBe('name x at port 65535\n');
  });
});

describe('DUMP reply (spec §5.4)', () => {
  it('A2/V2: empty registry -> 00 00 95 e1', () => {
    expectBytes(encodeDumpReply(PORT_38369, [], []), '00 00 95 e1');
  });

  it('A16: two active records, five spaces after "name", each ending "\\n\\0"', () => {
    const active: DumpEntry[] = [
      { name: Buffer.from('beta'), port: 5002, fd: 6 },
      { name: Buffer.from('alpha'), port: 5001, fd: 5 },
    ];
    expectBytes(
      encodeDumpReply(PORT_38369, active, []),
      '00 00 95 e1 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 62 65 74 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 32 2c 20 66 64 20 3d 20 36 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 61 6c 70 68 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 31 2c 20 66 64 20 3d 20 35 0a 00',
    );
  });

  it('B7: active delta, then old/unused gamma with the space before "\\n"', () => {
    expectBytes(
      encodeDumpReply(PORT_38369, [{ name: Buffer.from('delta'), port: 5102, fd: 5 }], [{ name: Buffer.from('gamma'), port: 5101, fd: 6 }]),
      '00 00 95 e1 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 64 65 6c 74 61 3e 20 61 74 20 70 6f 72 74 20 35 31 30 32 2c 20 66 64 20 3d 20 35 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 67 61 6d 6d 61 3e 2c 20 70 6f 72 74 20 3d 20 35 31 30 31 2c 20 66 64 20 3d 20 36 20 0a 00',
    );
  });

  it('A37: 8 active records (incl. 255 × U+1F600 and 255 × "n") and 3 unused (incl. the empty name "<>")', () => {
    const active: DumpEntry[] = [
      { name: Buffer.from('cre'), port: 5016, fd: 12 },
      { name: Buffer.from('trail2'), port: 5014, fd: 9 },
      { name: Buffer.from('bigextra'), port: 5012, fd: 11 },
      { name: EMOJI255, port: 5007, fd: 10 },
      { name: N255, port: 5005, fd: 8 },
      { name: Buffer.from('withextra'), port: 5003, fd: 7 },
      { name: Buffer.from('beta'), port: 5002, fd: 6 },
      { name: Buffer.from('alpha'), port: 5001, fd: 5 },
    ];
    const unused: DumpEntry[] = [
      { name: Buffer.alloc(0), port: 5044, fd: 8 },
      { name: Buffer.from('trail'), port: 5014, fd: 9 },
      { name: Buffer.from('chatty'), port: 5015, fd: 12 },
    ];
    expectBytes(
      encodeDumpReply(PORT_38369, active, unused),
      '00 00 95 e1 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 63 72 65 3e 20 61 74 20 70 6f 72 74 20 35 30 31 36 2c 20 66 64 20 3d 20 31 32 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 74 72 61 69 6c 32 3e 20 61 74 20 70 6f 72 74 20 35 30 31 34 2c 20 66 64 20 3d 20 39 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 62 69 67 65 78 74 72 61 3e 20 61 74 20 70 6f 72 74 20 35 30 31 32 2c 20 66 64 20 3d 20 31 31 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c (f0 9f 98 80)×255 3e 20 61 74 20 70 6f 72 74 20 35 30 30 37 2c 20 66 64 20 3d 20 31 30 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 6e×255 3e 20 61 74 20 70 6f 72 74 20 35 30 30 35 2c 20 66 64 20 3d 20 38 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 77 69 74 68 65 78 74 72 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 33 2c 20 66 64 20 3d 20 37 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 62 65 74 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 32 2c 20 66 64 20 3d 20 36 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 61 6c 70 68 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 31 2c 20 66 64 20 3d 20 35 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 3e 2c 20 70 6f 72 74 20 3d 20 35 30 34 34 2c 20 66 64 20 3d 20 38 20 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 74 72 61 69 6c 3e 2c 20 70 6f 72 74 20 3d 20 35 30 31 34 2c 20 66 64 20 3d 20 39 20 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 63 68 61 74 74 79 3e 2c 20 70 6f 72 74 20 3d 20 35 30 31 35 2c 20 66 64 20 3d 20 31 32 20 0a 00',
    );
  });

  it('G-G: a lone old/unused record "<rem>, port = 5555, fd = 5 \\n\\0"', () => {
    expectBytes(
      encodeDumpReply(PORT_38369, [], [{ name: Buffer.from('rem'), port: 5555, fd: 5 }]),
      '00 00 95 e1 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 72 65 6d 3e 2c 20 70 6f 72 74 20 3d 20 35 35 35 35 2c 20 66 64 20 3d 20 35 20 0a 00',
    );
  });

  it('G-C: six unused records n2..n7, oldest first, as text', () => {
    const unused: DumpEntry[] = [2, 3, 4, 5, 6, 7].map((i) => ({ name: Buffer.from(`n${i}`), port: 6000 + i, fd: 5 }));
    expect(encodeDumpReply(PORT_38369, [], unused).toString('latin1')).toBe(
      '\x00\x00\x95\xe1old/unused name <n2>, port = 6002, fd = 5 \n\x00old/unused name <n3>, port = 6003, fd = 5 \n\x00old/unused name <n4>, port = 6004, fd = 5 \n\x00old/unused name <n5>, port = 6005, fd = 5 \n\x00old/unused name <n6>, port = 6006, fd = 5 \n\x00old/unused name <n7>, port = 6007, fd = 5 \n\x00',
    );
  });

  it('active records always come before unused ones, whatever the iteration', () => {
    const text = encodeDumpReply(1, [{ name: Buffer.from('a'), port: 1, fd: 5 }], [{ name: Buffer.from('u'), port: 2, fd: 6 }])
      .subarray(4)
      .toString('latin1');
    expect(text.indexOf('active')).toBeLessThan(text.indexOf('old/unused'));
    expect(text.split('\0')).toEqual(['active name     <a> at port 1, fd = 5\n', 'old/unused name <u>, port = 2, fd = 6 \n', '']);
  });

  it('epmd-ng provisional records (spec §18) come between active and old/unused, without an fd', () => {
    const text = encodeDumpReply(
      4369,
      [{ name: Buffer.from('a'), port: 1, fd: 5 }],
      [{ name: Buffer.from('u'), port: 3, fd: -1 }],
      [{ name: Buffer.from('p'), port: 2 }],
    )
      .subarray(4)
      .toString('latin1');
    expect(text).toBe('active name     <a> at port 1, fd = 5\n\0provisional name <p> at port 2\n\0old/unused name <u>, port = 3, fd = -1 \n\0');
  });

  it('without provisional entries the reply is exactly OTP\'s (the extra argument defaults to none)', () => {
    const a = encodeDumpReply(1, [{ name: Buffer.from('a'), port: 1, fd: 5 }], []);
    const b = encodeDumpReply(1, [{ name: Buffer.from('a'), port: 1, fd: 5 }], [], []);
    expect(a.equals(b)).toBe(true);
    expect(a.includes('provisional')).toBe(false);
  });

  it('accepts generators (Iterable) for active and unused', () => {
    function* gen(): Generator<DumpEntry> {
      yield { name: Buffer.from('g'), port: 7, fd: 9 };
    }
    expect(encodeDumpReply(1, gen(), gen()).subarray(4).toString('latin1')).toBe(
      'active name     <g> at port 7, fd = 9\n\0old/unused name <g>, port = 7, fd = 9 \n\0',
    );
  });
});

describe('KILL and STOP replies (spec §5.5, §5.6)', () => {
  it('V12 KILL accepted: "OK" = 4f 4b', () => expectBytes(KILL_OK, '4f 4b'));
  it('V11 KILL refused: "NO" = 4e 4f', () => expectBytes(KILL_REFUSED, '4e 4f'));
  it('V14/B2 STOP of a known name: "STOPPED" = 53 54 4f 50 50 45 44', () => expectBytes(STOP_DONE, '53 54 4f 50 50 45 44'));
  it('V15/B4 STOP of an unknown name: "NOEXIST" + "STOPPED", 14 bytes (Q1)', () => {
    expectBytes(STOP_UNKNOWN, '4e 4f 45 58 49 53 54 53 54 4f 50 50 45 44');
    expect(STOP_UNKNOWN.length).toBe(14);
  });
});
