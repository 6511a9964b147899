// A real Elixir release on epmd-ng: Debian's elixir package (baked into the nspawn root) builds a
// tiny app with `mix release` inside the container, offline (the container has no network and the
// app no dependencies). Two units run it, as applications are packaged: one with
// Requires=epmd.service, one with Wants=epmd.service; both After=epmd.service. Only an explicit
// restart of epmd.service restarts the Requires= one. The release's own
// commands (`bin/hello pid`, `bin/hello rpc`) find the nodes through epmd-ng, at the address the
// stock /etc/hosts gives the host name. Needs root.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_TIMEOUT_MS, STOP_TIMEOUT_MS, bootContainer, containerName, isRoot, requireRoot, shareDir, stopContainer } from '../systemd/sdh.js';
import { buildPackages, buildUpgradePackages, shell, type Packages } from './packages.js';

const name = containerName('pkg-elixir');
const { ok, show, waitFor } = shell(name);

const RELEASE = '/opt/hello';
/** The release's commands need no epmd of their own either: epmd-ng serves. */
const ERL_ENV = 'HOME=/root ELIXIR_ERL_OPTIONS="-start_epmd false"';

/** An application unit running the release as node `node`, depending on epmd.service with `dependency`. */
function releaseUnit(node: string, dependency: 'Requires' | 'Wants'): string {
  return [
    '[Unit]',
    `${dependency}=epmd.service`,
    'After=epmd.service',
    '[Service]',
    `Environment=HOME=${RELEASE} RELEASE_NODE=${node} ELIXIR_ERL_OPTIONS="-start_epmd false"`,
    `ExecStart=${RELEASE}/bin/hello start`,
    '',
  ].join('\n');
}

/** `bin/hello CMD...` against node `node`, once, no retries; resolves with its output. */
const release = (node: string, args: string): Promise<string> => ok(`${ERL_ENV} RELEASE_NODE=${node} ${RELEASE}/bin/hello ${args}`);

async function mainPid(unit: string): Promise<{ MainPID: string; InvocationID: string }> {
  const s = await show(unit, 'MainPID', 'InvocationID', 'ActiveState');
  expect(s.ActiveState, unit).toBe('active');
  return { MainPID: s.MainPID!, InvocationID: s.InvocationID! };
}

/** Waits until the release in `unit` answers `bin/hello pid` (only after its own start). */
async function waitUp(unit: string, node: string): Promise<void> {
  await waitFor(`${unit} answering`, async () => {
    const pid = await release(node, 'pid').catch(() => '');
    return pid.trim() !== '' && pid.trim() === (await show(unit, 'MainPID')).MainPID;
  }, 60_000);
}

describe('an Elixir release (mix release) on epmd-ng', () => {
  if (!isRoot()) {
    it('runs as root', () => requireRoot('test/packaging/elixir-release.test.ts'));
    return;
  }

  let pkgs: Packages;
  let upgrade: Packages;
  let host = '';

  beforeAll(async () => {
    pkgs = buildPackages();
    upgrade = buildUpgradePackages();
    await bootContainer(name, { packages: ['elixir'] });
    const share = shareDir(name);
    for (const p of [pkgs, upgrade]) fs.copyFileSync(p.deb, path.join(share, path.basename(p.deb)));
    await ok(`cd /host && apt-get install -y ./${path.basename(pkgs.deb)}`);
    host = (await ok('hostname')).trim();
  }, BOOT_TIMEOUT_MS);

  afterAll(() => stopContainer(name), STOP_TIMEOUT_MS);

  it('mix release builds the app offline, from Debian\'s elixir', async () => {
    await ok(
      `export HOME=/root MIX_ENV=prod && mkdir -p /srv && cd /srv && mix new hello >/dev/null && cd hello && mix release --overwrite >/dev/null && cp -a _build/prod/rel/hello ${RELEASE}`,
      300_000,
    );
    expect(await ok(`ls ${RELEASE}/bin`)).toContain('hello');
    // No package fetched: the release contains the app and OTP's own applications only.
    expect((await ok(`ls ${RELEASE}/lib`)).split('\n').filter((l) => /^(hex|mix)-/.test(l))).toEqual([]);
  }, 300_000);

  it('bin/hello start under units with Requires= and Wants=epmd.service; pid and rpc work through epmd-ng', async () => {
    await ok(
      `cat > /etc/systemd/system/hello.service <<'EOF'\n${releaseUnit('hello', 'Requires')}EOF\n` +
        `cat > /etc/systemd/system/hellow.service <<'EOF'\n${releaseUnit('hellow', 'Wants')}EOF\n` +
        'systemctl daemon-reload && systemctl start hello.service hellow.service',
    );
    await waitUp('hello.service', 'hello');
    await waitUp('hellow.service', 'hellow');
    // The OS pid the node reports is the unit's main process: erl execs into beam.
    expect((await release('hello', 'pid')).trim()).toBe((await mainPid('hello.service')).MainPID);
    expect((await release('hello', 'rpc "IO.puts(node())"')).trim()).toBe(`hello@${host}`);
    expect((await release('hellow', 'rpc "IO.puts(node())"')).trim()).toBe(`hellow@${host}`);
    const listed = JSON.parse(await ok('epmd-ng names --json')) as { nodes: { name: string }[] };
    expect(listed.nodes.map((n) => n.name).sort()).toEqual(['hello', 'hellow']);
    expect((await show('epmd-ng.service', 'ActiveState')).ActiveState).toBe('active');
  }, 120_000);

  it('epmd-ng killed (SIGKILL, Restart=on-failure): neither release is restarted, and rpc works at once', async () => {
    const before = { hello: await mainPid('hello.service'), hellow: await mainPid('hellow.service'), epmd: await show('epmd-ng.service', 'NRestarts') };
    await ok('systemctl kill -s KILL --kill-who=main epmd-ng.service');
    // Right away, no retry: the connection waits in the socket's backlog until the new process has
    // taken the registrations over from the fd store.
    expect((await release('hello', 'rpc "IO.puts(node())"')).trim()).toBe(`hello@${host}`);
    expect((await release('hellow', 'rpc "IO.puts(node())"')).trim()).toBe(`hellow@${host}`);
    expect(Number((await show('epmd-ng.service', 'NRestarts')).NRestarts)).toBe(Number(before.epmd.NRestarts) + 1);
    // The automatic restart is a restart job (service_enter_restart in systemd 252), and restart
    // jobs propagate to units that Require= the restarted unit. Applications require
    // epmd.service, which is epmd-ng-ready.service, not the daemon's unit: nothing propagates.
    expect(await mainPid('hello.service')).toEqual(before.hello);
    expect(await mainPid('hellow.service')).toEqual(before.hellow);
  }, 120_000);

  it('an upgrade of the epmd-ng package restarts neither release; rpc works at once', async () => {
    const before = { hello: await mainPid('hello.service'), hellow: await mainPid('hellow.service'), epmd: await show('epmd-ng.service', 'MainPID') };
    await ok(`cd /host && apt-get install -y ./${path.basename(upgrade.deb)}`);
    expect((await ok("dpkg-query -W -f '${Version}' epmd-ng")).trim()).toBe(upgrade.version);
    expect((await show('epmd-ng.service', 'MainPID')).MainPID).not.toBe(before.epmd.MainPID);
    expect((await release('hello', 'rpc "IO.puts(node())"')).trim()).toBe(`hello@${host}`);
    expect((await release('hellow', 'rpc "IO.puts(node())"')).trim()).toBe(`hellow@${host}`);
    expect(await mainPid('hello.service')).toEqual(before.hello);
    expect(await mainPid('hellow.service')).toEqual(before.hellow);
  }, 120_000);

  it('systemctl restart epmd restarts the Requires= release (systemd\'s rule) and not the Wants= one', async () => {
    const before = { hello: await mainPid('hello.service'), hellow: await mainPid('hellow.service') };
    await ok('systemctl restart epmd');
    expect((await release('hellow', 'rpc "IO.puts(node())"')).trim()).toBe(`hellow@${host}`);
    expect(await mainPid('hellow.service')).toEqual(before.hellow);
    expect((await show('hello.service', 'InvocationID')).InvocationID).not.toBe(before.hello.InvocationID);
    await waitUp('hello.service', 'hello');
    expect((await release('hello', 'rpc "IO.puts(node())"')).trim()).toBe(`hello@${host}`);
  }, 120_000);
});
