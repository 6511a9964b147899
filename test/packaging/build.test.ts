// `npm run package` (scripts/package.sh): the .deb and .rpm it builds, what is in them, their
// maintainer scripts and scriptlets, and lintian/rpmlint. No container: the packages' behaviour
// on a real systemd is in deb.test.ts, rpm.test.ts and coexistence.test.ts. Needs root (the build
// tools are installed on demand with apt).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isRoot, requireRoot } from '../systemd/sdh.js';
import { buildPackages, repoRoot, type Packages } from './packages.js';

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
/** The chunk files `npm run build` wrote beside the bundle (dist/lib). */
const builtChunks = (): string[] => fs.readdirSync(path.join(repoRoot, 'dist/lib'));

describe('npm run package', () => {
  if (!isRoot()) {
    it('runs as root', () => requireRoot('test/packaging/build.test.ts'));
    return;
  }

  let pkgs: Packages;
  beforeAll(() => {
    // The checkers, installed with apt when missing (package.sh installs them only with --lint).
    execFileSync('bash', [path.join(repoRoot, 'scripts/ensure-packages.sh'), 'lintian', 'rpmlint'], { stdio: 'inherit' });
    pkgs = buildPackages();
  }, 15 * 60_000);

  it('is the documented npm script and names the packages <name>_<version>_<arch>.deb and <name>-<version>-<release>.<arch>.rpm', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string>; version: string };
    expect(pkg.scripts.package).toBe('bash scripts/package.sh');
    expect(fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8')).toContain('npm run package');
    expect(path.basename(pkgs.deb)).toBe(`epmd-ng_${pkg.version}_amd64.deb`);
    expect(path.basename(pkgs.rpm)).toBe(`epmd-ng-${pkg.version}-1.x86_64.rpm`);
    expect(path.dirname(pkgs.deb)).toBe(path.join(repoRoot, 'dist/pkg'));
  });

  describe('.deb', () => {
    it('control: version, arch, Depends on Debian\'s nodejs (>= 18) and the libc the addon needs', () => {
      const control = run('dpkg-deb', ['-f', pkgs.deb]);
      expect(control).toMatch(/^Package: epmd-ng$/m);
      expect(control).toMatch(new RegExp(`^Version: ${pkgs.version.replace(/\./g, '\\.')}$`, 'm'));
      expect(control).toMatch(/^Architecture: amd64$/m);
      expect(control).toMatch(/^Depends: nodejs \(>= 18\), libc6 \(>= [\d.]+\)$/m);
      expect(control).toMatch(/^Section: net$/m);
    });

    it('contents: daemon and addon in /usr/lib/epmd-ng, /usr/bin/epmd-ng, units, man page, conffile, docs', () => {
      const list = run('dpkg-deb', ['-c', pkgs.deb]);
      const entries = new Map(
        list
          .trim()
          .split('\n')
          .map((l) => {
            const f = l.split(/\s+/);
            const p = f.slice(5).join(' ');
            return [p.replace(/^\.\//, '/').replace(/ -> .*$/, ''), { mode: f[0]!, owner: f[1]!, line: l }];
          }),
      );
      for (const [p, mode] of [
        ['/usr/lib/epmd-ng/epmd-ng.mjs', '-rwxr-xr-x'],
        ['/usr/lib/epmd-ng/sd_native.node', '-rw-r--r--'],
        ['/lib/systemd/system/epmd-ng.service', '-rw-r--r--'],
        ['/lib/systemd/system/epmd-ng.socket', '-rw-r--r--'],
        ['/lib/systemd/system/epmd-ng-filter.service', '-rw-r--r--'],
        ['/usr/share/man/man8/epmd-ng.8.gz', '-rw-r--r--'],
        ['/etc/default/epmd-ng', '-rw-r--r--'],
        ['/usr/share/doc/epmd-ng/copyright', '-rw-r--r--'],
        ['/usr/share/doc/epmd-ng/changelog.gz', '-rw-r--r--'],
        ['/usr/share/doc/epmd-ng/README.md.gz', '-rw-r--r--'],
        ['/usr/share/doc/epmd-ng/examples/epmd-ng-remote.conf', '-rw-r--r--'],
        ['/usr/share/doc/epmd-ng/examples/erlang-app.service', '-rw-r--r--'],
        ['/usr/share/doc/epmd-ng/examples/epmd-ng-prometheus.service', '-rw-r--r--'],
        ['/usr/share/doc/epmd-ng/examples/epmd-ng-prometheus.timer', '-rw-r--r--'],
      ] as const) {
        expect(entries.get(p)?.mode, p).toBe(mode);
      }
      // The chunks loaded on demand, beside the bundle: every one that was built.
      const chunks = builtChunks();
      expect(chunks.length).toBeGreaterThan(0);
      for (const c of chunks) expect(entries.get(`/usr/lib/epmd-ng/lib/${c}`)?.mode, c).toBe('-rw-r--r--');
      expect(entries.get('/usr/bin/epmd-ng')?.line).toMatch(/^l.* -> \.\.\/lib\/epmd-ng\/epmd-ng\.mjs$/);
      for (const e of entries.values()) expect(e.owner).toBe('root/root');
      // The distribution's node runs the daemon, not the first node on PATH.
      const tmp = fs.mkdtempSync('/tmp/epmd-ng-deb-');
      try {
        run('dpkg-deb', ['-x', pkgs.deb, tmp]);
        expect(fs.readFileSync(path.join(tmp, 'usr/lib/epmd-ng/epmd-ng.mjs'), 'utf8').split('\n')[0]).toBe('#!/usr/bin/node --single-threaded-gc');
        const defaults = fs.readFileSync(path.join(tmp, 'etc/default/epmd-ng'), 'utf8');
        for (const v of ['ERL_EPMD_ADDRESS', 'ERL_EPMD_PORT', 'ERL_EPMD_RELAXED_COMMAND_CHECK', 'EPMD_NG_OPTS', 'EPMD_NG_MAX_CONNECTIONS', 'EPMD_NG_LOG_LEVEL']) {
          expect(defaults, v).toMatch(new RegExp(`^#${v}=`, 'm'));
        }
        // Every setting is commented out: the file documents, the defaults stay the daemon's.
        expect(defaults.split('\n').filter((l) => l.trim() && !l.startsWith('#'))).toEqual([]);
        const copyright = fs.readFileSync(path.join(tmp, 'usr/share/doc/epmd-ng/copyright'), 'utf8');
        expect(copyright).toMatch(/^License: Apache-2\.0$/m);
        expect(copyright).toMatch(/^Files: node_modules\/pino\/\*$/m);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });

    it('maintainer scripts: conffile, trigger on erlang-base\'s units, try-restart on upgrade, no stop on upgrade', () => {
      const tmp = fs.mkdtempSync('/tmp/epmd-ng-ctl-');
      try {
        run('dpkg-deb', ['-e', pkgs.deb, tmp]);
        const read = (f: string) => fs.readFileSync(path.join(tmp, f), 'utf8');
        expect(read('conffiles').trim()).toBe('/etc/default/epmd-ng');
        expect(read('triggers')).toMatch(/^interest-noawait \/lib\/systemd\/system\/epmd\.socket$/m);
        expect(read('postinst')).toMatch(/systemctl try-restart --job-mode=ignore-dependencies "\$SERVICE"/);
        expect(read('postinst')).not.toMatch(/\bepmd -kill\b|\bkill\b.*epmd/);
        // prerm on upgrade does nothing: the service is never stopped and started.
        const prerm = read('prerm');
        expect(/upgrade\|deconfigure\|failed-upgrade\)\n(\s*#.*\n)*\s*;;/.test(prerm)).toBe(true);
        expect(read('postrm')).toMatch(/rm -rf \/var\/lib\/private\/epmd-ng \/var\/lib\/epmd-ng/);
        for (const f of ['postinst', 'prerm', 'postrm']) {
          expect(spawnSync('sh', ['-n', path.join(tmp, f)]).status, f).toBe(0);
          expect(fs.statSync(path.join(tmp, f)).mode & 0o777, f).toBe(0o755);
        }
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });

    it('lintian: no errors or warnings, and every override carries its reason', () => {
      const r = spawnSync('lintian', ['--fail-on', 'error,warning', '--display-info', pkgs.deb], { encoding: 'utf8' });
      const tags = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l));
      expect(tags).toEqual([]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const overrides = fs.readFileSync(path.join(repoRoot, 'packaging/deb/lintian-overrides'), 'utf8').split('\n');
      overrides.forEach((line, i) => {
        if (line.startsWith('epmd-ng:')) expect(overrides[i - 1], `comment before "${line}"`).toMatch(/^#/);
      });
    }, 180_000);
  });

  describe('.rpm', () => {
    it('rpm -K: digests OK', () => {
      const r = spawnSync('rpm', ['-K', pkgs.rpm], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/digests OK/);
    });

    it('header: version, arch, nodejs >= 18, licences and bundled npm packages', () => {
      const q = (fmt: string) => run('rpm', ['-qp', '--qf', fmt, pkgs.rpm]);
      expect(q('%{NAME} %{VERSION} %{RELEASE} %{ARCH}')).toBe(`epmd-ng ${pkgs.version} 1 x86_64`);
      expect(q('%{LICENSE}')).toMatch(/^Apache-2\.0 AND /);
      const requires = run('rpm', ['-qp', '--requires', pkgs.rpm]);
      expect(requires).toMatch(/^nodejs\(engine\) >= 18$/m);
      expect(requires).toMatch(/^\/usr\/bin\/node$/m);
      expect(run('rpm', ['-qp', '--provides', pkgs.rpm])).toMatch(/^bundled\(nodejs-pino\) = /m);
    });

    it('contents: same layout as the .deb, units in /usr/lib/systemd/system, /etc/sysconfig/epmd-ng as %config(noreplace)', () => {
      const files = run('rpm', ['-qlp', pkgs.rpm]).trim().split('\n');
      for (const f of [
        '/usr/bin/epmd-ng',
        '/usr/lib/epmd-ng/epmd-ng.mjs',
        '/usr/lib/epmd-ng/sd_native.node',
        '/usr/lib/systemd/system/epmd-ng.service',
        '/usr/lib/systemd/system/epmd-ng.socket',
        '/usr/lib/systemd/system/epmd-ng-filter.service',
        '/usr/share/man/man8/epmd-ng.8.gz',
        '/etc/sysconfig/epmd-ng',
        '/usr/share/doc/epmd-ng/README.md',
        '/usr/share/doc/epmd-ng/examples/epmd-ng-remote.conf',
        '/usr/share/doc/epmd-ng/examples/epmd-ng-prometheus.timer',
        '/usr/share/licenses/epmd-ng/LICENSE',
        '/usr/share/licenses/epmd-ng/LICENSES.bundled',
      ]) {
        expect(files, f).toContain(f);
      }
      for (const c of builtChunks()) expect(files).toContain(`/usr/lib/epmd-ng/lib/${c}`);
      expect(files.some((f) => f.startsWith('/usr/lib/.build-id'))).toBe(false);
      expect(run('rpm', ['-qp', '--configfiles', pkgs.rpm]).trim()).toBe('/etc/sysconfig/epmd-ng');
      // %config(noreplace): flag bit 4 (RPMFILE_NOREPLACE) on the settings file.
      const flags = run('rpm', ['-qp', '--qf', '[%{FILENAMES} %{FILEFLAGS:fflags}\n]', pkgs.rpm]);
      expect(flags).toMatch(/^\/etc\/sysconfig\/epmd-ng cn$/m);
    });

    it('scriptlets are written out in full: enable + start on install, try-restart on upgrade, disable --now on erase', () => {
      const scripts = run('rpm', ['-qp', '--scripts', pkgs.rpm]);
      expect(scripts).not.toMatch(/^\s*%\{?systemd_/m); // no (undefined) macros left unexpanded
      expect(scripts).toMatch(/systemctl --no-reload enable epmd-ng\.service epmd-ng\.socket/);
      expect(scripts).toMatch(/systemctl start epmd-ng\.socket/);
      expect(scripts).toMatch(/systemctl try-restart --job-mode=ignore-dependencies epmd-ng\.service/);
      expect(scripts).toMatch(/systemctl --no-reload disable --now epmd-ng\.socket epmd-ng\.service/);
      expect(scripts).not.toMatch(/restart epmd-ng\.socket|epmd -kill/);
    });

    it('rpmlint: nothing reported beyond the justified filters of packaging/rpm/epmd-ng.rpmlintrc', () => {
      const r = spawnSync('rpmlint', ['--strict', '-c', 'packaging/rpm/rpmlint.toml', '-r', 'packaging/rpm/epmd-ng.rpmlintrc', pkgs.rpm], {
        cwd: repoRoot,
        encoding: 'utf8',
      });
      expect(r.stdout).toMatch(/0 errors, 0 warnings/);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const rc = fs.readFileSync(path.join(repoRoot, 'packaging/rpm/epmd-ng.rpmlintrc'), 'utf8').split('\n');
      rc.forEach((line, i) => {
        if (line.startsWith('addFilter(')) expect(rc[i - 1], `comment before ${line}`).toMatch(/^#/);
      });
    }, 120_000);
  });
});
