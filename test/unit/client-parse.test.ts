// parseDump: the client's --json parser of DUMP replies (spec §5.4 format; golden A2, A16, A37, B7, G-C).
// (parseNames was folded into parseDump: `names --json` now asks DUMP so it can mark provisional entries.)
import { describe, expect, it } from 'vitest';
import { hex } from '../helpers/wire.js';
import { parseDump } from '../../src/cli/client.js';
import { encodeDumpReply } from '../../src/protocol/replies.js';


const EMOJI = '\u{1F600}';

describe('parseDump (spec §5.4)', () => {
  it('A2: an empty registry', () => {
    expect(parseDump(hex('00 00 95 e1'))).toEqual({ port: 38369, active: [], unused: [] });
  });

  it('A16: two active records with fds', () => {
    const reply = hex(
      '00 00 95 e1 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 62 65 74 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 32 2c 20 66 64 20 3d 20 36 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 61 6c 70 68 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 31 2c 20 66 64 20 3d 20 35 0a 00',
    );
    expect(parseDump(reply)).toEqual({
      port: 38369,
      active: [
        { name: 'beta', port: 5002, fd: 6, provisional: false },
        { name: 'alpha', port: 5001, fd: 5, provisional: false },
      ],
      unused: [],
    });
  });

  it('B7: one active and one old/unused record', () => {
    const reply = Buffer.from(
      '\x00\x00\x95\xe1active name     <delta> at port 5102, fd = 5\n\x00old/unused name <gamma>, port = 5101, fd = 6 \n\x00',
      'latin1',
    );
    expect(parseDump(reply)).toEqual({
      port: 38369,
      active: [{ name: 'delta', port: 5102, fd: 5, provisional: false }],
      unused: [{ name: 'gamma', port: 5101, fd: 6 }],
    });
  });

  it('A37: 8 active (incl. 255 × U+1F600) and 3 unused records (incl. the empty name "<>")', () => {
    const reply = hex(
      '00 00 95 e1 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 63 72 65 3e 20 61 74 20 70 6f 72 74 20 35 30 31 36 2c 20 66 64 20 3d 20 31 32 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 74 72 61 69 6c 32 3e 20 61 74 20 70 6f 72 74 20 35 30 31 34 2c 20 66 64 20 3d 20 39 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 62 69 67 65 78 74 72 61 3e 20 61 74 20 70 6f 72 74 20 35 30 31 32 2c 20 66 64 20 3d 20 31 31 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c (f0 9f 98 80)×255 3e 20 61 74 20 70 6f 72 74 20 35 30 30 37 2c 20 66 64 20 3d 20 31 30 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 6e×255 3e 20 61 74 20 70 6f 72 74 20 35 30 30 35 2c 20 66 64 20 3d 20 38 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 77 69 74 68 65 78 74 72 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 33 2c 20 66 64 20 3d 20 37 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 62 65 74 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 32 2c 20 66 64 20 3d 20 36 0a 00 61 63 74 69 76 65 20 6e 61 6d 65 20 20 20 20 20 3c 61 6c 70 68 61 3e 20 61 74 20 70 6f 72 74 20 35 30 30 31 2c 20 66 64 20 3d 20 35 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 3e 2c 20 70 6f 72 74 20 3d 20 35 30 34 34 2c 20 66 64 20 3d 20 38 20 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 74 72 61 69 6c 3e 2c 20 70 6f 72 74 20 3d 20 35 30 31 34 2c 20 66 64 20 3d 20 39 20 0a 00 6f 6c 64 2f 75 6e 75 73 65 64 20 6e 61 6d 65 20 3c 63 68 61 74 74 79 3e 2c 20 70 6f 72 74 20 3d 20 35 30 31 35 2c 20 66 64 20 3d 20 31 32 20 0a 00',
    );
    const d = parseDump(reply);
    expect(d.port).toBe(38369);
    expect(d.active.map((a) => [a.name.length > 20 ? `${[...a.name][0]}×${[...a.name].length}` : a.name, a.port, a.fd])).toEqual([
      ['cre', 5016, 12],
      ['trail2', 5014, 9],
      ['bigextra', 5012, 11],
      [`${EMOJI}×255`, 5007, 10],
      ['n×255', 5005, 8],
      ['withextra', 5003, 7],
      ['beta', 5002, 6],
      ['alpha', 5001, 5],
    ]);
    expect(d.active[3]!.name).toBe(EMOJI.repeat(255));
    expect(d.unused).toEqual([
      { name: '', port: 5044, fd: 8 },
      { name: 'trail', port: 5014, fd: 9 },
      { name: 'chatty', port: 5015, fd: 12 },
    ]);
  });

  it('G-C: six unused records only', () => {
    const reply = Buffer.from(
      '\x00\x00\x95\xe1old/unused name <n2>, port = 6002, fd = 5 \n\x00old/unused name <n3>, port = 6003, fd = 5 \n\x00old/unused name <n4>, port = 6004, fd = 5 \n\x00old/unused name <n5>, port = 6005, fd = 5 \n\x00old/unused name <n6>, port = 6006, fd = 5 \n\x00old/unused name <n7>, port = 6007, fd = 5 \n\x00',
      'latin1',
    );
    const d = parseDump(reply);
    expect(d.active).toEqual([]);
    expect(d.unused.map((u) => u.name)).toEqual(['n2', 'n3', 'n4', 'n5', 'n6', 'n7']);
    expect(d.unused.map((u) => u.port)).toEqual([6002, 6003, 6004, 6005, 6006, 6007]);
  });

  it('names containing ">" and "<" are kept whole', () => {
    const reply = encodeDumpReply(1, [{ name: Buffer.from('a>b<c'), port: 2, fd: 3 }], [{ name: Buffer.from('x> at port 9'), port: 4, fd: 5 }]);
    expect(parseDump(reply)).toEqual({
      port: 1,
      active: [{ name: 'a>b<c', port: 2, fd: 3, provisional: false }],
      unused: [{ name: 'x> at port 9', port: 4, fd: 5 }],
    });
  });

  it('an active record is not mistaken for an unused one (no trailing space) and vice versa', () => {
    const reply = Buffer.concat([
      hex('00 00 00 01'),
      Buffer.from('active name     <a> at port 1, fd = 5 \n\0'), // stray space: not a valid active record
      Buffer.from('old/unused name <b>, port = 2, fd = 6\n\0'), // missing space: not a valid unused record
      Buffer.from('active name <c> at port 3, fd = 7\n\0'), // one space instead of five
    ]);
    expect(parseDump(reply)).toEqual({ port: 1, active: [], unused: [] });
  });

  it('round-trips what encodeDumpReply writes', () => {
    const active = [
      { name: 'x', port: 1, fd: 5 },
      { name: 'ü', port: 65535, fd: 1023 },
    ];
    const unused = [{ name: '', port: 7, fd: 12 }];
    const enc = (l: typeof active) => l.map((e) => ({ ...e, name: Buffer.from(e.name) }));
    expect(parseDump(encodeDumpReply(4369, enc(active), enc(unused)))).toEqual({
      port: 4369,
      active: active.map((a) => ({ ...a, provisional: false })),
      unused,
    });
  });

  it('epmd-ng provisional records (spec §18) are listed with the active ones, fd null, provisional true', () => {
    const reply = encodeDumpReply(
      4369,
      [{ name: Buffer.from('live'), port: 1, fd: 5 }],
      [{ name: Buffer.from('gone'), port: 3, fd: -1 }],
      [{ name: Buffer.from('restored'), port: 2 }],
    );
    expect(parseDump(reply)).toEqual({
      port: 4369,
      active: [
        { name: 'live', port: 1, fd: 5, provisional: false },
        { name: 'restored', port: 2, fd: null, provisional: true },
      ],
      unused: [{ name: 'gone', port: 3, fd: -1 }],
    });
  });
});
