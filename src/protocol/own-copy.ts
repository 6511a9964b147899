/**
 * Bytes at most this large (an ALIVE2 frame never is larger) hold little but the request they
 * came in: keeping a view of them keeps nothing else alive.
 */
const SMALL_BACKING = 1024;

/**
 * `bytes` fit to be kept for as long as a node lives: the view itself when the memory behind it
 * is small (the frame a request was read into), else a copy in memory of its own. Buffer.from()
 * and Buffer.concat() put small buffers in slices of Node's shared 8 kB pool, and one live slice
 * keeps its whole slab: a registration made between registrations that come and go would hold a
 * slab of its own (about 8 kB instead of 2 to 3).
 */
export function keepable(bytes: Buffer): Buffer {
  return bytes.buffer.byteLength <= SMALL_BACKING ? bytes : ownCopy(bytes);
}

/** A copy of `bytes` in memory of its own. */
function ownCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  copy.set(bytes);
  return copy;
}
