// Smoke test of the systemd harness (scripts/sdh/): boots a container with Debian 12's real
// systemd as PID 1 and checks what the systemd, unit and package tests rely on. Needs root; run
// as anyone else it fails on purpose instead of skipping, so a CI misconfiguration is visible.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BOOT_TIMEOUT_MS,
  STOP_TIMEOUT_MS,
  bootContainer,
  containerName,
  execIn,
  hostCgroupDirs,
  isRoot,
  requireRoot,
  sdhHome,
  shareDir,
  stopContainer,
} from './sdh.js';

const name = containerName('sdh-smoke');

describe('systemd harness (scripts/sdh)', () => {
  if (!isRoot()) {
    it('runs as root', () => {
      requireRoot('test/systemd/harness.test.ts');
    });
    return;
  }

  beforeAll(async () => {
    const { log } = await bootContainer(name);
    // The boot's timing line (and the root build's, on a fresh machine) for the CI log.
    console.log(log.split('\n').filter((l) => l.startsWith('sdh: ')).join('\n'));
  }, BOOT_TIMEOUT_MS);

  afterAll(() => stopContainer(name), STOP_TIMEOUT_MS);

  it('runs systemd as PID 1 and reaches running', async () => {
    const exe = await execIn(name, ['readlink', '/proc/1/exe']);
    expect(exe.code).toBe(0);
    expect(exe.stdout.trim()).toMatch(/\/systemd$/);
    const comm = await execIn(name, ['ps', '-p', '1', '-o', 'comm=']);
    expect(comm.stdout.trim()).toBe('systemd');
    const state = await execIn(name, ['systemctl', 'is-system-running']);
    expect(state.stdout.trim()).toBe('running');
    const version = await execIn(name, ['systemctl', '--version']);
    expect(version.stdout).toMatch(/^systemd 252 /);
  });

  it('has port 4369 free at boot (erlang-base epmd.socket/.service not enabled)', async () => {
    const ss = await execIn(name, ['ss', '-Hltn', 'sport = :4369']);
    expect(ss.code).toBe(0);
    expect(ss.stdout.trim()).toBe('');
    for (const unit of ['epmd.socket', 'epmd.service']) {
      const enabled = await execIn(name, ['systemctl', 'is-enabled', unit]);
      expect(enabled.stdout.trim(), unit).toBe('disabled');
      const active = await execIn(name, ['systemctl', 'is-active', unit]);
      expect(active.stdout.trim(), unit).toBe('inactive');
    }
    // And it can really be bound, on all addresses.
    const bind = await execIn(name, [
      'node',
      '-e',
      "const s = require('net').createServer(); s.listen({ port: 4369 }, () => s.close());",
    ]);
    expect(bind.stderr).toBe('');
    expect(bind.code).toBe(0);
  });

  it("runs Debian's own node 18", async () => {
    const r = await execIn(name, ['node', '--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^v18\.\d+\.\d+$/);
    const pkg = await execIn(name, ['dpkg-query', '-W', '-f', '${Version}', 'nodejs']);
    expect(pkg.stdout).toMatch(/^18\..*dfsg/);
  });

  it('runs Erlang (erl and the epmd client)', async () => {
    const halt = await execIn(name, ['erl', '-noshell', '-eval', 'halt().']);
    expect(halt.stderr).toBe('');
    expect(halt.code).toBe(0);
    const release = await execIn(name, [
      'erl', '-noshell', '-eval', 'io:format("~s~n", [erlang:system_info(otp_release)]), halt().',
    ]);
    expect(release.stdout.trim()).toMatch(/^\d+$/);
    const epmd = await execIn(name, ['sh', '-c', 'command -v epmd']);
    expect(epmd.code).toBe(0);
  });

  it('passes stdin, stdout, stderr and the exit code through exec', async () => {
    const r = await execIn(name, ['sh', '-c', 'cat; echo oops >&2; exit 7'], { input: 'hello\n' });
    expect(r).toEqual({ code: 7, stdout: 'hello\n', stderr: 'oops\n' });
    // A background process that keeps stdout open does not hold execIn up.
    const started = Date.now();
    const bg = await execIn(name, ['sh', '-c', 'sleep 60 & echo started']);
    expect(bg).toEqual({ code: 0, stdout: 'started\n', stderr: '' });
    expect(Date.now() - started).toBeLessThan(5000);
    const env = await execIn(name, ['env']);
    expect(env.stdout.split('\n').filter(Boolean).sort()).toEqual(
      ['HOME=/root', 'LANG=C.UTF-8', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    );
  });

  it('shares the share dir as /host and names the host after the container', async () => {
    writeFileSync(path.join(shareDir(name), 'hello.txt'), 'from the host\n');
    const r = await execIn(name, ['cat', '/host/hello.txt']);
    expect(r.stdout).toBe('from the host\n');
    const host = await execIn(name, ['hostname']);
    expect(host.stdout.trim()).toBe(name);
    const hosts = await execIn(name, ['getent', 'hosts', name]);
    expect(hosts.stdout).toMatch(/^127\.0\.1\.1\s/);
  });

  it('stops cleanly and leaves nothing behind', async () => {
    await stopContainer(name);
    const r = await execIn(name, ['true']);
    expect(r.code).toBe(125);
    expect(hostCgroupDirs(name)).toEqual([]);
    expect(existsSync(shareDir(name))).toBe(false);
    expect(existsSync(path.join(sdhHome, 'state', name))).toBe(false);
    await stopContainer(name); // safe when nothing is up
  }, STOP_TIMEOUT_MS);
});
