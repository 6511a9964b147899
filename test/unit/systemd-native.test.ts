// The addon's helpers other than notify(), the memfd state file, and the loader.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/daemon.js';
import { ensureNativeBuilt } from '../helpers/sd-native.js';
import { createMemfd, readMemfd, writeMemfd } from '../../src/systemd/memfd.js';
import { addonCandidates, loadNative, resetNativeForTests, SYSTEM_ADDON_PATH } from '../../src/systemd/native.js';

const O_CLOEXEC = 0o2000000;

/** The fd's flags as the kernel reports them (close-on-exec shows as O_CLOEXEC). */
function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return parseInt(m?.[1] ?? 'x', 8);
}

beforeAll(() => ensureNativeBuilt());

describe('addon helpers', () => {
  it('setCloexec toggles FD_CLOEXEC', () => {
    const native = loadNative();
    const fd = fs.openSync(os.devNull, 'r');
    try {
      native.setCloexec(fd, false);
      expect(fdFlags(fd) & O_CLOEXEC).toBe(0);
      native.setCloexec(fd, true);
      expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('getRlimitNofile reports the limits', () => {
    const { soft, hard } = loadNative().getRlimitNofile();
    expect(soft).toBeGreaterThan(0);
    expect(hard).toBeGreaterThanOrEqual(soft);
    // Cross-check with the shell's view of this process's limit (inherited by children).
    const fromProc = /^Max open files\s+(\S+)\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    expect(String(soft)).toBe(fromProc?.[1] === 'unlimited' ? 'Infinity' : fromProc?.[1]);
  });
});

describe('memfd state file', () => {
  it('round-trips contents with plain fs calls, shrinking too', () => {
    const fd = createMemfd('epmd-state');
    try {
      expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe('/memfd:epmd-state (deleted)');
      expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
      expect(readMemfd(fd).length).toBe(0);
      const big = JSON.stringify({ nodes: Array.from({ length: 2000 }, (_, i) => `node${i}`) });
      writeMemfd(fd, big);
      expect(readMemfd(fd).toString()).toBe(big);
      writeMemfd(fd, '{"nodes":[]}');
      expect(readMemfd(fd).toString()).toBe('{"nodes":[]}');
      // The file offset is not used (it is shared with systemd's dup): a dup sees the same contents.
      const dup = fs.openSync(`/proc/self/fd/${fd}`, 'r');
      try {
        expect(fs.readFileSync(dup, 'utf8')).toBe('{"nodes":[]}');
      } finally {
        fs.closeSync(dup);
      }
      writeMemfd(fd, Buffer.from([0, 1, 2]));
      expect([...readMemfd(fd)]).toEqual([0, 1, 2]);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('loader', () => {
  const saved = process.env.EPMD_NG_NATIVE;
  afterEach(() => {
    if (saved === undefined) delete process.env.EPMD_NG_NATIVE;
    else process.env.EPMD_NG_NATIVE = saved;
    resetNativeForTests();
  });

  it('looks at EPMD_NG_NATIVE, next to the module, the repo build and the system path, in that order', () => {
    expect(addonCandidates({ EPMD_NG_NATIVE: 'rel/x.node' })).toEqual([
      path.resolve('rel/x.node'),
      path.join(repoRoot, 'src/systemd/sd_native.node'),
      path.join(repoRoot, 'build/sd_native.node'),
      SYSTEM_ADDON_PATH,
    ]);
  });

  it('skips candidates that do not exist', () => {
    process.env.EPMD_NG_NATIVE = path.join(os.tmpdir(), 'no-such-dir', 'sd_native.node');
    resetNativeForTests();
    expect(typeof loadNative().notify).toBe('function');
  });

  it('reports a broken addon clearly instead of skipping it', () => {
    const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-native-')), 'sd_native.node');
    fs.writeFileSync(bad, 'not an ELF file');
    process.env.EPMD_NG_NATIVE = bad;
    resetNativeForTests();
    expect(() => loadNative()).toThrow(/^the native addon \(sd_native\.node: systemd notification, socket filter\) is missing: loading .* failed/);
    fs.rmSync(path.dirname(bad), { recursive: true });
  });
});
