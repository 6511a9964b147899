// The README's run command on a fresh Debian 12: a root made by `mmdebstrap --variant=minbase
// bookworm` has no Node, no compiler and no libc headers. From a clean export of the repository,
// `scripts/run.sh` installs what it needs when run as root and then serves; without root it names
// what is missing in one line. The root is the harness's fresh root (scripts/sdh/fresh.sh): a
// throw-away overlay each run (the cached root stays fresh), the host's network (apt and npm must
// reach Debian's mirror and the npm registry), the host's CA bundle and proxy settings.
//
// The export is the working tree's tracked files. On CI's fresh clone that is the same as
// `git archive HEAD`; on a developer's machine it is what the rest of the suite tests (uncommitted
// edits included), and a new file that was never `git add`ed is missing here just as it would be on
// CI. `git archive HEAD` would test the last commit instead of the change under test.
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { namesReq, type NamesReply } from '../interop/epmd.js';
import { randomCookie, startNode, stopAllNodes, uniqueName } from '../interop/erl.js';
import {
  BOOT_TIMEOUT_MS,
  containerName,
  freshRoot,
  isRoot,
  requireRoot,
  runInFresh,
  shareDir,
  spawnInFresh,
  stopContainer,
  STOP_TIMEOUT_MS,
} from '../systemd/sdh.js';

/** Room for cold caches: about 400 Debian packages and the npm dependencies to download. */
const RUN_TIMEOUT_MS = 15 * 60_000;
/** What a minimal Debian 12 lacks, and the run command must bring. */
const ABSENT_FROM_FRESH_ROOT = ['usr/bin/node', 'usr/bin/npm', 'usr/bin/cc', 'usr/bin/gcc', 'usr/include/stdint.h'];

/** Copies the files git tracks, as they are in the working tree (modes and links kept), to dest. */
function exportTrackedFiles(dest: string): void {
  const tracked = execFileSync('git', ['-C', repoRoot, 'ls-files', '-z'], { encoding: 'utf8' })
    .split('\0')
    .filter((f) => f !== '' && fs.existsSync(path.join(repoRoot, f))); // tracked but deleted: not part of the tree
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest, { recursive: true });
  const archive = execFileSync('tar', ['-C', repoRoot, '--null', '-T', '-', '-c'], { input: tracked.join('\0'), maxBuffer: 1 << 30 });
  execFileSync('tar', ['-C', dest, '-x'], { input: archive });
}

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('scripts/run.sh on a fresh Debian 12 root (no Node, no compiler), from a clean export', () => {
  if (!isRoot()) {
    it('runs as root', () => requireRoot('test/packaging/run-command.test.ts (mmdebstrap, systemd-nspawn)'));
    return;
  }

  let root = '';
  const containers: string[] = [];
  beforeAll(async () => {
    root = await freshRoot();
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await stopAllNodes();
    for (const name of containers) await stopContainer(name);
  }, 2 * STOP_TIMEOUT_MS);

  const exportFor = (prefix: string): string => {
    const name = containerName(prefix);
    containers.push(name);
    exportTrackedFiles(path.join(shareDir(name), 'src'));
    return name;
  };

  it('the fresh root has no Node, npm, C compiler or libc headers', () => {
    for (const f of ABSENT_FROM_FRESH_ROOT) expect(fs.existsSync(path.join(root, f)), f).toBe(false);
    expect(fs.existsSync(path.join(root, 'usr/bin/apt-get'))).toBe(true);
  });

  it('without root: run.sh and build-native.mjs name what is missing in one line, at each stage of a partial install', async () => {
    const name = exportFor('fresh-user');
    // Each step's output and status go to /host/<step>.out/.rc; root installs in between, as a
    // user who is told what is missing would.
    const script = [
      'step() { local n=$1; shift; setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env "$@" >/host/$n.out 2>&1; echo $? >/host/$n.rc; }',
      'step no-node scripts/run.sh',
      'bash scripts/ensure-packages.sh nodejs npm',
      'step no-cc-build node scripts/build-native.mjs --out /tmp/sd_native.node',
      'step no-cc scripts/run.sh',
      'bash scripts/ensure-packages.sh gcc',
      'step no-libc-build node scripts/build-native.mjs --out /tmp/sd_native.node',
      'step no-libc scripts/run.sh',
    ].join('\n');
    const r = await runInFresh(name, '/host/src', ['bash', '-c', script], { timeoutMs: RUN_TIMEOUT_MS });
    expect(r.code, r.stderr).toBe(0);
    const step = (n: string) => {
      const read = (ext: string) => fs.readFileSync(path.join(shareDir(name), `${n}.${ext}`), 'utf8');
      return { rc: Number(read('rc')), out: read('out') };
    };
    const missing = (pkgs: string) => `epmd-ng: missing Debian packages: ${pkgs} (run as root to install them automatically)\n`;
    expect(step('no-node')).toEqual({ rc: 1, out: missing('nodejs npm') });
    expect(step('no-cc')).toEqual({ rc: 1, out: missing('gcc libc6-dev') });
    expect(step('no-libc')).toEqual({ rc: 1, out: missing('libc6-dev') });
    const hint = '; install gcc and libc6-dev (Debian/Ubuntu: apt-get install gcc libc6-dev; Fedora/RHEL: dnf install gcc glibc-devel) or set CC\n';
    expect(step('no-cc-build')).toEqual({ rc: 1, out: `build-native: no working C compiler (cc: command not found)${hint}` });
    const noLibc = step('no-libc-build');
    expect(noLibc.rc).toBe(1);
    expect(noLibc.out).toMatch(/^build-native: no working C compiler \([^\n]*stdint\.h: No such file or directory\); install gcc and libc6-dev /);
    expect(noLibc.out.endsWith(hint)).toBe(true);
    expect(noLibc.out.split('\n')).toHaveLength(2);
  }, RUN_TIMEOUT_MS);

  it('as root: installs nodejs, npm, gcc and libc6-dev, builds, and serves NAMES and a real Erlang node on the chosen port', async () => {
    const name = exportFor('fresh-run');
    const port = await freePort();
    const run: ChildProcess = spawnInFresh(name, '/host/src', ['scripts/run.sh', '-port', String(port)]);
    let log = '';
    run.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    run.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    let exit: string | null = null;
    const exited = new Promise<void>((resolve) =>
      run.once('exit', (code, signal) => {
        exit = signal ?? `exit status ${code}`;
        resolve();
      }),
    );

    const deadline = Date.now() + RUN_TIMEOUT_MS;
    let names: NamesReply | undefined;
    while (!names) {
      if (exit !== null) throw new Error(`scripts/run.sh ended (${exit}) before serving:\n${log}`);
      if (Date.now() > deadline) throw new Error(`no NAMES answer on 127.0.0.1:${port} in time:\n${log}`);
      names = await namesReq(port).catch(() => undefined);
      if (!names) await new Promise((r) => setTimeout(r, 500));
    }
    expect(names.port).toBe(port);
    expect(names.entries).toEqual([]);
    expect(log).toContain('epmd-ng: installing nodejs npm\n');
    expect(log).toContain('epmd-ng: installing gcc libc6-dev\n');

    const node = await startNode({ name: uniqueName('fresh'), epmdPort: port, cookie: randomCookie() });
    expect((await namesReq(port)).entries).toEqual([{ name: node.name, port: node.distPort }]);
    await node.stop();
    // The addon compiled in the fresh root is what attaches the this-host-only socket filter.
    // (Checked this late so that the start-up log line has surely arrived.)
    expect(log).toContain('"socketFilter":true');

    // Stopped by the pid of the nspawn this test started: the listener goes with it, which also
    // shows that what answered was this daemon.
    run.kill('SIGTERM');
    const stuck = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`nspawn did not exit on SIGTERM:\n${log}`)), 30_000).unref());
    await Promise.race([exited, stuck]);
    expect(await connectRefused(port)).toBe(true);
    for (const f of ABSENT_FROM_FRESH_ROOT) expect(fs.existsSync(path.join(root, f)), `${f} in the cached root`).toBe(false);
  }, RUN_TIMEOUT_MS);
});
