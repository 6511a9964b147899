/**
 * Keeps registry snapshots in <dir>/registry.json.
 *
 * Writes are atomic (temp file, fsync, rename, fsync of the directory), so after a crash or power
 * loss the file is either the previous snapshot or the new one, never a mix. Reading is defensive:
 * whatever is found that cannot be used is renamed aside, reported once, and the daemon starts
 * empty — a bad snapshot must never stop epmd from starting.
 *
 * All calls are synchronous: a snapshot is at most a few megabytes, written a few times a second at
 * most, and synchronous code has no interleavings to get wrong (a save cannot race a flush).
 */
import fs from 'node:fs';
import path from 'node:path';
import { RateLimiter } from '../log/rate-limit.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from './snapshot.js';

export const SNAPSHOT_FILE = 'registry.json';
/**
 * Temp files are `registry.json.tmp-<pid>-<start time>-<n>`, unique without a random source (which
 * would load node:crypto, 1 MB of RSS, at start-up); 'wx' refuses a name that exists all the same.
 * load() removes any a crash left behind.
 */
const TEMP_PREFIX = `${SNAPSHOT_FILE}.tmp-`;
const TEMP_STEM = `${TEMP_PREFIX}${process.pid}-${Date.now().toString(36)}-`;
let tempCount = 0;
/** Far above any real snapshot; keeps a huge stray file from exhausting memory at start-up. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** The subset of the daemon's Logger this module uses. */
export interface SnapshotLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SnapshotStoreOptions {
  dir: string;
  log: SnapshotLog;
  /** Quiet time after the last change before writing (default 250 ms). */
  debounceMs?: number;
  /** Longest a change may stay unsaved while changes keep coming (default 1000 ms). */
  maxDelayMs?: number;
  /** After a failed write, how long to wait before trying again (default 5000 ms). */
  retryMs?: number;
}

export type LoadResult =
  | { kind: 'none' }
  | { kind: 'loaded'; snapshot: Snapshot }
  | { kind: 'moved-aside'; reason: string; movedTo: string | null };

/** The kernel's id for the current boot, or '' when it cannot be read (not Linux, no /proc). */
export function readBootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function errorCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** UTC time compact enough for a file name and sortable: 20250131T235959.123Z. */
function fileTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '');
}

export class SnapshotStore {
  readonly file: string;
  /** Message of the last failed write, or null once a write has succeeded again. */
  lastError: string | null = null;
  /** Successful writes since construction. */
  writeCount = 0;
  /** When the last write was attempted (ms since the epoch), successful or not; null before any. */
  lastAttemptAt: number | null = null;

  private readonly dir: string;
  private readonly log: SnapshotLog;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly retryMs: number;
  /**
   * One warning per error code per minute. Timing uses the global `performance` (monotonic, so clock
   * steps do not matter), looked up at each call so test fake timers can replace it.
   */
  private readonly errorLimiter = new RateLimiter(1, 60_000, () => performance.now());
  private failuresSinceSuccess = 0;

  /** What to save when the timer fires; null when nothing is unsaved. */
  private produce: (() => Snapshot) | null = null;
  private firstUnsaved = 0;
  private lastChange = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(options: SnapshotStoreOptions) {
    this.dir = options.dir;
    this.log = options.log;
    this.debounceMs = options.debounceMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 1000;
    this.retryMs = options.retryMs ?? 5000;
    this.file = path.join(this.dir, SNAPSHOT_FILE);
  }

  /**
   * Reads the snapshot left by the previous run. Anything unusable is renamed to
   * registry.json.bad-<UTC time> so it can be inspected, and reported in one warning.
   */
  load(): LoadResult {
    this.removeLeftoverTemps();
    const read = this.readFile();
    if (read.kind === 'none') return read;
    if (read.kind === 'bytes') {
      const decoded = decodeSnapshot(read.bytes);
      if (decoded.ok) return { kind: 'loaded', snapshot: decoded.snapshot };
      return this.moveAside(decoded.reason);
    }
    return this.moveAside(read.reason);
  }

  /**
   * Notes that the registry changed. Bursts are coalesced: the write happens once changes have been
   * quiet for debounceMs, but no later than maxDelayMs after the first unsaved change. `produce` is
   * called when the write happens, so the snapshot is as fresh as possible.
   */
  schedule(produce: () => Snapshot): void {
    if (this.closed) return;
    const now = performance.now();
    if (this.produce === null) this.firstUnsaved = now;
    this.produce = produce;
    this.lastChange = now;
    // Re-arming a timer per change would be wasteful in a registration storm; instead the timer,
    // when it fires, works out whether the quiet period has really passed (see onTimer).
    if (this.timer === null) this.arm(this.debounceMs);
  }

  /** Writes now, synchronously (orderly stop). Returns whether the write succeeded. */
  flush(produce: () => Snapshot): boolean {
    this.disarm();
    this.produce = null;
    return this.save(produce);
  }

  /** Cancels pending work; unsaved changes are dropped, so call flush first on an orderly stop. */
  close(): void {
    this.closed = true;
    this.disarm();
    this.produce = null;
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, delayMs));
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private onTimer(): void {
    this.timer = null;
    const produce = this.produce;
    if (produce === null || this.closed) return;
    const now = performance.now();
    const due = Math.min(this.lastChange + this.debounceMs, this.firstUnsaved + this.maxDelayMs);
    if (now < due) {
      this.arm(due - now);
      return;
    }
    this.produce = null;
    if (this.save(produce)) return;
    // Keep the data pending and try again later, unless a newer change already replaced it. New
    // changes in the meantime ride on this retry rather than hammering a full or read-only disk.
    if (this.closed) return;
    this.produce ??= produce;
    this.firstUnsaved = now;
    this.lastChange = now;
    this.arm(this.retryMs);
  }

  /** Builds and writes one snapshot; failures are logged (rate-limited), never thrown. */
  private save(produce: () => Snapshot): boolean {
    this.lastAttemptAt = Date.now();
    let bytes: Buffer;
    try {
      bytes = encodeSnapshot(produce());
    } catch (err) {
      // A bug in the caller, not a disk problem; still must not take the daemon down from a timer.
      this.failed(err, 'error', 'could not build the registry snapshot');
      return false;
    }
    try {
      this.writeAtomically(bytes);
    } catch (err) {
      this.failed(err, 'warn', 'could not save the registry snapshot; will retry');
      return false;
    }
    this.writeCount++;
    if (this.lastError !== null) {
      this.log.info(
        { file: this.file, failedAttempts: this.failuresSinceSuccess },
        'registry snapshot saved again after earlier failures',
      );
    }
    this.lastError = null;
    this.failuresSinceSuccess = 0;
    return true;
  }

  private failed(err: unknown, level: 'warn' | 'error', msg: string): void {
    const code = errorCode(err);
    this.lastError = `${code}: ${errorText(err)}`;
    this.failuresSinceSuccess++;
    const admitted = this.errorLimiter.admit(code);
    if (admitted === null) return;
    const fields: Record<string, unknown> = { file: this.file, code, error: errorText(err) };
    if (admitted.dropped > 0) fields.suppressed = admitted.dropped;
    this.log[level](fields, msg);
  }

  /** Temp file, write, fsync, rename over the real file, fsync the directory so the rename sticks. */
  private writeAtomically(bytes: Buffer): void {
    const temp = path.join(this.dir, `${TEMP_STEM}${++tempCount}`);
    let fd: number | null = null;
    let renamed = false;
    try {
      // 'wx': never follow or reuse something already at that name.
      fd = fs.openSync(temp, 'wx', 0o644);
      fs.writeFileSync(fd, bytes);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = null;
      fs.renameSync(temp, this.file);
      renamed = true;
      const dirFd = fs.openSync(this.dir, 'r');
      try {
        fs.fsyncSync(dirFd);
      } finally {
        fs.closeSync(dirFd);
      }
    } finally {
      if (fd !== null) closeQuietly(fd);
      if (!renamed) unlinkQuietly(temp);
    }
  }

  private readFile(): { kind: 'none' } | { kind: 'bytes'; bytes: Buffer } | { kind: 'unreadable'; reason: string } {
    let fd: number;
    try {
      // O_NONBLOCK: if someone left a FIFO here, opening it must not hang the daemon's start.
      fd = fs.openSync(this.file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return { kind: 'none' };
      return { kind: 'unreadable', reason: `cannot open: ${errorText(err)}` };
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) return { kind: 'unreadable', reason: `not a regular file (${describeType(st)})` };
      if (st.size > MAX_FILE_BYTES) {
        return { kind: 'unreadable', reason: `file is ${st.size} bytes, larger than the ${MAX_FILE_BYTES}-byte limit` };
      }
      return { kind: 'bytes', bytes: fs.readFileSync(fd) };
    } catch (err) {
      return { kind: 'unreadable', reason: `cannot read: ${errorText(err)}` };
    } finally {
      closeQuietly(fd);
    }
  }

  private moveAside(reason: string): LoadResult {
    let movedTo: string | null = this.asideName();
    let outcome: string;
    try {
      fs.renameSync(this.file, movedTo);
      outcome = `moved it to ${movedTo}`;
    } catch (err) {
      movedTo = null;
      outcome = `could not move it aside (${errorText(err)}), leaving it in place`;
    }
    this.log.warn(
      { file: this.file, reason, movedTo },
      `registry snapshot ${this.file} is unusable (${reason}); ${outcome}; starting with an empty registry`,
    );
    return { kind: 'moved-aside', reason, movedTo };
  }

  /** registry.json.bad-<UTC time>, with a counter if that name is somehow taken already. */
  private asideName(): string {
    const base = path.join(this.dir, `${SNAPSHOT_FILE}.bad-${fileTimestamp(new Date())}`);
    let candidate = base;
    for (let i = 1; fs.existsSync(candidate); i++) candidate = `${base}-${i}`;
    return candidate;
  }

  /** A crash between creating and renaming a temp file leaves it behind; it is never useful. */
  private removeLeftoverTemps(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return; // no directory (yet): nothing to clean; a failing write will report the problem
    }
    for (const name of names) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      try {
        fs.unlinkSync(path.join(this.dir, name));
      } catch (err) {
        this.log.warn({ file: path.join(this.dir, name), error: errorText(err) }, 'could not remove a leftover temp file');
      }
    }
  }
}

function describeType(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a file';
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* nothing useful to do */
  }
}

function unlinkQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    /* already gone, or the directory itself is gone */
  }
}
