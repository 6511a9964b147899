// epmd-ng next to Debian's erlang-base, which ships its own epmd.service and epmd.socket, in both
// install orders, on a real systemd. epmd-ng takes the names over with the Alias= links that
// enabling its units creates in /etc/systemd/system (they take precedence over erlang-base's
// units in /lib), and removing it gives them back. Needs root; downloads erlang-base's .deb on the
// host once (apt-get download, cached in .cache/packaging) to reinstall it offline inside.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_TIMEOUT_MS, STOP_TIMEOUT_MS, bootContainer, containerName, isRoot, requireRoot, shareDir, stopContainer } from '../systemd/sdh.js';
import { buildPackages, erlangBaseDeb, shell, type Packages } from './packages.js';

const name = containerName('pkg-coexist');
const { sh, ok, show, waitFor, names, waitNode } = shell(name);

/** An Erlang application the way Debian packages declare them: Requires= and After=epmd.service. */
function appUnit(node: string): string {
  return `[Unit]\nRequires=epmd.service\nAfter=epmd.service\n[Service]\nEnvironment=HOME=/root\nExecStart=/usr/bin/erl -sname ${node} -start_epmd false -noshell -noinput -setcookie c\n`;
}

async function installApp(node: string): Promise<void> {
  await ok(`cat > /etc/systemd/system/${node}.service <<'EOF'\n${appUnit(node)}EOF\nsystemctl daemon-reload`);
}

/** Who serves port 4369: the user and command of the process behind epmd.service. */
async function epmdServer(): Promise<{ id: string; user: string; comm: string }> {
  const s = await show('epmd.service', 'Id', 'MainPID');
  expect(Number(s.MainPID), 'epmd.service has a main process').toBeGreaterThan(0);
  const [user, comm] = (await ok(`ps -o user=,comm= -p ${s.MainPID}`)).trim().split(/\s+/);
  return { id: s.Id!, user: user!, comm: comm! };
}

async function listening(): Promise<string[]> {
  return (await ok("ss -ltnH 'sport = :4369' | awk '{print $4}' | sort")).trim().split('\n').filter(Boolean);
}

describe('coexistence with erlang-base\'s epmd.service/epmd.socket', () => {
  if (!isRoot()) {
    it('runs as root', () => requireRoot('test/packaging/coexistence.test.ts'));
    return;
  }

  let pkgs: Packages;
  let deb = '';
  let erlangDeb = '';

  beforeAll(async () => {
    pkgs = buildPackages();
    await bootContainer(name);
    const share = shareDir(name);
    deb = path.basename(pkgs.deb);
    fs.copyFileSync(pkgs.deb, path.join(share, deb));
    const version = (await ok("dpkg-query -W -f '${Version}' erlang-base")).trim();
    const erlang = erlangBaseDeb(version);
    erlangDeb = path.basename(erlang);
    fs.copyFileSync(erlang, path.join(share, erlangDeb));
  }, BOOT_TIMEOUT_MS);

  afterAll(() => stopContainer(name), STOP_TIMEOUT_MS);

  describe('erlang-base first, with its epmd enabled and serving an application, then epmd-ng', () => {
    let appInvocation = '';

    it('before: OTP\'s epmd serves the application through erlang-base\'s units on *:4369', async () => {
      // As a Debian system has it after installing erlang-base (the test root has them disabled).
      await ok('systemctl enable --now epmd.socket epmd.service');
      await installApp('app');
      await ok('systemctl start app.service');
      await waitNode('app');
      expect(await epmdServer()).toEqual({ id: 'epmd.service', user: 'epmd', comm: 'epmd' });
      expect(await listening()).toEqual(['*:4369']);
      appInvocation = (await show('app.service', 'InvocationID')).InvocationID!;
    });

    it('installing epmd-ng takes port 4369 and the names over; the application keeps running and registers with it', async () => {
      const out = await ok(`cd /host && apt-get install -y ./${deb} 2>&1`);
      expect(out).toContain("epmd-ng: stopping erlang-base's epmd.socket");
      expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng.service');
      expect((await show('epmd.socket', 'Id')).Id).toBe('epmd-ng.socket');
      expect(await listening()).toEqual(['0.0.0.0:4369', '[::]:4369']);
      // The application was not stopped by the hand-over...
      expect(await show('app.service', 'ActiveState', 'InvocationID')).toEqual({ ActiveState: 'active', InvocationID: appInvocation });
      // ...and its node registers again, now with epmd-ng (OTP nodes reconnect within seconds).
      await waitNode('app', 30_000);
      expect((await sh('pgrep -u epmd -x epmd')).code).not.toBe(0);
      expect(await epmdServer()).toMatchObject({ id: 'epmd-ng.service', comm: 'epmd-ng' });
      expect(JSON.parse(await ok('epmd-ng names --json')).nodes.map((n: { name: string }) => n.name)).toEqual(['app']);
    }, 60_000);

    it('systemctl start epmd and a new Requires=epmd.service application reach epmd-ng', async () => {
      await ok('systemctl start epmd');
      await installApp('app2');
      await ok('systemctl start app2.service');
      await waitNode('app2');
      expect((await show('app2.service', 'Requires')).Requires).toMatch(/\bepmd-ng\.service\b/);
      expect(await names()).toEqual(['app', 'app2']);
    });

    it('switching by hand, as the README says, works both ways', async () => {
      await ok('systemctl disable --now epmd-ng.service epmd-ng.socket && systemctl start epmd.socket');
      expect(await listening()).toEqual(['*:4369']);
      expect((await show('epmd.socket', 'Id')).Id).toBe('epmd.socket');
      await ok('systemctl start app.service');
      await waitNode('app');
      expect(await epmdServer()).toEqual({ id: 'epmd.service', user: 'epmd', comm: 'epmd' });
      await ok('systemctl stop epmd.socket epmd.service && systemctl enable --now epmd-ng.service');
      expect(await listening()).toEqual(['0.0.0.0:4369', '[::]:4369']);
      expect(await epmdServer()).toMatchObject({ id: 'epmd-ng.service', comm: 'epmd-ng' });
      await ok('systemctl start app.service app2.service');
      await waitNode('app');
      await waitNode('app2');
    }, 60_000);

    it('removing epmd-ng gives the names back: erlang-base\'s epmd serves again, still enabled', async () => {
      await ok('apt-get remove -y epmd-ng');
      expect(await show('epmd.service', 'Id', 'FragmentPath', 'UnitFileState')).toEqual({
        Id: 'epmd.service',
        FragmentPath: '/lib/systemd/system/epmd.service',
        UnitFileState: 'enabled',
      });
      expect(await show('epmd.socket', 'Id', 'ActiveState')).toEqual({ Id: 'epmd.socket', ActiveState: 'active' });
      expect(await listening()).toEqual(['*:4369']);
      // The applications stopped with epmd-ng (Requires=); started again, they get OTP's epmd.
      await ok('systemctl start app.service app2.service');
      await waitNode('app');
      await waitNode('app2');
      expect(await epmdServer()).toEqual({ id: 'epmd.service', user: 'epmd', comm: 'epmd' });
      await ok('apt-get purge -y epmd-ng');
      await ok('systemctl stop app.service app2.service epmd.socket epmd.service');
    }, 60_000);
  });

  describe('epmd-ng first, then erlang-base', () => {
    it('a root without erlang-base: purged, with its units and its epmd user', async () => {
      await ok('dpkg --purge erlang-base');
      expect((await sh('ls /lib/systemd/system/epmd.service /lib/systemd/system/epmd.socket')).code).not.toBe(0);
      expect((await sh('getent passwd epmd')).code).not.toBe(0);
      expect((await sh('command -v erl')).code).not.toBe(0);
    });

    it('epmd-ng installs on its own and takes the epmd names', async () => {
      await ok(`cd /host && apt-get install -y ./${deb}`);
      expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng.service');
      expect(await listening()).toEqual(['0.0.0.0:4369', '[::]:4369']);
    });

    it('installing erlang-base afterwards leaves the names, the port and the enablement with epmd-ng', async () => {
      await ok(`dpkg -i /host/${erlangDeb}`);
      expect((await ok("dpkg-query -W -f '${Status}' erlang-base")).trim()).toBe('install ok installed');
      expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng.service');
      expect((await show('epmd.socket', 'Id')).Id).toBe('epmd-ng.socket');
      expect((await sh('systemctl is-enabled epmd-ng.service epmd-ng.socket')).stdout.trim().split('\n')).toEqual(['enabled', 'enabled']);
      expect((await sh('systemctl is-active epmd-ng.socket')).stdout.trim()).toBe('active');
      expect(await listening()).toEqual(['0.0.0.0:4369', '[::]:4369']);
      await ok('systemctl start epmd');
      expect(await epmdServer()).toMatchObject({ id: 'epmd-ng.service', comm: 'epmd-ng' });
      await installApp('app3');
      await ok('systemctl start app3.service');
      await waitNode('app3');
    });

    it('an upgrade of erlang-base disturbs epmd-ng only briefly: it stays enabled, and the nodes are back moments later', async () => {
      // Reinstalling the same .deb runs erlang-base's upgrade path: its prerm kills any process
      // whose name contains "epmd" (epmd-ng's is "epmd-ng") unless `epmd -kill` stops it, and its
      // postinst restarts "epmd.service epmd.socket", which are epmd-ng's while it is enabled.
      const before = await show('epmd-ng.service', 'MainPID');
      const out = await ok(`dpkg -i /host/${erlangDeb} 2>&1`);
      console.log(`erlang-base upgrade with epmd-ng installed: ${out.match(/Killing epmd\.\.\. .*/)?.[0] ?? '(no kill)'}`);
      expect((await sh('systemctl is-enabled epmd-ng.service epmd-ng.socket')).stdout.trim().split('\n')).toEqual(['enabled', 'enabled']);
      expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng.service');
      await waitFor('epmd-ng listening again', async () => (await listening()).join() === '0.0.0.0:4369,[::]:4369');
      await waitNode('app3', 30_000);
      expect(await epmdServer()).toMatchObject({ id: 'epmd-ng.service', comm: 'epmd-ng' });
      console.log(`epmd-ng main PID ${before.MainPID} -> ${(await show('epmd-ng.service', 'MainPID')).MainPID}`);
    }, 60_000);

    it('purging erlang-base while epmd-ng is installed leaves epmd-ng enabled and listening', async () => {
      // erlang-base's prerm stops "epmd.service epmd.socket" (ours) and its purge removes the
      // links it recorded through our aliases; epmd-ng's dpkg trigger puts both back.
      await ok('systemctl stop app3.service && dpkg --purge erlang-base');
      expect((await sh('systemctl is-enabled epmd-ng.service epmd-ng.socket')).stdout.trim().split('\n')).toEqual(['enabled', 'enabled']);
      expect((await show('epmd.socket', 'Id')).Id).toBe('epmd-ng.socket');
      expect((await sh('systemctl is-active epmd-ng.socket')).stdout.trim()).toBe('active');
      expect(await listening()).toEqual(['0.0.0.0:4369', '[::]:4369']);
      await ok(`dpkg -i /host/${erlangDeb}`);
      expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng.service');
    });

    it('removing epmd-ng gives the names back to erlang-base\'s units', async () => {
      await ok('apt-get purge -y epmd-ng');
      expect(await show('epmd.service', 'Id', 'FragmentPath')).toEqual({ Id: 'epmd.service', FragmentPath: '/lib/systemd/system/epmd.service' });
      expect(await show('epmd.socket', 'Id', 'FragmentPath')).toEqual({ Id: 'epmd.socket', FragmentPath: '/lib/systemd/system/epmd.socket' });
      expect((await ok('find /etc/systemd -name "*epmd-ng*"')).trim()).toBe('');
      await ok('systemctl start epmd');
      await waitFor('OTP epmd on *:4369', async () => (await listening()).includes('*:4369'));
      expect(await epmdServer()).toEqual({ id: 'epmd.service', user: 'epmd', comm: 'epmd' });
      await ok('systemctl start app3.service');
      await waitNode('app3');
      expect(await names()).toEqual(['app3']);
    });
  });
});
