// Feeding byte streams to the FrameReader the way the server does, and a model of OTP's reader to
// compare it with: shared by the seeded frame-reader tests and the property-based codec tests.
import { FrameReader, type FrameResult } from '../../src/protocol/frame-reader.js';
import { MAX_FRAME_PAYLOAD, OTP_FIRST_READ } from '../../src/protocol/constants.js';

/** Cuts `stream` into chunks of 1..maxChunk bytes. */
export function randomSplit(stream: Buffer, rand: () => number, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < stream.length) {
    const size = 1 + Math.floor(rand() * Math.min(maxChunk, stream.length - at));
    chunks.push(stream.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** Cuts `stream` at the given offsets (any order, duplicates and out-of-range values ignored). */
export function splitAt(stream: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < stream.length))].sort((a, b) => a - b);
  return [0, ...points].map((from, i) => stream.subarray(from, points[i] ?? stream.length));
}

export function bytewise(stream: Buffer): Buffer[] {
  return Array.from(stream, (b) => Buffer.from([b]));
}

/**
 * Feeds chunks until the reader gives something other than `incomplete` (the server stops reading
 * there) and returns that result; every earlier push must have been `incomplete`.
 */
export function feed(chunks: Buffer[]): FrameResult {
  const reader = new FrameReader();
  for (const chunk of chunks) {
    const result = reader.push(Buffer.from(chunk)); // copy: the reader must not rely on the caller's buffer
    if (result.kind !== 'incomplete') return result;
  }
  return { kind: 'incomplete' };
}

/**
 * Model of OTP's reader (epmd_srv.c do_read) for a given chunking: before the length is known it
 * reads at most INBUF_SIZE-1 = 3059 bytes; the read that reveals the length is checked for surplus.
 */
export function otpReaderModel(stream: Buffer, chunks: Buffer[]): FrameResult {
  let total = 0;
  let length = -1;
  for (const chunk of chunks) {
    total += chunk.length;
    if (length < 0) {
      if (total < 2) continue;
      length = stream.readUInt16BE(0);
      if (length === 0 || length > MAX_FRAME_PAYLOAD) return { kind: 'bad-length', length };
      const seen = Math.min(total, OTP_FIRST_READ);
      if (seen > 2 + length) return { kind: 'surplus-in-first-read', got: seen - 2, expected: length };
    }
    if (total >= 2 + length) return { kind: 'frame', payload: stream.subarray(2, 2 + length), surplus: total - 2 - length };
  }
  return { kind: 'incomplete' };
}
