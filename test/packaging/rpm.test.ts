// The .rpm on a real systemd: `rpm -K`, then `rpm -i --nodeps` with its scriptlets inside the
// same Debian 12 systemd root as the .deb tests (Debian has rpm, but its packages are not in the
// rpm database, hence --nodeps) over the distribution's running epmd (erlang-base's units stand in
// for Fedora's erlang-erts ones: same names, same roles), real Erlang nodes, an upgrade with
// `rpm -U` that keeps every registration visible, and an erase that leaves nothing behind and
// gives the names back. Needs root.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_TIMEOUT_MS, STOP_TIMEOUT_MS, bootContainer, containerName, isRoot, requireRoot, shareDir, stopContainer } from '../systemd/sdh.js';
import { FS_SNAPSHOT, buildPackages, buildUpgradePackages, diffLines, pollsMissing, readPolls, repoRoot, shell, type Packages, ENABLED } from './packages.js';

const name = containerName('pkg-rpm');
const { sh, ok, show, waitFor, names, startNode, waitNode } = shell(name);

describe('the .rpm under a real systemd', () => {
  if (!isRoot()) {
    it('runs as root', () => requireRoot('test/packaging/rpm.test.ts'));
    return;
  }

  let pkgs: Packages;
  let upgrade: Packages;
  let fsBefore = '';
  let usersBefore = '';
  const rpmFile = () => `/host/${path.basename(pkgs.rpm)}`;

  beforeAll(async () => {
    pkgs = buildPackages();
    upgrade = buildUpgradePackages();
    await bootContainer(name);
    const share = shareDir(name);
    fs.copyFileSync(pkgs.rpm, path.join(share, path.basename(pkgs.rpm)));
    fs.copyFileSync(upgrade.rpm, path.join(share, path.basename(upgrade.rpm)));
    fs.copyFileSync(path.join(repoRoot, 'test/packaging/names-poller.cjs'), path.join(share, 'names-poller.cjs'));
    // The distribution's epmd, enabled and serving a node, as on a host that runs Erlang already.
    await ok('systemctl enable --now epmd.socket epmd.service');
    fsBefore = await ok(FS_SNAPSHOT);
    usersBefore = await ok('getent passwd | sort; getent group | sort');
  }, BOOT_TIMEOUT_MS);

  afterAll(() => stopContainer(name), STOP_TIMEOUT_MS);

  it('rpm -K: the digests check out', async () => {
    const r = await sh(`rpm -K ${rpmFile()}`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`${rpmFile()}: digests OK`);
  });

  it('rpm -i --nodeps over the running distribution epmd: enabled, epmd.* aliases, every address of 4369, no node invisible at any 50 ms poll', async () => {
    await startNode('o1');
    await waitNode('o1');
    const pollFile = path.join(shareDir(name), 'poll-install.jsonl');
    await ok('rm -f /run/poll-stop && systemd-run -q --unit=poller-install node /host/names-poller.cjs /host/poll-install.jsonl /run/poll-stop 50 4369 127.0.0.1,::1');
    // And NAMES over IPv6 back to back: the distribution's dual-stack socket gets them until it
    // closes, and epmd-ng-handover.service retires it without a reset (as in coexistence.test.ts).
    const floodFile = path.join(shareDir(name), 'flood.jsonl');
    await ok('systemd-run -q --unit=poller-flood node /host/names-poller.cjs /host/flood.jsonl /run/poll-stop 0 4369 ::1');
    await waitFor('the poller to start', async () => fs.existsSync(pollFile) && readPolls(pollFile).length >= 5);
    const out = await ok(`rpm -i --nodeps ${rpmFile()} 2>&1`);
    await new Promise((r) => setTimeout(r, 3000)); // o1 registers again with epmd-ng meanwhile
    await ok('touch /run/poll-stop');
    await waitFor('the pollers to finish', async () => (await sh('systemctl is-active poller-install poller-flood')).stdout.split('\n').every((l) => l !== 'active'));
    expect(out).toContain("epmd-ng: serving port 4369 beside the distribution's epmd until it has stopped");
    const polls = readPolls(pollFile);
    const bad = pollsMissing(polls, ['o1']);
    console.log(`rpm -i over the distribution's epmd: ${polls.length} polls, ${bad.length} bad${bad.length ? `: ${JSON.stringify(bad.slice(0, 5))}` : ''}`);
    expect(bad.slice(0, 10)).toEqual([]);
    const flood = readPolls(floodFile);
    const floodBad = pollsMissing(flood, ['o1']);
    console.log(`the IPv6 flood meanwhile: ${flood.length} polls, slowest ${Math.max(...flood.map((p) => p.ms))} ms, ${floodBad.length} bad`);
    expect(flood.length).toBeGreaterThan(100);
    expect(floodBad.slice(0, 10)).toEqual([]);
    expect(await ok('journalctl -q -o cat -u epmd-ng-handover.service')).toMatch(/accept queues empty after \d+ ms/);

    expect((await ok("rpm -q --qf '%{VERSION}' epmd-ng")).trim()).toBe(pkgs.version);
    expect((await sh('systemctl is-enabled epmd-ng.service epmd-ng.socket epmd-ng-ready.service')).stdout.trim().split('\n')).toEqual(ENABLED);
    expect((await sh('systemctl is-active epmd-ng.socket epmd-ng.service epmd-ng-ready.service')).stdout.trim().split('\n')).toEqual(['active', 'active', 'active']);
    expect((await sh('pgrep -u epmd -x epmd')).code).not.toBe(0);
    // o1 lost OTP's epmd and registered again, with epmd-ng; once stopped it is gone.
    const listed = async () => (JSON.parse(await ok('epmd-ng names --json')) as { nodes: { name: string; provisional: boolean }[] }).nodes;
    await waitFor('o1 registered with epmd-ng', async () => (await listed()).some((n) => n.name === 'o1' && !n.provisional), 30_000);
    await ok('systemctl stop erl-o1');
    await waitFor('o1 gone', async () => (await listed()).length === 0);
    // The units come from the rpm (in /usr/lib/systemd/system; /lib is the same directory here).
    expect((await ok("rpm -qf --qf '%{NAME}' /usr/lib/systemd/system/epmd-ng.socket")).trim()).toBe('epmd-ng');
    const listening = await ok("ss -ltnH 'sport = :4369' | awk '{print $4}' | sort");
    expect(listening.trim().split('\n')).toEqual(['0.0.0.0:4369', '[::]:4369']);
    expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng-ready.service');
    expect((await show('epmd.socket', 'Id')).Id).toBe('epmd-ng.socket');
    expect(await ok('cat /etc/sysconfig/epmd-ng')).toContain('#EPMD_NG_MAX_CONNECTIONS=');
  }, 90_000);

  it('(set-up) the links as epmd-ng 0.1.0 left them, where epmd.service was an alias of epmd-ng.service itself', async () => {
    // A stand-in for an installation of 0.1.0 (see deb.test.ts); rpm -U below must move the link.
    // Changed while neither unit runs (a daemon-reload that moves a running unit's name confuses systemd).
    await ok('systemctl stop epmd-ng.service epmd-ng-ready.service');
    await ok('ln -sfn /usr/lib/systemd/system/epmd-ng.service /etc/systemd/system/epmd.service && systemctl daemon-reload');
    expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng.service');
  });

  it('serves a real Erlang node: epmd -names and epmd-ng names --json list it', async () => {
    await startNode('r1');
    await startNode('r2');
    await waitNode('r1');
    await waitNode('r2');
    const json = JSON.parse(await ok('epmd-ng names --json')) as { nodes: { name: string }[] };
    expect(json.nodes.map((n) => n.name).sort()).toEqual(['r1', 'r2']);
    await ok('systemctl start epmd');
    expect((await show('epmd-ng.service', 'ActiveState')).ActiveState).toBe('active');
  });

  it('rpm -U to a newer build keeps every node visible in every NAMES reply', async () => {
    const pollFile = path.join(shareDir(name), 'poll.jsonl');
    const before = await show('epmd-ng.service', 'MainPID');
    await ok('rm -f /run/poll-stop && systemd-run -q --unit=names-poller node /host/names-poller.cjs /host/poll.jsonl /run/poll-stop 50');
    await waitFor('the poller to start', async () => fs.existsSync(pollFile) && readPolls(pollFile).length >= 5);
    await ok(`rpm -U --nodeps /host/${path.basename(upgrade.rpm)}`);
    await new Promise((r) => setTimeout(r, 3000));
    await ok('touch /run/poll-stop');
    await waitFor('the poller to finish', async () => (await sh('systemctl is-active names-poller')).stdout.trim() !== 'active');

    expect((await ok("rpm -q --qf '%{VERSION}' epmd-ng")).trim()).toBe(upgrade.version);
    const after = await show('epmd-ng.service', 'MainPID', 'ActiveState');
    expect(after.ActiveState).toBe('active');
    expect(after.MainPID).not.toBe(before.MainPID);
    const polls = readPolls(pollFile);
    const bad = polls.filter((p) => p.error !== undefined || (p.names ?? []).join(',') !== 'r1,r2');
    console.log(`rpm upgrade: ${polls.length} polls, slowest reply ${Math.max(...polls.map((p) => p.ms))} ms, ${bad.length} bad${bad.length ? `: ${JSON.stringify(bad.slice(0, 5))}` : ''}`);
    expect(bad.slice(0, 10)).toEqual([]);
    // The upgrade moved epmd.service to epmd-ng-ready.service, which the restarted daemon brought up.
    expect(await show('epmd.service', 'Id', 'ActiveState')).toEqual({ Id: 'epmd-ng-ready.service', ActiveState: 'active' });
  }, 120_000);

  it('rpm -e stops, disables and erases cleanly: no files, users, units or state left', async () => {
    await ok('systemctl stop erl-r1 erl-r2');
    await ok('rpm -e epmd-ng');
    expect((await sh('rpm -q epmd-ng')).code).not.toBe(0);
    // The names are the distribution's again, and its socket, enabled, listens again (%postun).
    expect(await show('epmd.service', 'Id', 'FragmentPath')).toEqual({ Id: 'epmd.service', FragmentPath: '/lib/systemd/system/epmd.service' });
    expect(await show('epmd.socket', 'Id', 'ActiveState')).toEqual({ Id: 'epmd.socket', ActiveState: 'active' });
    expect((await ok("ss -ltnH | awk '{print $4}'")).trim()).toBe('*:4369');
    expect(await names()).toEqual([]);
    const diff = diffLines(fsBefore, await ok(FS_SNAPSHOT));
    // rpm created /etc/sysconfig and /usr/share/licenses as parents of the package's files:
    // Debian has neither, on RPM-based systems the base packages (setup, filesystem) own them.
    // rpm never removes directories that no package owns; nothing of epmd-ng's is left in them.
    expect(diff).toEqual({ gone: [], added: ['/etc/sysconfig', '/usr/share/licenses'] });
    expect((await ok('ls -A /etc/sysconfig /usr/share/licenses')).trim()).toBe('/etc/sysconfig:\n\n/usr/share/licenses:');
    expect(await ok('getent passwd | sort; getent group | sort')).toBe(usersBefore);
    expect((await sh("systemctl list-unit-files --no-legend 'epmd-ng*'")).stdout.trim()).toBe('');
  });
});
