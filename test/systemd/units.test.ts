// Static checks of the shipped unit files with systemd's own tools (no PID 1 needed).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { THIS_HOST_ONLY_FD_NAME } from '../../src/server/listeners.js';
import { repoRoot } from '../helpers/daemon.js';

const unit = (f: string) => path.join(repoRoot, 'systemd', f);

describe('shipped unit files', () => {
  it('epmd-ng.service scores at most 1.5 in systemd-analyze security --offline=yes (Debian\'s epmd.service: 9.2)', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', unit('epmd-ng.service')], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for epmd-ng\.service: ([\d.]+)/.exec(r.stdout)?.[1]);
    expect(score).toBeGreaterThan(0);
    expect(score).toBeLessThanOrEqual(1.5);
  });

  it('epmd-ng-filter.service holds CAP_NET_ADMIN alone, takes the socket\'s fds, and scores at most 1.5', () => {
    const text = execFileSync('cat', [unit('epmd-ng-filter.service')], { encoding: 'utf8' });
    // NonBlocking=yes: without it systemd makes the shared listening sockets blocking under the running daemon.
    for (const line of ['Type=oneshot', 'Sockets=epmd-ng.socket', 'NonBlocking=yes', 'CapabilityBoundingSet=CAP_NET_ADMIN', 'AmbientCapabilities=CAP_NET_ADMIN', 'DynamicUser=yes']) {
      expect(text).toMatch(new RegExp(`^${line}$`, 'm'));
    }
    expect(execFileSync('cat', [unit('epmd-ng.socket')], { encoding: 'utf8' })).toMatch(/^Wants=epmd-ng-filter\.service$/m);
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', unit('epmd-ng-filter.service')], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for epmd-ng-filter\.service: ([\d.]+)/.exec(r.stdout)?.[1]);
    expect(score).toBeGreaterThan(0);
    expect(score).toBeLessThanOrEqual(1.5);
  });

  it('epmd-ng-handover.service holds erlang-base\'s socket until stopped, never past it, with CAP_NET_ADMIN alone, and scores at most 1.5', () => {
    const text = execFileSync('cat', [unit('epmd-ng-handover.service')], { encoding: 'utf8' });
    // Type=notify: the postinst starts epmd-ng.socket only once SO_REUSEPORT is set. BindsTo= and
    // After=: stopped before erlang-base's units when they stop together, and never holding their
    // socket open once they have gone.
    for (const line of ['Type=notify', 'NotifyAccess=main', 'Sockets=epmd.socket', 'NonBlocking=yes', 'BindsTo=epmd.socket', 'After=epmd.socket epmd.service', 'CapabilityBoundingSet=CAP_NET_ADMIN', 'AmbientCapabilities=CAP_NET_ADMIN', 'DynamicUser=yes', 'PrivateNetwork=yes', 'ExecStart=/usr/bin/node /usr/lib/epmd-ng/epmd-ng.mjs hand-over-sockets']) {
      expect(text).toMatch(new RegExp(`^${line.replace(/\./g, '\\.')}$`, 'm'));
    }
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', unit('epmd-ng-handover.service')], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for epmd-ng-handover\.service: ([\d.]+)/.exec(r.stdout)?.[1]);
    expect(score).toBeGreaterThan(0);
    expect(score).toBeLessThanOrEqual(1.5);
  });

  it('the socket listens on every address, as two IPv6-only/IPv4 sockets named for this host only', () => {
    const text = execFileSync('cat', [unit('epmd-ng.socket')], { encoding: 'utf8' });
    const listens = text.split('\n').filter((l) => l.startsWith('ListenStream='));
    expect(listens).toEqual(['ListenStream=0.0.0.0:4369', 'ListenStream=[::]:4369']);
    expect(text).toMatch(/^BindIPv6Only=ipv6-only$/m);
    // The name is what makes the daemon attach its this-host-only filter (src/server/listeners.ts).
    expect(text).toMatch(new RegExp(`^FileDescriptorName=${THIS_HOST_ONLY_FD_NAME}$`, 'm'));
    expect(text).toMatch(/^Alias=epmd\.socket$/m);
  });

  it('the remote drop-in resets ListenStream=, renames the sockets and shows an IPAddressAllow= example', () => {
    const text = execFileSync('cat', [path.join(repoRoot, 'systemd/examples/epmd-ng-remote.conf')], { encoding: 'utf8' });
    const lines = text.split('\n');
    expect(lines.filter((l) => l.startsWith('ListenStream='))[0]).toBe('ListenStream=');
    const name = /^FileDescriptorName=(.*)$/m.exec(text)?.[1];
    expect(name).toBeDefined();
    expect(name).not.toBe(THIS_HOST_ONLY_FD_NAME);
    expect(text).toMatch(/^#IPAddressDeny=any$/m);
    expect(text).toMatch(/^#IPAddressAllow=localhost /m);
  });

  it('the service is Type=notify, restarts, has a watchdog and no core dumps, and brings epmd-ng-ready.service', () => {
    const text = execFileSync('cat', [unit('epmd-ng.service')], { encoding: 'utf8' });
    for (const line of ['Type=notify', 'Restart=on-failure', 'LimitCORE=0', 'StateDirectory=epmd-ng', 'Wants=epmd-ng-ready.service', 'PartOf=epmd-ng-ready.service', 'Also=epmd-ng.socket epmd-ng-ready.service']) {
      expect(text).toMatch(new RegExp(`^${line.replace('.', '\\.')}$`, 'm'));
    }
    // The node flags of the bundle's first line (src/main.ts), which the packages keep: at most one.
    const flags = /^#!\/usr\/bin\/env -S node((?: --[a-z-]+)?)$/.exec(fs.readFileSync(path.join(repoRoot, 'src/main.ts'), 'utf8').split('\n')[0]!)?.[1];
    expect(flags).toBeDefined();
    expect(text).toMatch(new RegExp(`^ExecStart=/usr/bin/node${flags} /usr/lib/epmd-ng/epmd-ng\\.mjs -systemd \\$EPMD_NG_OPTS$`, 'm'));
    expect(Number(/^WatchdogSec=(\d+)s$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/^LimitNOFILE=(\d+)$/m.exec(text)?.[1])).toBeGreaterThan(1024);
    // Never the epmd.service name itself: a crash would then restart every application that Requires= it.
    expect(text).not.toMatch(/^Alias=/m);
  });

  it('epmd-ng-ready.service takes the epmd.service name, depends on the daemon without Requires=, and scores at most 1.5', () => {
    const text = execFileSync('cat', [unit('epmd-ng-ready.service')], { encoding: 'utf8' });
    for (const line of ['Alias=epmd.service', 'Wants=epmd-ng.service', 'After=epmd-ng.service', 'PropagatesReloadTo=epmd-ng.service', 'Type=oneshot', 'RemainAfterExit=yes']) {
      expect(text).toMatch(new RegExp(`^${line.replace(/\./g, '\\.')}$`, 'm'));
    }
    // Requires=, BindsTo= or PartOf= on the daemon would carry its restarts to the applications.
    expect(text).not.toMatch(/^(Requires|BindsTo|PartOf|Requisite)=/m);
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', unit('epmd-ng-ready.service')], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for epmd-ng-ready\.service: ([\d.]+)/.exec(r.stdout)?.[1]);
    expect(score).toBeGreaterThan(0);
    expect(score).toBeLessThanOrEqual(1.5);
  });
});
