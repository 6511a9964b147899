// Bundles the daemon and CLI into one ES module file for fast start-up (no module resolution at
// run time), dist/epmd-ng.mjs, with what only some commands need in chunks beside it (dist/lib).
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, rmSync } from 'node:fs';

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));

mkdirSync('dist', { recursive: true });
// Chunks carry hashed names: a stale one must not linger beside the new build.
rmSync('dist/lib', { recursive: true, force: true });
await build({
  entryPoints: { 'epmd-ng': 'src/main.ts' },
  outdir: 'dist',
  // What a running daemon never needs (pino and pino-pretty for JSON and terminal logs, commander
  // for the word-style commands, one-shot CLI steps) goes to chunks in dist/lib, loaded on demand:
  // in the one file, its source text sat in the heap of every idle daemon (README, Performance).
  splitting: true,
  chunkNames: 'lib/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'esm',
  banner: {
    // Every output file: bundled CommonJS dependencies (pino) call require(); give them one. The
    // entry's first line (src/main.ts) stays first.
    js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
  },
  define: { __EPMD_NG_VERSION__: JSON.stringify(version) },
  logLevel: 'warning',
});
chmodSync('dist/epmd-ng.mjs', 0o755);
