// Bundles the daemon and CLI into one ES module file for fast start-up (one file to read, no
// module resolution at run time), and builds the native systemd addon when its source is present.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));

mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/main.ts'],
  outfile: 'dist/epmd-ng.mjs',
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'esm',
  banner: {
    // A young generation of 1 MB instead of V8's default 16 MB: each held registration then costs
    // about 3 KB of RSS instead of 5 (README, Performance). Bundled CommonJS dependencies (pino)
    // call require(); give the ESM bundle one.
    js: "#!/usr/bin/env -S node --max-semi-space-size=1\nimport { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
  },
  define: { __EPMD_NG_VERSION__: JSON.stringify(version) },
  logLevel: 'warning',
});
chmodSync('dist/epmd-ng.mjs', 0o755);
