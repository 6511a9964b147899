// Helpers for tests that need a real systemd: they drive the harness scripts in scripts/sdh/,
// which boot Debian 12's systemd 252 as PID 1 of a systemd-nspawn container (Debian's nodejs 18
// and erlang-base inside, loopback-only network, the share dir mounted at /host).
//
// Typical use (the whole file must run as root; see requireRoot):
//   const name = containerName('units');
//   beforeAll(() => bootContainer(name), BOOT_TIMEOUT_MS);
//   afterAll(() => stopContainer(name), STOP_TIMEOUT_MS);
//   copyFileSync('dist/epmd-ng.mjs', path.join(shareDir(name), 'epmd-ng.mjs'));   // after booting
//   const r = await execIn(name, ['node', '/host/epmd-ng.mjs', '--version']);
import { spawn, type ChildProcess } from 'node:child_process';
import fs, { existsSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const sdhScripts = path.join(repoRoot, 'scripts/sdh');
/** The harness's cache and state directory (the scripts' SDH_HOME). */
export const sdhHome = process.env.SDH_HOME || '/var/cache/epmd-ng-sdh';

/**
 * Time to allow for bootContainer: on a fresh machine the first boot installs the host tools and
 * builds the root (about 1 minute, more on a slow mirror); later boots take about 0.5 s.
 */
export const BOOT_TIMEOUT_MS = 20 * 60_000;
/** Time to allow for stopContainer (clean poweroff, then kill after SDH_STOP_TIMEOUT=20 s). */
export const STOP_TIMEOUT_MS = 60_000;

export interface ExecResult {
  /** Exit status; 128+N when killed by signal N. exec.sh itself exits 125 when the container is not running. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Written to the command's stdin (which is otherwise empty). */
  input?: string | Buffer;
  /** Kill the command after this long (default 60 s). The result then has code 128+9. */
  timeoutMs?: number;
}

export interface BootOptions {
  /** Extra Debian packages to bake into the root (SDH_PACKAGES; a new set builds a new root once). */
  packages?: string[];
  /** false: let nspawn pick the cgroup layout from the host instead of a pure cgroup2 tree. */
  unified?: boolean;
  timeoutMs?: number;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Throws a clear error unless running as root (the harness needs nspawn, cgroups, mmdebstrap). */
export function requireRoot(what = 'systemd harness tests'): void {
  if (!isRoot()) {
    const uid = typeof process.getuid === 'function' ? process.getuid() : 'unknown';
    throw new Error(
      `${what} must run as root (uid is ${uid}): they boot systemd in a systemd-nspawn container ` +
        `through scripts/sdh/. Run the test command as root (e.g. sudo npx vitest run test/systemd).`,
    );
  }
}

/** A container name unique to this test process, e.g. 'units-12345'. */
export function containerName(prefix: string): string {
  return `${prefix}-${process.pid}`;
}

/** Host directory that appears as /host inside the container. boot empties it: fill it after booting. */
export function shareDir(name: string): string {
  return path.join(sdhHome, 'share', name);
}

function scriptEnv(name: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SDH_NAME: name, SDH_HOME: sdhHome, ...extra };
  delete env.SDH_SHARE; // shareDir() is where the share is
  return env;
}

function runScript(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const { input, timeoutMs = 60_000 } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(sdhScripts, script), ...args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({
        code: code ?? 128 + (signal ? constants.signals[signal] : 0),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    };
    child.once('close', finish);
    // A daemon the command started inside the container may keep stdout/stderr open; don't wait
    // for it longer than a moment after the command itself has exited.
    child.once('exit', (code, signal) => {
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code, signal);
      }, 1000);
    });
    child.stdin.end(input ?? '');
  });
}

/**
 * Boots container `name` and resolves once its systemd is 'running' (or 'degraded'; the failed
 * units are then in the returned log). Builds the root first if needed. Throws with the
 * scripts' output on failure. Always pair it with stopContainer (e.g. in afterAll).
 */
export async function bootContainer(name: string, opts: BootOptions = {}): Promise<{ log: string }> {
  requireRoot();
  const extra: Record<string, string> = {};
  if (opts.packages) extra.SDH_PACKAGES = opts.packages.join(' ');
  if (opts.unified !== undefined) extra.SDH_UNIFIED = opts.unified ? '1' : '0';
  const r = await runScript('boot.sh', [], scriptEnv(name, extra), {
    timeoutMs: opts.timeoutMs ?? BOOT_TIMEOUT_MS,
  });
  if (r.code !== 0) {
    throw new Error(`booting container '${name}' failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  }
  return { log: r.stderr };
}

/**
 * Runs `cmd` inside the container (all of its namespaces, clean environment: PATH, HOME=/root,
 * LANG=C.UTF-8; use ['env', 'VAR=value', ...cmd] for more) and collects its output. Never throws
 * for the command's own failure: check `code`.
 */
export function execIn(name: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  if (cmd.length === 0) throw new Error('execIn: empty command');
  return runScript('exec.sh', ['--', ...cmd], scriptEnv(name), opts);
}

/** Powers the container off (clean halt, then kill of leftovers). Safe when it is not running. */
export async function stopContainer(name: string): Promise<void> {
  if (!isRoot()) return;
  const r = await runScript('stop.sh', [], scriptEnv(name), { timeoutMs: STOP_TIMEOUT_MS });
  if (r.code !== 0) {
    throw new Error(`stopping container '${name}' failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  }
}

/** The fresh root (`build-root.sh --fresh`: minbase bookworm, nothing added), built once and cached; its path. */
export async function freshRoot(): Promise<string> {
  requireRoot();
  const r = await runScript('build-root.sh', ['--fresh'], scriptEnv('fresh'), { timeoutMs: BOOT_TIMEOUT_MS });
  if (r.code !== 0) throw new Error(`building the fresh root failed (exit ${r.code}):\n${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Runs `cmd` as root, in directory `dir`, in a throw-away copy of the fresh root with the host's
 * network (scripts/sdh/fresh.sh; the share dir is /host), and collects its output. Follow with
 * stopContainer(name), which removes the share dir.
 */
export function runInFresh(name: string, dir: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  requireRoot();
  return runScript('fresh.sh', ['--chdir', dir, '--', ...cmd], scriptEnv(name), opts);
}

/**
 * runInFresh in the background. The returned process is systemd-nspawn itself (fresh.sh execs it):
 * SIGTERM to its pid kills everything in the container at once. Follow with stopContainer(name).
 */
export function spawnInFresh(name: string, dir: string, cmd: string[]): ChildProcess {
  requireRoot();
  return spawn('bash', [path.join(sdhScripts, 'fresh.sh'), '--chdir', dir, '--', ...cmd], {
    env: scriptEnv(name),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The container's own host cgroup directories that currently exist (none once it is stopped). */
export function hostCgroupDirs(name: string): string[] {
  return ['/sys/fs/cgroup', '/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd']
    .map((d) => path.join(d, `sdh-${name}`))
    .filter((d) => existsSync(d));
}

/**
 * Host PID of the container's init (its systemd), e.g. to move a network interface into the
 * container's network namespace: the only child of the systemd-nspawn recorded by boot.sh.
 */
export function leaderPid(name: string): number {
  const nspawn = fs.readFileSync(path.join(sdhHome, 'state', name, 'nspawn.pid'), 'utf8').split(' ')[0];
  const children = fs.readFileSync(`/proc/${nspawn}/task/${nspawn}/children`, 'utf8').trim().split(/\s+/);
  if (children.length !== 1 || !children[0]) throw new Error(`container ${name}: systemd-nspawn ${nspawn} has children "${children.join(' ')}"`);
  return Number(children[0]);
}
