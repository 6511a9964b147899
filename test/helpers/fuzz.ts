// Inputs for fuzzing a running daemon: random packets, and packets mutated from the golden
// vectors of epmd-golden.md. Everything is drawn from a seeded PRNG (helpers/prng.ts).
import fs from 'node:fs';
import { frame, hex } from './wire.js';

/** Request bytes (length header included) sent in the golden transcripts, by transcript id. */
export const GOLDEN_REQUESTS: Record<string, Buffer> = Object.fromEntries(
  Object.entries({
    'V1 NAMES': '00 01 6e',
    'V2 DUMP': '00 01 64',
    'V11 KILL': '00 01 6b',
    'A3 ALIVE2 alpha': '00 12 78 13 89 4d 00 00 06 00 05 00 05 61 6c 70 68 61 00 00',
    'A4 ALIVE2 beta high 5': '00 11 78 13 8a 48 00 00 05 00 05 00 04 62 65 74 61 00 00',
    'A7 PORT_PLEASE2 alpha': '00 06 7a 61 6c 70 68 61',
    'A9 PORT_PLEASE2 nope': '00 05 7a 6e 6f 70 65',
    'A10 trailing NUL': '00 07 7a 61 6c 70 68 61 00',
    'A11 NUL inside': '00 07 7a 61 6c 00 70 68 61',
    'A12 empty name': '00 01 7a',
    'A13 invalid UTF-8': '00 02 7a ff',
    'A14a 255 chars': '01 00 7a 61×255',
    'A14b 256 chars': '01 01 7a 61×256',
    'A18 STOP alpha': '00 06 73 61 6c 70 68 61',
    'A19 unknown code': '00 01 61',
    'A20 ALIVE2 with extra': '00 1b 78 13 8b 4d 00 00 06 00 06 00 09 77 69 74 68 65 78 74 72 61 00 05 41 42 43 00 00',
    'A21 empty name, no extra': '00 0d 78 13 8c 4d 00 00 06 00 06 00 00 00 00',
    'A21c empty name, extra 1': '00 0e 78 13 b4 4d 00 00 06 00 06 00 00 00 01 45',
    'A22b 256 × m': '01 0d 78 13 8e 4d 00 00 06 00 05 01 00 6d×256 00 00',
    'A22d 256 × é': '02 0d 78 13 90 4d 00 00 06 00 05 02 00 (c3 a9)×256 00 00',
    'A23a NUL in name': '00 14 78 13 91 4d 00 00 06 00 05 00 07 66 6f 6f 00 62 61 72 00 00',
    'A24 c3 28': '00 0f 78 13 92 4d 00 00 06 00 05 00 02 c3 28 00 00',
    'A24d surrogate': '00 10 78 13 92 4d 00 00 06 00 05 00 03 ed a0 80 00 00',
    'A25 name overrun': '00 10 78 13 95 4d 00 00 06 00 05 00 32 61 62 63 00 00',
    'A26 extra overrun': '00 12 78 13 95 4d 00 00 06 00 05 00 03 61 62 63 00 09 78 79',
    'A27 extra 1021': '04 0e 78 13 93 4d 00 00 06 00 05 00 04 62 69 67 78 03 fd 45×1021',
    'A29 junk after extra': '00 1b 78 13 96 4d 00 00 06 00 05 00 06 74 72 61 69 6c 32 00 00 4a 55 4e 4b 4a 55 4e 4b',
    'A30 length 0': '00 00',
    'A32 length 3057': '0b f1 6e 50×3056',
    'A32b length 3058': '0b f2 6e 50×3057',
    'A34 pipelined': '00 01 6e 00 01 6e',
    'A34b stray byte': '00 06 7a 61 6c 70 68 61 21',
  }).map(([id, text]) => [id, hex(text)]),
);

const CODES = [120, 122, 110, 100, 107, 115, 97, 0];

const int = (rand: () => number, below: number) => Math.floor(rand() * below);
const randomBytes = (rand: () => number, length: number) => Buffer.from(Array.from({ length }, () => int(rand, 256)));

/** Random noise, or a well-framed random payload behind a real request code (so decoding is reached). */
export function garbage(rand: () => number): Buffer {
  const kind = rand();
  const length = int(rand, 64);
  const bytes = randomBytes(rand, length);
  if (kind < 0.3) return bytes; // raw noise, any length field
  bytes[0] = CODES[int(rand, CODES.length)]!;
  return frame(length === 0 ? Buffer.from([CODES[0]!]) : bytes);
}

/** One to three random edits of a golden request; `reframe` fixes the length field afterwards. */
export function mutate(rand: () => number, seeds: readonly Buffer[]): Buffer {
  let b = Buffer.from(seeds[int(rand, seeds.length)]!);
  for (let edits = 1 + int(rand, 3); edits > 0; edits--) {
    const at = int(rand, b.length + 1);
    switch (int(rand, 9)) {
      case 0: // flip a bit
        if (b.length) b[Math.min(at, b.length - 1)]! ^= 1 << int(rand, 8);
        break;
      case 1: // overwrite a byte, often with a boundary value
        if (b.length) b[Math.min(at, b.length - 1)] = [0, 0xff, 0x7f, 0x80, int(rand, 256)][int(rand, 5)]!;
        break;
      case 2: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), randomBytes(rand, 1 + int(rand, 16)), b.subarray(at)]);
        break;
      case 3: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(rand, 8)))]);
        break;
      case 4: // truncate
        b = b.subarray(0, at);
        break;
      case 5: // append another golden request (pipelining)
        b = Buffer.concat([b, seeds[int(rand, seeds.length)]!]);
        break;
      case 6: // repeat a region
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + int(rand, 32)), b.subarray(at)]);
        break;
      case 7: // an inner length field (ALIVE2's Nlen/Elen) or the frame length set to something else
        if (b.length >= 2) b.writeUInt16BE([0, 1, 0xffff, 3057, 3058, int(rand, 0x10000)][int(rand, 6)]!, Math.min(int(rand, 14), b.length - 2));
        break;
      case 8: // the frame length made to match the bytes again, so the payload is what gets judged
        if (b.length >= 2) b.writeUInt16BE(Math.min(0xffff, b.length - 2), 0);
        break;
    }
  }
  return b;
}

/** A process's resident set size (VmRSS, kB) and number of open file descriptors, from /proc. */
export function processFigures(pid: number): { rssKb: number; fds: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rssKb: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}
