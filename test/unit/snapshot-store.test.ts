// SnapshotStore against the real file system (tests run as root, so "unreadable" and "cannot
// write" are produced with tricks that fail even for root; each test says which).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { prng } from '../helpers/prng.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from '../../src/persistence/snapshot.js';
import { readBootId, SnapshotStore, type SnapshotLog } from '../../src/persistence/snapshot-store.js';
import type { Logger } from '../../src/log/logger.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const fixture = path.join(root, 'test/fixtures/snapshot-store-child.mjs');

// The daemon passes its Logger; this line fails to type-check if that stops fitting.
const _loggerFits = (log: Logger): SnapshotLog => log;
void _loggerFits;

interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
}

function capture(): SnapshotLog & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

function snap(counter = 0): Snapshot {
  return {
    version: 1,
    bootId: 'b',
    savedAt: 1000 + counter,
    nodes: [
      { name: Buffer.from('a'), port: 1, nodeType: 77, protocol: 0, highestVersion: 6, lowestVersion: 5, extra: Buffer.from([0xff, 0]), creation: counter },
    ],
    unused: [{ name: Buffer.from([0]), port: 2, creation: 3 }],
    creationCeiling: counter,
  };
}

/** The creationCeiling on disk now (the tests use it as a change counter). */
function savedCounter(file: string): number {
  const d = decodeSnapshot(fs.readFileSync(file));
  if (!d.ok) throw new Error(d.reason);
  return d.snapshot.creationCeiling;
}

let tmpRoot: string;
let dir: string;
let log: ReturnType<typeof capture>;
let file: string;
let seq = 0;

beforeAll(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-store-'));
});
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
beforeEach(() => {
  dir = path.join(tmpRoot, `t${++seq}`);
  fs.mkdirSync(dir);
  file = path.join(dir, 'registry.json');
  log = capture();
});

const asideFiles = () => fs.readdirSync(dir).filter((n) => n.startsWith('registry.json.bad-'));
const tempFiles = () => fs.readdirSync(dir).filter((n) => n.startsWith('registry.json.tmp-'));

describe('readBootId', () => {
  it('reads the kernel boot id', () => {
    expect(readBootId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});

describe('load', () => {
  it('missing file → none, silently', () => {
    expect(new SnapshotStore({ dir, log }).load()).toEqual({ kind: 'none' });
    expect(log.lines).toEqual([]);
  });

  it('missing directory → none', () => {
    expect(new SnapshotStore({ dir: path.join(dir, 'nope'), log }).load()).toEqual({ kind: 'none' });
  });

  it('valid file → loaded, exactly what was saved', () => {
    const store = new SnapshotStore({ dir, log });
    expect(store.flush(() => snap(5))).toBe(true);
    expect(new SnapshotStore({ dir, log }).load()).toEqual({ kind: 'loaded', snapshot: snap(5) });
    expect(log.lines).toEqual([]);
  });

  /** Expects load() to move the file aside with one warning; returns the reason. */
  function expectMovedAside(reasonPattern: RegExp, original?: Buffer): string {
    const result = new SnapshotStore({ dir, log }).load();
    expect(result.kind).toBe('moved-aside');
    if (result.kind !== 'moved-aside') throw new Error('unreachable');
    expect(result.reason).toMatch(reasonPattern);
    expect(result.movedTo).toMatch(/registry\.json\.bad-\d{8}T\d{6}\.\d{3}Z(-\d+)?$/);
    expect(fs.existsSync(file)).toBe(false);
    if (original) expect(fs.readFileSync(result.movedTo!)).toEqual(original);
    expect(log.lines).toHaveLength(1);
    const [line] = log.lines;
    expect(line!.level).toBe('warn');
    expect(line!.msg).toContain(result.reason);
    expect(line!.msg).toContain(result.movedTo!);
    expect(line!.msg).toContain('starting with an empty registry');
    expect(line!.msg).not.toMatch(/\n/);
    // The next start finds nothing and says nothing.
    log.lines.length = 0;
    expect(new SnapshotStore({ dir, log }).load()).toEqual({ kind: 'none' });
    expect(log.lines).toEqual([]);
    return result.reason;
  }

  it('corrupt JSON → moved aside with its content intact', () => {
    const junk = Buffer.from('{"format":"epmd-ng-registry",,,}');
    fs.writeFileSync(file, junk);
    expectMovedAside(/^not valid JSON/, junk);
  });

  it('future version → moved aside, reason names the version', () => {
    fs.writeFileSync(file, JSON.stringify({ format: 'epmd-ng-registry', version: 2, shards: [] }));
    expect(expectMovedAside(/version 2/)).toBe('snapshot version 2 is newer than this epmd-ng understands');
  });

  it('truncated at every length → moved aside (only the final newline may go)', () => {
    const full = encodeSnapshot(snap(9));
    for (let len = 0; len < full.length; len++) {
      fs.writeFileSync(file, full.subarray(0, len));
      log.lines.length = 0;
      const result = new SnapshotStore({ dir, log }).load();
      if (len === full.length - 1) {
        expect(result.kind, `cut at ${len}`).toBe('loaded');
        fs.rmSync(file);
      } else {
        expect(result.kind, `cut at ${len}`).toBe('moved-aside');
        expect(log.lines.filter((l) => l.level === 'warn'), `cut at ${len}`).toHaveLength(1);
      }
    }
    // Loads in the same millisecond must not overwrite each other's evidence.
    expect(asideFiles()).toHaveLength(full.length - 1);
  });

  it('a directory named registry.json → moved aside', () => {
    fs.mkdirSync(file);
    fs.writeFileSync(path.join(file, 'inside'), 'x');
    expectMovedAside(/^not a regular file \(a directory\)$/);
    expect(fs.readFileSync(path.join(dir, asideFiles()[0]!, 'inside'), 'utf8')).toBe('x');
  });

  it('a FIFO named registry.json → moved aside without blocking the start', () => {
    // Opening a FIFO for reading normally waits for a writer, forever; the store opens non-blocking.
    expect(spawnSync('mkfifo', [file]).status).toBe(0);
    expectMovedAside(/^not a regular file \(a FIFO\)$/);
  });

  it('a symlink loop (ELOOP, fails even for root) → moved aside', () => {
    fs.symlinkSync('registry.json', file);
    expectMovedAside(/^cannot open: ELOOP/);
  });

  it('removes temp files a crash left behind, and nothing else', () => {
    fs.writeFileSync(path.join(dir, 'registry.json.tmp-123-deadbeef'), '{"format":');
    fs.writeFileSync(path.join(dir, 'registry.json.tmp-9-00'), '');
    fs.writeFileSync(path.join(dir, 'registry.json.bad-20240101T000000.000Z'), 'old evidence');
    fs.writeFileSync(path.join(dir, 'other'), 'x');
    expect(new SnapshotStore({ dir, log }).load()).toEqual({ kind: 'none' });
    expect(fs.readdirSync(dir).sort()).toEqual(['other', 'registry.json.bad-20240101T000000.000Z']);
  });
});

describe('writing', () => {
  it('flush writes atomically and leaves no temp file', () => {
    const store = new SnapshotStore({ dir, log });
    expect(store.flush(() => snap(1))).toBe(true);
    expect(store.flush(() => snap(2))).toBe(true);
    expect(savedCounter(file)).toBe(2);
    expect(store.writeCount).toBe(2);
    expect(store.lastError).toBeNull();
    expect(fs.readdirSync(dir)).toEqual(['registry.json']);
  });

  it('missing directory: ENOENT logged once per minute, then recovers', () => {
    vi.useFakeTimers();
    try {
      const gone = path.join(dir, 'state');
      const store = new SnapshotStore({ dir: gone, log });
      expect(store.flush(() => snap(1))).toBe(false);
      expect(store.lastError).toMatch(/^ENOENT: /);
      for (let i = 0; i < 5; i++) {
        vi.advanceTimersByTime(1000);
        expect(store.flush(() => snap(1))).toBe(false);
      }
      expect(log.lines).toHaveLength(1);
      expect(log.lines[0]).toMatchObject({ level: 'warn', obj: { code: 'ENOENT' } });
      vi.advanceTimersByTime(60_000);
      expect(store.flush(() => snap(1))).toBe(false);
      expect(log.lines).toHaveLength(2);
      expect(log.lines[1]!.obj).toMatchObject({ code: 'ENOENT', suppressed: 5 });

      fs.mkdirSync(gone);
      expect(store.flush(() => snap(7))).toBe(true);
      expect(store.lastError).toBeNull();
      expect(store.writeCount).toBe(1);
      expect(log.lines[2]).toMatchObject({ level: 'info', obj: { failedAttempts: 7 } });
      expect(savedCounter(path.join(gone, 'registry.json'))).toBe(7);
    } finally {
      vi.useRealTimers();
    }
  });

  it('directory replaced by a file: ENOTDIR, never thrown', () => {
    const notDir = path.join(dir, 'plain');
    fs.writeFileSync(notDir, '');
    const store = new SnapshotStore({ dir: notDir, log });
    expect(store.flush(() => snap(1))).toBe(false);
    expect(store.lastError).toMatch(/^ENOTDIR: /);
  });

  it('rename fails (registry.json is a non-empty directory): temp file is cleaned up', () => {
    fs.mkdirSync(file);
    fs.writeFileSync(path.join(file, 'x'), '');
    const store = new SnapshotStore({ dir, log });
    expect(store.flush(() => snap(1))).toBe(false);
    expect(store.lastError).toMatch(/^(EISDIR|ENOTEMPTY|EEXIST): /);
    expect(tempFiles()).toEqual([]);
    expect(log.lines).toHaveLength(1);
  });

  it('different error codes are rate-limited separately', () => {
    const store = new SnapshotStore({ dir: path.join(dir, 'missing'), log });
    store.flush(() => snap(1));
    store.flush(() => snap(1));
    const other = new SnapshotStore({ dir, log });
    fs.mkdirSync(file);
    fs.writeFileSync(path.join(file, 'x'), '');
    other.flush(() => snap(1));
    expect(log.lines.map((l) => l.obj.code)).toHaveLength(2);
  });

  it('a throwing producer is logged as an error, not thrown', () => {
    const store = new SnapshotStore({ dir, log });
    expect(store.flush(() => { throw new Error('bug'); })).toBe(false);
    const bad = snap(1);
    bad.nodes[0]!.port = 1e6;
    expect(store.flush(() => bad)).toBe(false);
    expect(log.lines.map((l) => l.level)).toEqual(['error']); // same code (EUNKNOWN) → one line a minute
    expect(store.lastError).toMatch(/out of range/);
    expect(fs.existsSync(file)).toBe(false);
  });
});

describe('schedule (fake timers)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** A registry stand-in: a change counter, and a producer that records when it was called. */
  function harness(options: { debounceMs?: number; maxDelayMs?: number; retryMs?: number } = {}) {
    const store = new SnapshotStore({ dir, log, ...options });
    const state = { counter: 0, produced: [] as { at: number; counter: number }[] };
    const produce = () => {
      state.produced.push({ at: Date.now() - start, counter: state.counter });
      return snap(state.counter);
    };
    const start = Date.now();
    const change = () => {
      state.counter++;
      store.schedule(produce);
    };
    return { store, state, change, produce };
  }

  it('one change → one write after debounceMs; produce runs at write time', () => {
    const { store, state, change } = harness();
    change();
    vi.advanceTimersByTime(249);
    expect(state.produced).toEqual([]);
    expect(fs.existsSync(file)).toBe(false);
    state.counter = 41; // a later change the producer should see, though it did not schedule
    vi.advanceTimersByTime(1);
    expect(state.produced).toEqual([{ at: 250, counter: 41 }]);
    expect(savedCounter(file)).toBe(41);
    vi.advanceTimersByTime(10_000);
    expect(store.writeCount).toBe(1);
  });

  it('a burst within the debounce window → one write, 250 ms after the last change', () => {
    const { store, state, change } = harness();
    for (let i = 0; i < 1000; i++) change();
    vi.advanceTimersByTime(100);
    for (let i = 0; i < 1000; i++) change();
    vi.advanceTimersByTime(5000);
    expect(store.writeCount).toBe(1);
    expect(state.produced).toEqual([{ at: 350, counter: 2000 }]);
  });

  it('a steady stream of changes is still saved at least every maxDelayMs', () => {
    const { store, state, change } = harness();
    // A change every 100 ms (never quiet for 250 ms) from t=50 to t=2950.
    vi.advanceTimersByTime(50);
    for (let t = 50; t < 3000; t += 100) {
      change();
      vi.advanceTimersByTime(100);
    }
    vi.advanceTimersByTime(5000);
    // The change at 1050 lands just after that write (same instant), so it opens the next window.
    expect(state.produced.map((p) => p.at)).toEqual([1050, 2050, 3050]);
    expect(store.writeCount).toBe(3);
    expect(savedCounter(file)).toBe(30);
  });

  it('never writes more than once per debounce period, whatever the rate', () => {
    const { store, state, change } = harness({ debounceMs: 100, maxDelayMs: 300 });
    for (let t = 0; t < 10_000; t += 7) {
      change();
      vi.advanceTimersByTime(7);
    }
    vi.advanceTimersByTime(1000);
    const times = state.produced.map((p) => p.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(100);
    for (let i = 1; i < times.length - 1; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(307);
    expect(store.writeCount).toBe(times.length);
    expect(savedCounter(file)).toBe(state.counter);
  });

  it('flush writes now and cancels the pending write', () => {
    const { store, state, change, produce } = harness();
    change();
    vi.advanceTimersByTime(100);
    expect(store.flush(produce)).toBe(true);
    vi.advanceTimersByTime(10_000);
    expect(store.writeCount).toBe(1);
    expect(state.produced).toEqual([{ at: 100, counter: 1 }]);
  });

  it('close cancels the pending write and ignores later changes', () => {
    const { store, state, change } = harness();
    change();
    store.close();
    change();
    vi.advanceTimersByTime(10_000);
    expect(state.produced).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a failed scheduled write is retried after retryMs, with no change needed', () => {
    const gone = path.join(dir, 'state');
    const store = new SnapshotStore({ dir: gone, log });
    let counter = 1;
    store.schedule(() => snap(counter));
    vi.advanceTimersByTime(250);
    expect(store.lastError).toMatch(/^ENOENT/);
    fs.mkdirSync(gone);
    counter = 2;
    store.schedule(() => snap(counter)); // rides on the retry instead of writing at 250 ms
    vi.advanceTimersByTime(4999);
    expect(store.writeCount).toBe(0);
    vi.advanceTimersByTime(1);
    expect(store.writeCount).toBe(1);
    expect(store.lastError).toBeNull();
    expect(savedCounter(path.join(gone, 'registry.json'))).toBe(2);
    vi.advanceTimersByTime(60_000);
    expect(store.writeCount).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Child-process tests: the store bundled by esbuild, run by test/fixtures/snapshot-store-child.mjs.

let bundle: string;
beforeAll(async () => {
  bundle = path.join(tmpRoot, 'store-bundle.mjs');
  await esbuild.build({
    stdin: {
      contents: "export * from './snapshot-store.ts'; export * from './snapshot.ts';",
      resolveDir: path.join(root, 'src/persistence'),
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    outfile: bundle,
    logLevel: 'silent',
  });
});

function runChild(prefix: string[], args: string[]): any {
  const [cmd, ...rest] = [...prefix, process.execPath, fixture, bundle, ...args];
  const r = spawnSync(cmd!, rest, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`child failed (${r.status} ${r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0;
const canDropCaps = spawnSync('setpriv', ['--bounding-set', '-dac_override,-dac_read_search', 'true']).status === 0;
const isRoot = process.getuid?.() === 0;

describe('unreadable file and unmovable file (EACCES)', () => {
  // Root ignores file modes, so the child runs as root without CAP_DAC_OVERRIDE/DAC_READ_SEARCH
  // (setpriv drops them from the bounding set): then mode 000 really means "cannot open".
  const asRootWithoutDac = ['setpriv', '--bounding-set', '-dac_override,-dac_read_search'];

  it.skipIf(!canDropCaps)('EACCES on open → moved aside', () => {
    fs.writeFileSync(file, encodeSnapshot(snap(1)));
    fs.chmodSync(file, 0o000);
    const out = runChild(asRootWithoutDac, ['load', dir]);
    expect(out.result.kind).toBe('moved-aside');
    expect(out.result.reason).toMatch(/^cannot open: EACCES/);
    expect(out.logs).toHaveLength(1);
    expect(out.entries).toEqual([path.basename(out.result.movedTo)]);
  });

  it.skipIf(!canDropCaps)('rename aside fails too (directory not writable) → left in place, and said so', () => {
    fs.writeFileSync(file, 'garbage');
    fs.chmodSync(dir, 0o555);
    try {
      const out = runChild(asRootWithoutDac, ['load', dir]);
      expect(out.result).toEqual({ kind: 'moved-aside', reason: expect.stringMatching(/^not valid JSON/), movedTo: null });
      expect(out.logs).toHaveLength(1);
      expect(out.logs[0].msg).toMatch(/could not move it aside \(EACCES.*\), leaving it in place; starting with an empty registry/);
      expect(out.entries).toEqual(['registry.json']);
    } finally {
      fs.chmodSync(dir, 0o755);
    }
  });
});

describe('full and read-only file systems (tmpfs in a private mount namespace)', () => {
  // `unshare -m` gives the child its own mount namespace, so it can mount a 64 KiB tmpfs (real
  // ENOSPC) and remount it read-only (real EROFS) without touching the host's mounts.
  const unshare = ['unshare', '-m', '--propagation', 'private'];

  it.skipIf(!canUnshare || !isRoot)('ENOSPC: write fails cleanly, old snapshot intact, then recovers', () => {
    const out = runChild(unshare, ['enospc']);
    expect(out.firstOk).toBe(true);
    expect(out.fillError).toBe('ENOSPC');
    expect(out.fullOk).toBe(false);
    expect(out.lastErrorWhenFull).toMatch(/^ENOSPC: /);
    expect(out.entriesWhenFull).toEqual(['filler', 'registry.json']); // temp file removed
    expect(out.stateWhenFull).toEqual({ ok: true, nodes: 0 }); // previous snapshot untouched
    expect(out.afterOk).toBe(true);
    expect(out.stateAfter).toEqual({ ok: true, nodes: 1 });
    expect(out.lastErrorAfter).toBeNull();
    expect(out.writeCount).toBe(2);
    expect(out.logs.map((l: LogLine) => [l.level, l.obj.code ?? null])).toEqual([
      ['warn', 'ENOSPC'],
      ['info', null],
    ]);
  });

  it.skipIf(!canUnshare || !isRoot)('EROFS: write fails, old snapshot intact; corrupt file cannot be moved aside', () => {
    const out = runChild(unshare, ['erofs']);
    expect(out.firstOk).toBe(true);
    expect(out.roOk).toBe(false);
    expect(out.lastErrorRo).toMatch(/^EROFS: /);
    expect(out.entriesRo).toEqual(['registry.json']);
    expect(out.stateRo).toEqual({ ok: true, nodes: 0 });
    expect(out.loadRo).toEqual({ kind: 'moved-aside', reason: expect.stringMatching(/^not valid JSON/), movedTo: null });
    expect(out.entriesAfterLoad).toEqual(['registry.json']);
    expect(out.logs.map((l: LogLine) => l.level)).toEqual(['warn', 'warn']);
    expect(out.logs[1].msg).toMatch(/could not move it aside \(EROFS/);
  });
});

describe('crash consistency', () => {

  /** Starts the hammering child; resolves once it has loaded, with its kill switch. */
  function startHammer(): Promise<{ kill: () => Promise<void>; started: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [fixture, bundle, 'hammer', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<void>((res) => child.once('exit', () => res()));
      let out = '';
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) {
          resolve({
            started: out.trim(),
            kill: async () => {
              child.kill('SIGKILL');
              await exited;
            },
          });
        }
      });
      child.once('exit', (code) => reject(new Error(`hammer exited early (${code}): ${err}`)));
    });
  }

  it('SIGKILL at random moments never leaves a half-written registry.json', async () => {
    const seed = 20_241_121;
    const random = prng(seed);
    let lastSeq = 0;
    let sawTemp = 0;
    let sawFile = 0;
    for (let round = 0; round < 30; round++) {
      const { kill, started } = await startHammer();
      // The child resumed from the previous round's file (or started empty the first time).
      expect(started, `round ${round}`).toMatch(round === 0 ? /^started none 0$/ : /^started (loaded|none) \d+$/);
      await new Promise((r) => setTimeout(r, random() * 150));
      await kill();

      const names = fs.readdirSync(dir);
      if (names.some((n) => n.startsWith('registry.json.tmp-'))) sawTemp++;
      expect(names.filter((n) => !n.startsWith('registry.json.tmp-') && n !== 'registry.json'), `round ${round}`).toEqual([]);
      if (names.includes('registry.json')) {
        sawFile++;
        const decoded = decodeSnapshot(fs.readFileSync(file));
        expect(decoded.ok ? 'ok' : decoded.reason, `round ${round} (seed ${seed})`).toBe('ok');
        if (decoded.ok) {
          const last = decoded.snapshot.nodes.at(-1)!;
          const s = Number(last.name.toString('latin1').slice(1));
          expect(s, `round ${round}: saved sequence went backwards`).toBeGreaterThanOrEqual(lastSeq);
          lastSeq = s;
        }
      }
      // The next start removes the leftovers and loads what is there.
      const result = new SnapshotStore({ dir, log }).load();
      expect(result.kind, `round ${round}`).not.toBe('moved-aside');
      expect(tempFiles(), `round ${round}`).toEqual([]);
    }
    expect(log.lines).toEqual([]);
    // Make sure the kills really landed both between and during writes.
    expect(sawFile).toBeGreaterThan(20);
    expect(sawTemp).toBeGreaterThanOrEqual(3);
    console.log(`crash test: ${sawFile}/30 kills found a snapshot, ${sawTemp}/30 left a temp file, last seq ${lastSeq}`);
  });
});
