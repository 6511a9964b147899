// G-G: which requests a non-local peer may make (spec §7). The peers need addresses other than
// loopback, so the daemon and the probes run in a private network namespace made for this test
// (unshare -n, root only) with documentation-range addresses on its own lo. epmd-ng runs twice:
// with its addon, which decides locality from the raw addresses, and without it (a copy of the
// bundle away from the repository), where Node's address strings decide.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyBundle, daemonCommand, impl, repoRoot } from '../helpers/daemon.js';

interface Probe {
  kind: string;
  from: string;
  to: string;
  recv: string;
  end: string;
}

const noAddonDir = impl === 'ng' ? fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-noaddon-')) : undefined;
afterAll(() => {
  if (noAddonDir) fs.rmSync(noAddonDir, { recursive: true, force: true });
});
const variants: [string, string[]][] = noAddonDir
  ? [
      ['with its addon', daemonCommand()],
      ['without its addon', [process.execPath, copyBundle(noAddonDir)]],
    ]
  : [['', daemonCommand()]];

for (const [variant, command] of variants) describe(`G-G locality with non-loopback addresses (private network namespace)${variant ? `, ${variant}` : ''}`, () => {
  if (process.getuid?.() !== 0) {
    it('runs as root', () => {
      throw new Error('test/conformance/nonlocal.test.ts needs root for unshare -n; run the test command as root');
    });
    return;
  }

  const [cmd, ...args] = command;
  const out = execFileSync('unshare', ['-n', process.execPath, path.join(repoRoot, 'test/fixtures/locality-probe.mjs'), cmd!, JSON.stringify(args)], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const probes = out.trim().split('\n').map((l) => JSON.parse(l) as Probe);
  const get = (kind: string, from: string, to: string) => probes.find((p) => p.kind === kind && p.from === from && p.to === to)!;
  const NAMES_EMPTY = '00001111';
  const unusedRem = Buffer.concat([Buffer.from([0, 0, 0x11, 0x11]), Buffer.from('old/unused name <rem>, port = 5555, fd = ')]).toString('hex');

  for (const [from, to] of [['192.0.2.2', '192.0.2.1'], ['192.0.2.2', '127.0.0.1'], ['2001:db8::2', '2001:db8::1']] as const) {
    it(`${from} -> ${to}: ALIVE2, DUMP, STOP, STATUS and KILL refused without reply; NAMES and PORT2 served`, () => {
      for (const kind of ['ALIVE2', 'DUMP', 'STOP', 'STATUS', 'KILL']) expect(get(kind, from, to), kind).toMatchObject({ recv: '', end: 'FIN' });
      expect(get('NAMES', from, to)).toMatchObject({ recv: NAMES_EMPTY, end: 'FIN' });
      expect(get('PORT2', from, to)).toMatchObject({ recv: '7701', end: 'FIN' });
    });
  }

  for (const [from, to] of [['192.0.2.1', '192.0.2.1'], ['2001:db8::1', '2001:db8::1']] as const) {
    it(`${from} -> ${to} (peer = local address): registration allowed, DUMP served`, () => {
      const alive = get('ALIVE2', from, to);
      expect(alive.recv.slice(0, 4)).toBe('7600');
      expect(alive.end).toBe('open');
      expect(get('DUMP', from, to).recv.startsWith(unusedRem)).toBe(true);
      // STOP is local but relaxed command check is off: closed without reply.
      expect(get('STOP', from, to)).toMatchObject({ recv: '', end: 'FIN' });
      // epmd-ng's STATUS_REQ is answered to local peers; OTP's epmd has no such request.
      const status = Buffer.from(get('STATUS', from, to).recv, 'hex').toString();
      if (impl === 'ng') expect(JSON.parse(status)).toMatchObject({ format: 1, requests: { status: expect.any(Number) as number } });
      else expect(status).toBe('');
    });
  }
});
