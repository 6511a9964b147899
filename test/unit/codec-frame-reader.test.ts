// FrameReader: OTP's incremental framing (spec §4), checked without sockets.
import { describe, expect, it } from 'vitest';
import { prng } from '../helpers/prng.js';
import { bytewise, feed, otpReaderModel, randomSplit } from '../helpers/frames.js';
import { frame, hex } from '../helpers/wire.js';
import { FrameReader, wholeFrame } from '../../src/protocol/frame-reader.js';

const NAMES = hex('00 01 6e');
const PORT2_ALPHA = hex('00 06 7a 61 6c 70 68 61'); // V8
const ALIVE2_A3 = hex('00 12 78 13 89 4d 00 00 06 00 05 00 05 61 6c 70 68 61 00 00');
const ALIVE2_A29 = hex('00 1b 78 13 96 4d 00 00 06 00 05 00 06 74 72 61 69 6c 32 00 00 4a 55 4e 4b 4a 55 4e 4b');
const NAMES_3057 = hex('0b f1 6e 50×3056'); // A32
const NAMES_3056 = frame(Buffer.concat([Buffer.from([0x6e]), Buffer.alloc(3055, 0x50)]));

const SINGLE_FRAMES: [string, Buffer][] = [
  ['V1 NAMES 00 01 6e', NAMES],
  ['V8 PORT_PLEASE2 alpha', PORT2_ALPHA],
  ['A3 ALIVE2 alpha', ALIVE2_A3],
  ['A29 ALIVE2 with junk after Extra', ALIVE2_A29],
  ['A32 length 3057 (largest accepted)', NAMES_3057],
  ['length 3056', NAMES_3056],
  ['payload of one zero byte', hex('00 01 00')],
];

describe('FrameReader: one complete frame gives the same outcome under every chunking (spec §4 rules 1, 5)', () => {
  for (const [label, stream] of SINGLE_FRAMES) {
    const expected = { kind: 'frame', payload: stream.subarray(2), surplus: 0 };

    it(`${label}: all at once`, () => {
      expect(feed([stream])).toEqual(expected);
    });

    it(`${label}: byte by byte`, () => {
      expect(feed(bytewise(stream))).toEqual(expected);
    });

    it(`${label}: 300 seeded random splits`, () => {
      const rand = prng(0x5eed + stream.length);
      for (let round = 0; round < 300; round++) {
        const chunks = randomSplit(stream, rand, round % 2 === 0 ? 4 : stream.length);
        expect(feed(chunks), `split ${chunks.map((c) => c.length).join('+')}`).toEqual(expected);
      }
    });

    it(`${label}: the header split after its first byte`, () => {
      expect(feed([stream.subarray(0, 1), stream.subarray(1)])).toEqual(expected);
    });
  }

  it('the payload returned is exactly the bytes after the header, not a view into a reused chunk (A3)', () => {
    const reader = new FrameReader();
    const chunk = Buffer.from(ALIVE2_A3);
    const result = reader.push(chunk.subarray(0, 5));
    expect(result.kind).toBe('incomplete');
    const done = reader.push(chunk.subarray(5));
    expect(done.kind).toBe('frame');
    if (done.kind !== 'frame') return;
    expect(done.payload.length).toBe(0x12);
    expect(done.payload[0]).toBe(0x78);
    expect(done.payload.equals(ALIVE2_A3.subarray(2))).toBe(true);
  });
});

describe('FrameReader: partial frames stay incomplete (spec §4 rule 6)', () => {
  const partials: [string, Buffer][] = [
    ['nothing yet (1 byte)', hex('00')],
    ['header only, length 3', hex('00 03')],
    ['header of 3057 only', hex('0b f1')],
    ['G-D partial: len=100 + 16 bytes', Buffer.concat([hex('00 64'), Buffer.alloc(16, 0x41)])],
    ['A3 missing its last byte', ALIVE2_A3.subarray(0, ALIVE2_A3.length - 1)],
    ['A32 missing its last byte', NAMES_3057.subarray(0, NAMES_3057.length - 1)],
  ];
  for (const [label, stream] of partials) {
    it(`${label}: incomplete however it is split, and received counts every byte`, () => {
      const rand = prng(7 + stream.length);
      const splits = [[stream], bytewise(stream), ...Array.from({ length: 50 }, () => randomSplit(stream, rand, 8))];
      for (const chunks of splits) {
        const reader = new FrameReader();
        for (const chunk of chunks) expect(reader.push(chunk)).toEqual({ kind: 'incomplete' });
        expect(reader.received).toBe(stream.length);
      }
    });
  }

  it('an empty stream is incomplete and has received 0 bytes', () => {
    const reader = new FrameReader();
    expect(reader.received).toBe(0);
  });
});

describe('FrameReader: invalid length field (spec §4 rules 2 and 3)', () => {
  const cases: [string, Buffer, number][] = [
    ['V16/A30 length 0', hex('00 00'), 0],
    ['A30b length 0 followed by 8 zero bytes', hex('00×10'), 0],
    ['A32b length 3058 with its 3058 bytes', hex('0b f2 6e 50×3057'), 3058],
    ['length 3058, header only', hex('0b f2'), 3058],
    ['A32c length 63000', Buffer.concat([hex('f6 18'), Buffer.alloc(3000, 0x7a)]), 63000],
    ['V17 length 65535', hex('ff ff 6e'), 65535],
    ['length 3059', hex('0b f3'), 3059],
    ['length 3072 (0c 00)', hex('0c 00 6e'), 3072],
  ];
  for (const [label, stream, length] of cases) {
    it(`${label} -> bad-length ${length} under every chunking`, () => {
      const rand = prng(length + 11);
      const splits = [[stream], bytewise(stream), ...Array.from({ length: 40 }, () => randomSplit(stream, rand, 5))];
      for (const chunks of splits) expect(feed(chunks)).toEqual({ kind: 'bad-length', length });
    });
  }

  it('bad-length is reported as soon as the 2 header bytes are in, before any payload', () => {
    const reader = new FrameReader();
    expect(reader.push(hex('0b'))).toEqual({ kind: 'incomplete' });
    expect(reader.push(hex('f2'))).toEqual({ kind: 'bad-length', length: 3058 });
  });

  it('an invalid length wins over surplus in the same read (A30b logs "invalid packet size (0)")', () => {
    expect(feed([hex('00 00 00 01 6e')])).toEqual({ kind: 'bad-length', length: 0 });
  });
});

describe('FrameReader: surplus bytes (spec §4 rule 4, Q4)', () => {
  it('V18/A34: two NAMES_REQ pipelined in one write -> surplus-in-first-read, got 4 expected 1', () => {
    expect(feed([hex('00 01 6e 00 01 6e')])).toEqual({ kind: 'surplus-in-first-read', got: 4, expected: 1 });
  });

  it('A34b: PORT_PLEASE2 alpha plus a stray byte in the same write -> got 7 expected 6', () => {
    expect(feed([hex('00 06 7a 61 6c 70 68 61 21')])).toEqual({ kind: 'surplus-in-first-read', got: 7, expected: 6 });
  });

  it('surplus in the read that completes the header (header split 1+rest) is still "first read"', () => {
    expect(feed([hex('00'), hex('01 6e 6e')])).toEqual({ kind: 'surplus-in-first-read', got: 2, expected: 1 });
  });

  it('surplus arriving in a later chunk: the frame is delivered and the surplus counted', () => {
    expect(feed([hex('00 06 7a 61'), hex('6c 70 68 61 21')])).toEqual({
      kind: 'frame',
      payload: hex('7a 61 6c 70 68 61'),
      surplus: 1,
    });
  });

  it('surplus after a frame that completed exactly: the frame comes first, the server stops reading', () => {
    const reader = new FrameReader();
    expect(reader.push(NAMES)).toEqual({ kind: 'frame', payload: hex('6e'), surplus: 0 });
  });

  it('a second complete request in a later chunk is counted as surplus, not parsed', () => {
    const result = feed([hex('00 01'), Buffer.concat([hex('6e'), NAMES])]);
    expect(result).toEqual({ kind: 'frame', payload: hex('6e'), surplus: 3 });
  });

  it('A35-style: a registration frame followed later by one more byte', () => {
    const result = feed([ALIVE2_A3.subarray(0, 10), Buffer.concat([ALIVE2_A3.subarray(10), hex('ff')])]);
    expect(result).toEqual({ kind: 'frame', payload: ALIVE2_A3.subarray(2), surplus: 1 });
  });

  it('matches the model of OTP do_read for 400 seeded random chunkings of frames followed by junk', () => {
    const rand = prng(0xc0ffee);
    const streams = [
      Buffer.concat([NAMES, NAMES]),
      Buffer.concat([PORT2_ALPHA, hex('21')]),
      Buffer.concat([ALIVE2_A3, hex('4a 55 4e 4b')]),
      Buffer.concat([NAMES_3056, hex('00 01 6e')]),
      Buffer.concat([hex('00 00'), hex('00×8')]),
    ];
    let sawSurplusFirst = 0;
    let sawLaterSurplus = 0;
    for (let round = 0; round < 400; round++) {
      const stream = streams[round % streams.length]!;
      const chunks = randomSplit(stream, rand, round % 3 === 0 ? stream.length : 6);
      const expected = otpReaderModel(stream, chunks);
      expect(feed(chunks), `split ${chunks.map((c) => c.length).join('+')}`).toEqual(expected);
      if (expected.kind === 'surplus-in-first-read') sawSurplusFirst++;
      if (expected.kind === 'frame' && expected.surplus > 0) sawLaterSurplus++;
    }
    // The random splits must have exercised both branches, or this test proves nothing.
    expect(sawSurplusFirst).toBeGreaterThan(10);
    expect(sawLaterSurplus).toBeGreaterThan(10);
  });

  it('length 3057 plus surplus in one read: OTP reads at most 3059 bytes before it knows the length, so it sees exactly the frame and answers (spec §4 rule 4)', () => {
    // OTP: read(fd, buf + got, (want ? want : INBUF_SIZE - 1) - got) with INBUF_SIZE = 3060.
    const stream = Buffer.concat([NAMES_3057, hex('21')]);
    const result = feed([stream]);
    expect(result.kind).toBe('frame');
    if (result.kind !== 'frame') return;
    expect(result.surplus).toBe(1);
    expect(result.payload.equals(NAMES_3057.subarray(2))).toBe(true);
  });

  it('length 3056 plus one surplus byte in one read is still surplus-in-first-read (3059 bytes fit the first read)', () => {
    expect(feed([Buffer.concat([NAMES_3056, hex('21')])])).toEqual({ kind: 'surplus-in-first-read', got: 3057, expected: 3056 });
  });
});

describe('FrameReader: received counter', () => {
  it('counts all bytes pushed, across chunks', () => {
    const reader = new FrameReader();
    reader.push(hex('00'));
    expect(reader.received).toBe(1);
    reader.push(hex('05 7a'));
    expect(reader.received).toBe(3);
    reader.push(hex('6e 6f'));
    expect(reader.received).toBe(5);
  });
});

describe('wholeFrame: the in-place fast path for a first read holding exactly one frame', () => {
  it('agrees with a FrameReader on every first read: a payload exactly when the reader gives a frame with no surplus', () => {
    const rand = prng(1010);
    const chunks: Buffer[] = [...SINGLE_FRAMES.map(([, s]) => s), hex(''), hex('00'), hex('00 00'), hex('00 00 6e'), hex('0b f2 6e'), hex('00 01 6e 6e')];
    for (let i = 0; i < 3000; i++) {
      const length = Math.floor(rand() * 40);
      const chunk = Buffer.from(Array.from({ length }, () => Math.floor(rand() * 256)));
      // Mostly well-formed length fields, so that frames are common: exact, short and long.
      if (length >= 2 && rand() < 0.7) chunk.writeUInt16BE(Math.max(0, length - 2 + Math.floor(rand() * 3) - 1), 0);
      chunks.push(chunk);
    }
    chunks.push(NAMES_3057, Buffer.concat([NAMES_3057, hex('00')]), frame(Buffer.alloc(3058, 0x6e)));
    let frames = 0;
    for (const chunk of chunks) {
      const slow = new FrameReader().push(chunk);
      const fast = wholeFrame(chunk);
      if (slow.kind === 'frame' && slow.surplus === 0) {
        frames++;
        expect(fast?.equals(slow.payload), chunk.toString('hex')).toBe(true);
      } else {
        expect(fast, chunk.toString('hex')).toBeUndefined();
      }
    }
    expect(frames).toBeGreaterThan(500);
  });

  it('the payload is a view of the chunk, not a copy', () => {
    const payload = wholeFrame(PORT2_ALPHA)!;
    expect(payload.buffer).toBe(PORT2_ALPHA.buffer);
    expect(payload.byteOffset).toBe(PORT2_ALPHA.byteOffset + 2);
  });
});
