// Builds build/sd_native.node (the systemd Node-API addon, native/sd_native.c) with one plain compiler
// call. No node-gyp: it would need python and, without a configured nodedir, downloads Node's headers.
// The headers come from the node-api-headers devDependency instead; the addon links against nothing but
// libc, and the napi_* symbols are resolved from the node binary at load time.
//
//   node scripts/build-native.mjs [--if-stale] [--check-compiler] [--out <file>]
//
// --if-stale: do nothing when the output is newer than the C source and this script (used by tests).
// --check-compiler: only check that the compiler works (when a build is due), build nothing; exit 1
// with the diagnosis when it does not (scripts/setup.sh then installs one).
// CC overrides the compiler (default: cc).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), '..');
const source = path.join(root, 'native/sd_native.c');

function fail(msg) {
  console.error(`build-native: ${msg}`);
  process.exit(1);
}

const args = process.argv.slice(2);
let out = path.join(root, 'build/sd_native.node');
let ifStale = false;
let checkOnly = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--if-stale') ifStale = true;
  else if (args[i] === '--check-compiler') checkOnly = true;
  else if (args[i] === '--out' && args[i + 1]) out = path.resolve(args[++i]);
  else fail(`unknown argument ${args[i]}; usage: build-native.mjs [--if-stale] [--check-compiler] [--out <file>]`);
}

if (ifStale && existsSync(out)) {
  const built = statSync(out).mtimeMs;
  if (built >= statSync(source).mtimeMs && built >= statSync(self).mtimeMs) process.exit(0);
}

// Minimal Debian installs have no compiler, and gcc without libc6-dev has no libc headers: say so
// in one line, with the packages, instead of the compiler's own error.
const cc = process.env.CC || 'cc';
const probe = spawnSync(cc, ['-E', '-x', 'c', '-o', '/dev/null', '-'], { input: '#include <stdint.h>\n', encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  const why = probe.error?.code === 'ENOENT' ? `${cc}: command not found`
    : probe.error ? probe.error.message
    : (probe.stderr.split('\n').find((l) => l.includes('error')) ?? `${cc} exit status ${probe.status}`).trim();
  fail(`no working C compiler (${why}); install gcc and libc6-dev (Debian/Ubuntu: apt-get install gcc libc6-dev; ` +
    'Fedora/RHEL: dnf install gcc glibc-devel) or set CC');
}
if (checkOnly) process.exit(0);

let includeDir;
try {
  includeDir = createRequire(import.meta.url)('node-api-headers').include_dir;
} catch (err) {
  fail(`the node-api-headers package is missing (run npm install): ${err.message}`);
}

// Compile to a temporary name and rename: parallel test workers may build at the same time, and none
// of them must ever load a half-written file.
mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const ccArgs = [
  '-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', '-D_GNU_SOURCE',
  `-I${includeDir}`, '-o', tmp, source,
];
const r = spawnSync(cc, ccArgs, { stdio: 'inherit' });
if (r.error || r.status !== 0) {
  rmSync(tmp, { force: true });
  const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
  fail(`compiling ${path.relative(root, source)} failed (${cc} ${ccArgs.join(' ')}): ${why}`);
}
renameSync(tmp, out);
