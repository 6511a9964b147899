// Installs the built epmd-ng (dist/ and build/ from `npm run build`) into a running harness
// container with scripts/install.sh, enables the units and starts the socket, as a package would.
import fs from 'node:fs';
import path from 'node:path';
import { copyBundle, repoRoot } from '../helpers/daemon.js';
import { execIn, shareDir } from './sdh.js';

/** Files the container reads from /host, beside what install.sh needs. */
export async function installEpmdNg(container: string, extraFiles: string[] = []): Promise<void> {
  const share = shareDir(container);
  fs.mkdirSync(path.join(share, 'dist'), { recursive: true });
  copyBundle(path.join(share, 'dist'));
  for (const f of ['build/sd_native.node', 'scripts/install.sh', ...extraFiles]) {
    fs.mkdirSync(path.join(share, path.dirname(f)), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, f), path.join(share, f));
  }
  fs.cpSync(path.join(repoRoot, 'systemd'), path.join(share, 'systemd'), { recursive: true });
  const r = await execIn(container, [
    'bash',
    '-c',
    'SRC=/host bash /host/scripts/install.sh && systemctl daemon-reload && systemctl enable epmd-ng.service && systemctl start epmd-ng.socket',
  ]);
  if (r.code !== 0) throw new Error(`installing epmd-ng failed: ${r.stderr}${r.stdout}`);
}
