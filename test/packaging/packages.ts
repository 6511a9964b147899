// Shared by the packaging tests: builds the .deb and .rpm with scripts/package.sh (once per set of
// inputs, even when several test files ask at the same time: a lock file serialises them and a
// stamp of the inputs' hashes skips rebuilding), fetches Debian's erlang-base .deb for the tests
// that remove and reinstall it inside the container, and small helpers around the nspawn harness.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/daemon.js';
import { execIn } from '../systemd/sdh.js';

export { repoRoot };

/**
 * `systemctl is-enabled epmd-ng.service epmd-ng.socket epmd-ng-ready.service` once the package
 * enabled them: the service has no [Install] links of its own, only Also= (hence "indirect").
 */
export const ENABLED = ['indirect', 'enabled', 'enabled'];

/** The version of the package built for the upgrade tests: newer than package.json's. */
export const UPGRADE_SUFFIX = '+upgrade1';

export interface Packages {
  version: string;
  deb: string;
  rpm: string;
}

function inputFiles(): string[] {
  const files = [
    'dist/epmd-ng.mjs',
    'build/sd_native.node',
    'scripts/package.sh',
    'scripts/install.sh',
    'README.md',
    'LICENSE',
    'package.json',
  ];
  for (const dir of ['dist/lib', 'packaging', 'systemd']) {
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(path.join(repoRoot, d), { withFileTypes: true })) {
        const rel = path.join(d, e.name);
        if (e.isDirectory()) walk(rel);
        else files.push(rel);
      }
    };
    walk(dir);
  }
  return files.sort();
}

function inputsHash(version: string): string {
  const h = createHash('sha256').update(`version=${version}\n`);
  for (const f of inputFiles()) h.update(`${f}\n`).update(fs.readFileSync(path.join(repoRoot, f)));
  return h.digest('hex');
}

export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Builds (or reuses) the packages of `version` in `outDir` (relative to the repository) and returns
 * their absolute paths. The default is what `npm run package` builds: package.json's version in
 * dist/pkg.
 */
export function buildPackages(version = packageVersion(), outDir = 'dist/pkg'): Packages {
  const out = path.join(repoRoot, outDir);
  fs.mkdirSync(out, { recursive: true });
  const deb = path.join(out, `epmd-ng_${version}_${execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim()}.deb`);
  const rpm = path.join(out, `epmd-ng-${version}-1.${execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim()}.rpm`);
  const stamp = path.join(out, `.inputs-${version}`);
  const hash = inputsHash(version);
  // flock: parallel test files wait for one build instead of overwriting each other's packages.
  const script = `
    if [ "$(cat "$STAMP" 2>/dev/null)" = "$HASH" ] && [ -f "$DEB" ] && [ -f "$RPM" ]; then exit 0; fi
    rm -f "$STAMP"
    bash scripts/package.sh && echo "$HASH" > "$STAMP"`;
  const r = spawnSync('flock', [path.join(out, '.build.lock'), 'bash', '-c', script], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, EPMD_NG_PKG_VERSION: version, EPMD_NG_PKG_OUT: out, STAMP: stamp, HASH: hash, DEB: deb, RPM: rpm },
    timeout: 15 * 60_000,
  });
  if (r.status !== 0) throw new Error(`scripts/package.sh failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
  return { version, deb, rpm };
}

/** The packages of a newer version, for upgrade tests (dist/pkg/upgrade). */
export function buildUpgradePackages(): Packages {
  return buildPackages(`${packageVersion()}${UPGRADE_SUFFIX}`, 'dist/pkg/upgrade');
}

/**
 * Debian's erlang-base .deb of exactly `version` (the one in the test root), downloaded on the host
 * with apt into .cache/packaging, so a test can purge erlang-base inside the container and install it
 * again offline (its own dependencies stay installed).
 */
export function erlangBaseDeb(version: string): string {
  const dir = path.join(repoRoot, '.cache/packaging');
  fs.mkdirSync(dir, { recursive: true });
  const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  const file = path.join(dir, `erlang-base_${version.replace(/^\d+:/, '')}_${arch}.deb`);
  if (fs.existsSync(file)) return file;
  const script = `
    set -e
    cd "$DIR"
    [ -f "$FILE" ] && exit 0
    tmp=$(mktemp -d "$DIR/dl.XXXXXX"); chmod 755 "$tmp"; cd "$tmp"
    apt-get download -q "erlang-base=$VERSION" >/dev/null 2>&1 || { apt-get update -qq && apt-get download -q "erlang-base=$VERSION" >/dev/null; }
    mv -f erlang-base_*.deb "$FILE"; cd ..; rm -rf "$tmp"`;
  const r = spawnSync('flock', [path.join(dir, '.lock'), 'bash', '-c', script], {
    encoding: 'utf8',
    env: { ...process.env, DIR: dir, FILE: file, VERSION: version },
    timeout: 10 * 60_000,
  });
  if (r.status !== 0 || !fs.existsSync(file)) throw new Error(`downloading erlang-base ${version} failed:\n${r.stderr}${r.stdout}`);
  return file;
}

export type Exec = { code: number; stdout: string; stderr: string };

/** Shell helpers bound to one container. */
export function shell(name: string) {
  const sh = (script: string, timeoutMs = 120_000): Promise<Exec> => execIn(name, ['bash', '-c', script], { timeoutMs });
  const ok = async (script: string, timeoutMs = 120_000): Promise<string> => {
    const r = await sh(script, timeoutMs);
    if (r.code !== 0) throw new Error(`\`${script}\` failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const show = async (unit: string, ...props: string[]): Promise<Record<string, string>> => {
    const out = await ok(`systemctl show ${unit} ${props.map((p) => `-p ${p}`).join(' ')}`);
    return Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  };
  const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  /** Names registered with whatever answers on 127.0.0.1:4369, via OTP's epmd client (empty when nothing answers). */
  const names = async (): Promise<string[]> => {
    const r = await sh('epmd -names');
    return [...r.stdout.matchAll(/^name (.*) at port \d+$/gm)].map((m) => m[1]!).sort();
  };
  /** Starts an Erlang node (short name `node`) as a transient unit that never starts its own epmd. */
  const startNode = (node: string, unit = `erl-${node}`): Promise<string> =>
    ok(`systemd-run -q --unit=${unit} --setenv=HOME=/root erl -sname ${node} -start_epmd false -noshell -noinput -setcookie c`);
  const waitNode = (node: string, timeoutMs = 20_000): Promise<void> =>
    waitFor(`node ${node} in epmd -names`, async () => (await names()).includes(node), timeoutMs);
  return { sh, ok, show, waitFor, names, startNode, waitNode };
}

/**
 * Every path in the container's root file system except the places that change by themselves or
 * belong to the package managers' own bookkeeping: for "nothing left behind" comparisons.
 */
export const FS_SNAPSHOT =
  "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/tmp -o -path /host " +
  '-o -path /var/log -o -path /var/cache -o -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/lib/rpm -o -path /root ' +
  "-o -path /var/lib/systemd/timers -o -path /var/lib/systemd/random-seed -o -path /etc/ld.so.cache \\) -prune -o -print | sort";

/** Lines only in `before` and only in `after`. */
export function diffLines(before: string, after: string): { gone: string[]; added: string[] } {
  const a = new Set(before.trim().split('\n'));
  const b = new Set(after.trim().split('\n'));
  return { gone: [...a].filter((l) => !b.has(l)), added: [...b].filter((l) => !a.has(l)) };
}

export interface Poll {
  t: number;
  ms: number;
  /** The address polled (names-poller.cjs HOSTS). */
  host?: string;
  names?: string[];
  port?: number;
  error?: string;
}

/** The polls that failed or did not list every one of `names`. */
export function pollsMissing(polls: Poll[], names: string[]): Poll[] {
  return polls.filter((p) => p.error !== undefined || !names.every((n) => p.names?.includes(n)));
}

export function readPolls(file: string): Poll[] {
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Poll);
}
