// Whole-file access to a memfd (the registry state kept in systemd's fd store) with plain fs calls.
// Always positional (pwrite/pread at offset 0): the file offset is shared with every dup of the fd,
// including the one systemd holds, so relying on it would break after a restart.
import fs from 'node:fs';
import { loadNative } from './native.js';

/** A new close-on-exec memfd; throws if the addon is missing. */
export function createMemfd(name: string): number {
  return loadNative().memfdCreate(name);
}

/** Replaces the contents. Write first, then cut to size, so a reader never sees an empty file mid-update. */
export function writeMemfd(fd: number, data: string | Uint8Array): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off, off);
  fs.ftruncateSync(fd, buf.length);
}

export function readMemfd(fd: number): Buffer {
  const size = fs.fstatSync(fd).size;
  const buf = Buffer.alloc(size);
  let off = 0;
  while (off < size) {
    const n = fs.readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}
