import { isUtf8 } from 'node:buffer';

/**
 * Strict UTF-8 check as OTP's epmd applies it to node names: no overlong forms, no surrogates,
 * nothing above U+10FFFF, no stray or truncated sequences. Node's isUtf8 implements exactly the
 * WHATWG definition of well-formed UTF-8, which is this set of rules.
 */
export function isStrictUtf8(bytes: Uint8Array): boolean {
  return isUtf8(bytes);
}

/**
 * Whether every byte is ASCII other than NUL: such a name is valid UTF-8 with one code point per
 * byte. Node names nearly always are, and this loop is cheaper than the checks it stands for.
 */
export function isPlainAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte === 0 || byte > 0x7f) return false;
  }
  return true;
}

/** Number of code points in well-formed UTF-8: every byte that is not a continuation byte starts one. */
export function countCodePoints(bytes: Uint8Array): number {
  let count = 0;
  for (let i = 0; i < bytes.length; i++) if ((bytes[i]! & 0xc0) !== 0x80) count++;
  return count;
}
