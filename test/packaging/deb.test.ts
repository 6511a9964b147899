// The .deb on a real systemd (Debian 12's systemd 252 in systemd-nspawn, scripts/sdh/): installed
// with apt on a clean root that has Debian's own nodejs 18, it serves real Erlang nodes under the
// epmd.service/epmd.socket names; an upgrade to a newer build keeps every registered node visible
// in every NAMES reply (polled every 50 ms throughout); remove and purge leave nothing behind.
// Needs root (the test command runs as root).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pingByHostName } from '../systemd/container.js';
import { BOOT_TIMEOUT_MS, STOP_TIMEOUT_MS, bootContainer, containerName, isRoot, requireRoot, shareDir, stopContainer } from '../systemd/sdh.js';
import { FS_SNAPSHOT, buildPackages, buildUpgradePackages, diffLines, readPolls, repoRoot, shell, type Packages, ENABLED } from './packages.js';

const name = containerName('pkg-deb');
const { sh, ok, show, waitFor, names, startNode, waitNode } = shell(name);

describe('the .deb under a real systemd', () => {
  if (!isRoot()) {
    it('runs as root', () => requireRoot('test/packaging/deb.test.ts'));
    return;
  }

  let pkgs: Packages;
  let upgrade: Packages;
  let fsBefore = '';
  let usersBefore = '';

  beforeAll(async () => {
    pkgs = buildPackages();
    upgrade = buildUpgradePackages();
    await bootContainer(name);
    const share = shareDir(name);
    fs.copyFileSync(pkgs.deb, path.join(share, path.basename(pkgs.deb)));
    fs.copyFileSync(upgrade.deb, path.join(share, path.basename(upgrade.deb)));
    fs.copyFileSync(path.join(repoRoot, 'test/packaging/names-poller.cjs'), path.join(share, 'names-poller.cjs'));
    fsBefore = await ok(FS_SNAPSHOT);
    usersBefore = await ok('getent passwd | sort; getent group | sort');
  }, BOOT_TIMEOUT_MS);

  afterAll(() => stopContainer(name), STOP_TIMEOUT_MS);

  it('the root is a clean Debian 12 whose node is Debian\'s own nodejs 18, without epmd-ng', async () => {
    expect((await ok('cat /etc/debian_version')).trim()).toMatch(/^12\./);
    expect((await ok('dpkg -S /usr/bin/node')).trim()).toMatch(/^nodejs: \/usr\/bin\/node$/);
    expect((await ok('node --version')).trim()).toMatch(/^v18\./);
    expect((await sh('dpkg -s epmd-ng')).code).not.toBe(0);
  });

  it('apt-get install ./epmd-ng_*.deb: enabled, and the socket listens on every address of 4369, for this host only', async () => {
    await ok(`cd /host && apt-get install -y ./${path.basename(pkgs.deb)}`);
    expect((await ok("dpkg-query -W -f '${Status} ${Version}' epmd-ng")).trim()).toBe(`install ok installed ${pkgs.version}`);
    expect((await sh('systemctl is-enabled epmd-ng.service epmd-ng.socket epmd-ng-ready.service')).stdout.trim().split('\n')).toEqual(ENABLED);
    expect((await sh('systemctl is-active epmd-ng.socket')).stdout.trim()).toBe('active');
    // Socket activation: nothing has connected yet.
    expect((await sh('systemctl is-active epmd-ng.service')).stdout.trim()).toBe('inactive');
    const listening = await ok("ss -ltnH | awk '{print $4}' | sort");
    expect(listening.trim().split('\n')).toEqual(['0.0.0.0:4369', '[::]:4369']);
    expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng-ready.service');
    expect((await show('epmd.socket', 'Id')).Id).toBe('epmd-ng.socket');
    expect(await ok('cat /etc/default/epmd-ng')).toContain('#EPMD_NG_LOG_LEVEL=');
  });

  it('(set-up) the links as epmd-ng 0.1.0 left them, where epmd.service was an alias of epmd-ng.service itself', async () => {
    // A stand-in for an installation of 0.1.0, whose package cannot be rebuilt from this tree: its
    // postinst made the same links except this one. The upgrade below must move it. Done while
    // neither unit runs (a daemon-reload that moves the name of a running unit confuses systemd).
    expect((await sh('systemctl is-active epmd-ng.service epmd-ng-ready.service')).stdout.trim().split('\n')).toEqual(['inactive', 'inactive']);
    await ok('ln -sfn /lib/systemd/system/epmd-ng.service /etc/systemd/system/epmd.service && systemctl daemon-reload');
    expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng.service');
  });

  it('systemctl start epmd starts epmd-ng', async () => {
    await ok('systemctl start epmd');
    const s = await show('epmd-ng.service', 'ActiveState', 'SubState', 'MainPID');
    expect(s.ActiveState).toBe('active');
    expect(Number(s.MainPID)).toBeGreaterThan(0);
    expect((await ok(`readlink /proc/${s.MainPID}/exe`)).trim()).toBe('/usr/bin/node');
    expect((await ok(`tr '\\0' ' ' < /proc/${s.MainPID}/cmdline`)).trim()).toBe('/usr/bin/node --single-threaded-gc /usr/lib/epmd-ng/epmd-ng.mjs -systemd');
    expect((await ok('epmd -names')).trim()).toBe('epmd: up and running on port 4369 with data:');
  });

  it('a real Erlang node registers; epmd -names and epmd-ng names --json list it; another finds it by the host name (127.0.1.1)', async () => {
    await startNode('a');
    await waitNode('a');
    expect(await names()).toEqual(['a']);
    // The root's /etc/hosts is Debian's stock one: the host name is 127.0.1.1.
    expect((await ok('getent hosts "$(hostname)"')).trim().split(/\s+/)[0]).toBe('127.0.1.1');
    expect((await ok(pingByHostName('a'))).trim()).toBe('pong');
    const json = JSON.parse(await ok('epmd-ng names --json')) as { port: number; nodes: { name: string; port: number }[] };
    expect(json.port).toBe(4369);
    expect(json.nodes.map((n) => n.name)).toEqual(['a']);
  });

  it('an application unit with Requires=epmd.service starts and registers', async () => {
    await ok('cp /usr/share/doc/epmd-ng/examples/erlang-app.service /etc/systemd/system/ && systemctl daemon-reload && systemctl start erlang-app.service');
    expect((await show('erlang-app.service', 'ActiveState')).ActiveState).toBe('active');
    // As 0.1.0 had it: the application requires the daemon's own unit.
    expect((await show('erlang-app.service', 'Requires')).Requires).toMatch(/\bepmd-ng\.service\b/);
    await waitNode('example');
    expect(await names()).toEqual(['a', 'example']);
  });

  it('upgrade to a newer build while nodes are registered: no node lost, none invisible in any NAMES reply', async () => {
    const share = shareDir(name);
    const pollFile = path.join(share, 'poll.jsonl');
    const before = await show('epmd-ng.service', 'MainPID');
    const socketBefore = await show('epmd-ng.socket', 'ActiveEnterTimestampMonotonic');
    const appBefore = await show('erlang-app.service', 'InvocationID');
    await ok('rm -f /run/poll-stop && systemd-run -q --unit=names-poller node /host/names-poller.cjs /host/poll.jsonl /run/poll-stop 50');
    await waitFor('the poller to start', async () => fs.existsSync(pollFile) && readPolls(pollFile).length >= 5);

    const pollsBefore = readPolls(pollFile).length;
    const t0 = Date.now();
    await ok(`cd /host && apt-get install -y ./${path.basename(upgrade.deb)}`);
    const upgradeMs = Date.now() - t0;
    const pollsDuring = readPolls(pollFile).length - pollsBefore;
    // Keep polling a while: nodes that were dropped would re-register only ~2 s later.
    await new Promise((r) => setTimeout(r, 3000));
    await ok('touch /run/poll-stop');
    await waitFor('the poller to finish', async () => (await sh('systemctl is-active names-poller')).stdout.trim() !== 'active');

    expect((await ok("dpkg-query -W -f '${Version}' epmd-ng")).trim()).toBe(upgrade.version);
    // The service really was restarted (try-restart), the socket never was.
    const after = await show('epmd-ng.service', 'MainPID', 'ActiveState');
    expect(after.ActiveState).toBe('active');
    expect(after.MainPID).not.toBe(before.MainPID);
    expect((await show('epmd-ng.socket', 'ActiveEnterTimestampMonotonic')).ActiveEnterTimestampMonotonic).toBe(
      socketBefore.ActiveEnterTimestampMonotonic,
    );
    // ...nor the application that Requires=epmd.service: its node kept its registration.
    expect(await show('erlang-app.service', 'InvocationID', 'ActiveState')).toEqual({ ...appBefore, ActiveState: 'active' });

    const polls = readPolls(pollFile);
    const bad = polls.filter((p) => p.error !== undefined || (p.names ?? []).join(',') !== 'a,example');
    console.log(
      `upgrade: ${upgradeMs} ms, ${polls.length} polls (${pollsDuring} while apt ran), slowest reply ${Math.max(...polls.map((p) => p.ms))} ms, ` +
        `${bad.length} bad${bad.length ? `: ${JSON.stringify(bad.slice(0, 5))}` : ''}`,
    );
    expect(pollsDuring).toBeGreaterThanOrEqual(3);
    expect(bad.slice(0, 10)).toEqual([]);
    expect(await names()).toEqual(['a', 'example']);
  }, 120_000);

  it('after the upgrade epmd.service is epmd-ng-ready.service: a crash of the daemon no longer restarts the application', async () => {
    expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng-ready.service');
    expect((await ok('readlink /etc/systemd/system/epmd.service')).trim()).toBe('/lib/systemd/system/epmd-ng-ready.service');
    expect((await show('epmd-ng-ready.service', 'ActiveState')).ActiveState).toBe('active');
    expect((await show('erlang-app.service', 'Requires')).Requires).toMatch(/\bepmd-ng-ready\.service\b/);
    const app = await show('erlang-app.service', 'InvocationID', 'MainPID');
    const daemon = await show('epmd-ng.service', 'NRestarts');
    await ok('systemctl kill -s KILL --kill-who=main epmd-ng.service');
    await waitFor('the daemon restarted', async () => {
      const s = await show('epmd-ng.service', 'NRestarts', 'ActiveState');
      return s.ActiveState === 'active' && s.NRestarts !== daemon.NRestarts;
    });
    expect(await names()).toEqual(['a', 'example']);
    expect(await show('erlang-app.service', 'InvocationID', 'MainPID')).toEqual(app);
  });

  it('remove stops and disables, gives the epmd names back, keeps the conffile', async () => {
    await ok('systemctl stop erl-a');
    await ok('apt-get remove -y epmd-ng');
    expect((await ok("dpkg-query -W -f '${Status}' epmd-ng")).trim()).toBe('deinstall ok config-files');
    for (const unit of ['epmd-ng.service', 'epmd-ng.socket', 'epmd-ng-ready.service']) {
      expect((await show(unit, 'LoadState', 'ActiveState')), unit).toMatchObject({ LoadState: 'not-found', ActiveState: 'inactive' });
    }
    // Requires= means what systemd.unit(5) says: the application stopped with epmd.
    expect((await sh('systemctl is-active erlang-app.service')).stdout.trim()).toBe('inactive');
    expect((await ok("ss -ltnH | awk '{print $4}'")).trim()).toBe('');
    expect((await ok('find /etc/systemd -name "*epmd*"')).trim()).toBe('');
    // The names are erlang-base's again (the root has it, with its units disabled).
    expect(await show('epmd.service', 'Id', 'FragmentPath')).toEqual({ Id: 'epmd.service', FragmentPath: '/lib/systemd/system/epmd.service' });
    expect(await ok('cat /etc/default/epmd-ng')).toContain('EPMD_NG_LOG_LEVEL');
  });

  it('purge leaves nothing behind: no files, users, units or state', async () => {
    // What the test itself added: the example application's unit and its own state directory.
    await ok('rm -f /etc/systemd/system/erlang-app.service && rm -rf /var/lib/private/erlang-example /var/lib/erlang-example && systemctl daemon-reload');
    expect((await ok('ls /var/lib/private')).trim()).toBe('epmd-ng');
    await ok('apt-get purge -y epmd-ng');
    expect((await sh('dpkg -s epmd-ng')).code).not.toBe(0);
    const diff = diffLines(fsBefore, await ok(FS_SNAPSHOT));
    expect(diff).toEqual({ gone: [], added: [] });
    expect(await ok('getent passwd | sort; getent group | sort')).toBe(usersBefore);
    expect((await sh('getent passwd epmd-ng')).code).not.toBe(0);
    expect((await sh("systemctl list-unit-files --no-legend 'epmd-ng*'")).stdout.trim()).toBe('');
    expect((await sh("systemctl list-units --all --no-legend 'epmd-ng*'")).stdout.trim()).toBe('');
  });
});
