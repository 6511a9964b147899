import { MAX_FRAME_PAYLOAD, OTP_FIRST_READ } from './constants.js';

/**
 * Outcome of feeding bytes to a FrameReader.
 * - incomplete: wait for more bytes;
 * - frame: one request payload; `surplus` counts bytes that arrived after it in a later read
 *   (OTP never reads them for a plain request, but for a registration they count as new data);
 * - bad-length: the length field was 0 or above MAX_FRAME_PAYLOAD;
 * - surplus-in-first-read: the read that revealed the length already held more than the frame,
 *   e.g. two pipelined requests; OTP closes such connections without a reply (spec §4 rule 4).
 */
export type FrameResult =
  | { kind: 'incomplete' }
  | { kind: 'frame'; payload: Buffer; surplus: number }
  | { kind: 'bad-length'; length: number }
  | { kind: 'surplus-in-first-read'; got: number; expected: number };

const INCOMPLETE: FrameResult = { kind: 'incomplete' };

/**
 * The payload, without a copy, when `chunk` (a connection's first read) is exactly one frame of a
 * valid length: how nearly every request arrives. Anything else goes through a FrameReader, which
 * gives such a chunk the same outcome the slow way.
 */
export function wholeFrame(chunk: Buffer): Buffer | undefined {
  if (chunk.length < 3) return undefined;
  const length = chunk.readUInt16BE(0);
  return length <= MAX_FRAME_PAYLOAD && chunk.length === 2 + length ? chunk.subarray(2) : undefined;
}

/**
 * Incremental reader for the one length-prefixed request a connection carries. Copes with any
 * chunking; applies OTP's framing rules so that the same byte stream gets the same outcome as
 * with OTP's epmd however the kernel happened to split it.
 */
export class FrameReader {
  /** Bytes received before the length is known (fewer than 2, unless one read brought more). */
  private head: Buffer[] = [];
  /**
   * The header and payload, allocated once the length is known; later reads are copied into it and
   * not kept, so a client trickling one byte per read holds one buffer of its frame's size rather
   * than a buffer per read (about 0.5 kB each).
   */
  private frame: Buffer | undefined;
  private buffered = 0;
  private length = -1;

  /** Bytes received so far (for "partial packet" diagnostics). */
  get received(): number {
    return this.buffered;
  }

  push(chunk: Buffer): FrameResult {
    const before = this.buffered;
    this.buffered += chunk.length;
    if (this.length < 0) {
      this.head.push(chunk);
      if (this.buffered < 2) return INCOMPLETE;
      const head = this.head.length === 1 ? chunk : Buffer.concat(this.head, this.buffered);
      this.head = [];
      const length = head.readUInt16BE(0);
      if (length === 0 || length > MAX_FRAME_PAYLOAD) return { kind: 'bad-length', length };
      // OTP's first read takes at most OTP_FIRST_READ bytes; only a surplus inside it is seen.
      const firstRead = Math.min(this.buffered, OTP_FIRST_READ);
      if (firstRead > 2 + length) return { kind: 'surplus-in-first-read', got: firstRead - 2, expected: length };
      this.length = length;
      this.frame = Buffer.alloc(2 + length);
      head.copy(this.frame, 0, 0, Math.min(head.length, 2 + length));
    } else if (before < 2 + this.length) {
      chunk.copy(this.frame!, before, 0, Math.min(chunk.length, 2 + this.length - before));
    }
    if (this.buffered < 2 + this.length) return INCOMPLETE;
    return { kind: 'frame', payload: this.frame!.subarray(2), surplus: this.buffered - 2 - this.length };
  }
}
