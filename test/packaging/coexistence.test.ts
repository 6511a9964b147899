// epmd-ng next to Debian's erlang-base, which ships its own epmd.service and epmd.socket, in both
// install orders, on a real systemd. epmd-ng takes the names over with the Alias= links that
// enabling its units creates (epmd.service → epmd-ng-ready.service, epmd.socket → epmd-ng.socket) in /etc/systemd/system (they take precedence over erlang-base's
// units in /lib), and removing it gives them back. Needs root; downloads erlang-base's .deb on the
// host once (apt-get download, cached in .cache/packaging) to reinstall it offline inside.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_TIMEOUT_MS, STOP_TIMEOUT_MS, bootContainer, containerName, isRoot, requireRoot, shareDir, stopContainer } from '../systemd/sdh.js';
import { creationsIn, type JournalEntry } from '../systemd/container.js';
import { buildPackages, erlangBaseDeb, pollsMissing, readPolls, repoRoot, shell, type Packages, ENABLED } from './packages.js';

const name = containerName('pkg-coexist');
const { sh, ok, show, waitFor, names, startNode, waitNode } = shell(name);

/** An Erlang application the way Debian packages declare them: Requires= and After=epmd.service. */
function appUnit(node: string): string {
  return `[Unit]\nRequires=epmd.service\nAfter=epmd.service\n[Service]\nEnvironment=HOME=/root\nExecStart=/usr/bin/erl -sname ${node} -start_epmd false -noshell -noinput -setcookie c\n`;
}

async function installApp(node: string): Promise<void> {
  await ok(`cat > /etc/systemd/system/${node}.service <<'EOF'\n${appUnit(node)}EOF\nsystemctl daemon-reload`);
}

/**
 * Who serves port 4369: the unit behind epmd.service (epmd-ng.service when epmd.service is
 * epmd-ng-ready.service) and the user and command of its main process.
 */
async function epmdServer(): Promise<{ id: string; user: string; comm: string }> {
  const name = (await show('epmd.service', 'Id')).Id!;
  const id = name === 'epmd-ng-ready.service' ? 'epmd-ng.service' : name;
  const s = await show(id, 'MainPID');
  expect(Number(s.MainPID), `${id} has a main process`).toBeGreaterThan(0);
  const [user, comm] = (await ok(`ps -o user=,comm= -p ${s.MainPID}`)).trim().split(/\s+/);
  return { id, user: user!, comm: comm! };
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
    for (const f of ['test/packaging/names-poller.cjs', 'test/fixtures/holder.mjs', 'test/fixtures/once-only-node.mjs']) fs.copyFileSync(path.join(repoRoot, f), path.join(share, path.basename(f)));
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
      // A client that registers once with OTP's epmd and never again, as C nodes do.
      await ok('systemd-run -q --unit=holder-c node /host/holder.mjs c 1 /run/holder-c.out');
      await waitNode('c0');
    });

    it('installing epmd-ng takes port 4369, the names and the registered nodes over: every answer to a 50 ms poll lists every node', async () => {
      // Short provisional times, so that the test can show a node outliving them (an admin's drop-in).
      await ok('mkdir -p /etc/systemd/system/epmd-ng.service.d && printf "[Service]\\nEnvironment=EPMD_NG_PROVISIONAL_TTL=6\\n" > /etc/systemd/system/epmd-ng.service.d/ttl.conf');
      const pollFile = path.join(shareDir(name), 'poll-install.jsonl');
      await ok('rm -f /run/poll-stop && systemd-run -q --unit=poller-install node /host/names-poller.cjs /host/poll-install.jsonl /run/poll-stop 50 4369 127.0.0.1,::1');
      // And a flood over IPv6, which the kernel gives to erlang-base's older dual-stack socket
      // until it closes: a connection still queued there then would be reset.
      const floodFiles = [1, 2].map((i) => path.join(shareDir(name), `flood-${i}.jsonl`));
      for (const i of [1, 2]) await ok(`systemd-run -q --unit=poller-flood-${i} node /host/names-poller.cjs /host/flood-${i}.jsonl /run/poll-stop 0 4369 ::1`);
      await waitFor('the poller to start', async () => fs.existsSync(pollFile) && readPolls(pollFile).length >= 5);
      const pollsBefore = readPolls(pollFile).length;
      const out = await ok(`cd /host && apt-get install -y ./${deb} 2>&1`);
      const pollsDuring = readPolls(pollFile).length - pollsBefore;
      await new Promise((r) => setTimeout(r, 3000));
      await ok('touch /run/poll-stop');
      await waitFor('the pollers to finish', async () => (await sh('systemctl is-active poller-install poller-flood-1 poller-flood-2')).stdout.split('\n').every((l) => l !== 'active'));

      expect(out).toContain("epmd-ng: stopping erlang-base's epmd.socket");
      expect(out).toContain("epmd-ng: serving port 4369 beside erlang-base's epmd until it has stopped");
      expect(out).toContain('epmd-ng: took over 2 nodes from the epmd on port 4369');
      // Every poll, over IPv4 and IPv6 in turn, is answered and lists every node, the taken-over
      // once-only client included: epmd-ng's socket listened beside OTP's before OTP's epmd
      // stopped, and the daemon kept its sockets through the enablement (no refused connection).
      const polls = readPolls(pollFile);
      const bad = pollsMissing(polls, ['app', 'c0']);
      console.log(
        `first installation over erlang-base's epmd: ${polls.length} polls (${pollsDuring} while apt ran, ` +
          `${polls.filter((p) => p.host === '::1').length} over IPv6), slowest ${Math.max(...polls.map((p) => p.ms))} ms, ${bad.length} bad`,
      );
      expect(pollsDuring).toBeGreaterThanOrEqual(3);
      expect(bad.slice(0, 10)).toEqual([]);
      // Every connection of the flood was answered with both names: no reset while erlang-base's
      // socket was retired (epmd-ng-handover.service closes it to new connections and waits until
      // OTP's epmd has accepted the queued ones), and none refused.
      const flood = floodFiles.flatMap(readPolls);
      const floodBad = pollsMissing(flood, ['app', 'c0']);
      console.log(`the IPv6 flood meanwhile: ${flood.length} polls, slowest ${Math.max(...flood.map((p) => p.ms))} ms, ${floodBad.length} bad`);
      expect(flood.length).toBeGreaterThan(200);
      expect(floodBad.slice(0, 10)).toEqual([]);
      const handOver = await ok('journalctl -q -o cat -u epmd-ng-handover.service');
      expect(handOver).toContain('(epmd.socket): takes no new connections (their clients try again in 1 s)');
      expect(handOver).toMatch(/accept queues empty after \d+ ms: the epmd serving these sockets can stop/);
      expect((await show('epmd-ng-handover.service', 'ActiveState', 'Result')).Result).toBe('success');
      // The daemon that served during the switch was restarted onto the socket's new sockets.
      expect((await show('epmd-ng.socket', 'ActiveState')).ActiveState).toBe('active');
      expect((await show('epmd-ng-ready.service', 'ActiveState')).ActiveState).toBe('active');

      expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng-ready.service');
      expect((await show('epmd.socket', 'Id')).Id).toBe('epmd-ng.socket');
      expect(await listening()).toEqual(['0.0.0.0:4369', '[::]:4369']);
      // The application was not stopped by the hand-over...
      expect(await show('app.service', 'ActiveState', 'InvocationID')).toEqual({ ActiveState: 'active', InvocationID: appInvocation });
      expect((await sh('pgrep -u epmd -x epmd')).code).not.toBe(0);
      expect(await epmdServer()).toMatchObject({ id: 'epmd-ng.service', comm: 'node' });
      // ...its node registered again with epmd-ng by itself, while the once-only client lost its
      // connection with OTP's epmd and never registered again: it stays, provisional, past its
      // 6 s because the probes find it alive on its port.
      const nodes = async () => (JSON.parse(await ok('epmd-ng names --json')) as { nodes: { name: string; provisional: boolean }[] }).nodes;
      await waitFor('app registered with epmd-ng', async () => (await nodes()).some((n) => n.name === 'app' && !n.provisional), 30_000);
      expect(await ok('cat /run/holder-c.out')).toContain('closed c0');
      await new Promise((r) => setTimeout(r, 8000));
      expect((await nodes()).map((n) => [n.name, n.provisional]).sort()).toEqual([
        ['app', false],
        ['c0', true],
      ]);
      // Once it is gone, the probe finds nothing on its port and the entry goes.
      await ok('systemctl stop holder-c && rm -r /etc/systemd/system/epmd-ng.service.d && systemctl daemon-reload');
      await waitFor('c0 probed away', async () => (await nodes()).every((n) => n.name !== 'c0'), 15_000);
    }, 90_000);

    it('systemctl start epmd and a new Requires=epmd.service application reach epmd-ng', async () => {
      await ok('systemctl start epmd');
      await installApp('app2');
      await ok('systemctl start app2.service');
      await waitNode('app2');
      expect((await show('app2.service', 'Requires')).Requires).toMatch(/\bepmd-ng-ready\.service\b/);
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
      expect(await epmdServer()).toMatchObject({ id: 'epmd-ng.service', comm: 'node' });
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

  describe('erlang-base\'s epmd stuck (SIGSTOP) during the first installation', () => {
    it('take-over and the hand-over each give up after 5 s with one line, and the installation goes on: epmd-ng serves', async () => {
      await ok('systemctl start epmd.socket epmd.service');
      await waitFor("OTP's epmd", async () => (await sh('epmd -names')).code === 0);
      await ok(`kill -STOP ${(await show('epmd.service', 'MainPID')).MainPID}`);
      const t0 = Date.now();
      // take-over's own NAMES connection stays in erlang-base's accept queue, which its stopped
      // epmd never empties: the hand-over's wait runs out.
      const out = await ok(`cd /host && apt-get install -y ./${deb} 2>&1`);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(10_000);
      expect(out).toContain('epmd-ng: the epmd on port 4369 accepts but did not answer within 5 s; nothing taken over');
      expect(out).toContain("epmd-ng: erlang-base's epmd did not accept every queued connection within 5 s; their clients will be reset (journalctl -u epmd-ng-handover.service)");
      expect(await ok('journalctl -q -o cat -u epmd-ng-handover.service')).toMatch(/still queued after 5000 ms/);
      expect((await sh('pgrep -u epmd -x epmd')).code).not.toBe(0);
      expect(await epmdServer()).toMatchObject({ id: 'epmd-ng.service', comm: 'node' });
      // The restarted daemon serves the sockets it kept 1 s longer, for what was queued there.
      await waitFor('the kept sockets to be drained', async () => (await listening()).length === 2);
      expect(await listening()).toEqual(['0.0.0.0:4369', '[::]:4369']);
      expect((await ok('epmd -names')).split('\n')[0]).toBe('epmd: up and running on port 4369 with data:');
      await ok('apt-get purge -y epmd-ng && systemctl reset-failed epmd-ng-handover.service 2>/dev/null; systemctl stop epmd.socket epmd.service');
    }, 90_000);
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
      expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng-ready.service');
      expect(await listening()).toEqual(['0.0.0.0:4369', '[::]:4369']);
    });

    it('installing erlang-base afterwards leaves the names, the port and the enablement with epmd-ng', async () => {
      await ok(`dpkg -i /host/${erlangDeb}`);
      expect((await ok("dpkg-query -W -f '${Status}' erlang-base")).trim()).toBe('install ok installed');
      expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng-ready.service');
      expect((await show('epmd.socket', 'Id')).Id).toBe('epmd-ng.socket');
      expect((await sh('systemctl is-enabled epmd-ng.service epmd-ng.socket epmd-ng-ready.service')).stdout.trim().split('\n')).toEqual(ENABLED);
      expect((await sh('systemctl is-active epmd-ng.socket')).stdout.trim()).toBe('active');
      expect(await listening()).toEqual(['0.0.0.0:4369', '[::]:4369']);
      await ok('systemctl start epmd');
      expect(await epmdServer()).toMatchObject({ id: 'epmd-ng.service', comm: 'node' });
      await installApp('app3');
      await ok('systemctl start app3.service');
      await waitNode('app3');
    });

    it('an upgrade of erlang-base leaves every node listed at every 50 ms poll, served by the same registrations', async () => {
      // A real node with no dependency on epmd.service (erlang-base's postinst restarts epmd.service,
      // and systemd restarts what Requires= it: app3, see below) and a client that registers once
      // and never again, as C nodes do.
      await startNode('r');
      await ok('rm -f /run/holder.out && systemd-run -q --unit=holder node /host/holder.mjs h 1 /run/holder.out');
      await waitFor('r and h0 registered', async () => {
        const listed = await names();
        return listed.includes('h0') && listed.includes('r');
      });
      const app3 = await show('app3.service', 'InvocationID');
      const pollFile = path.join(shareDir(name), 'poll-erlang-base.jsonl');
      await ok('rm -f /run/poll-stop && systemd-run -q --unit=poller-eb node /host/names-poller.cjs /host/poll-erlang-base.jsonl /run/poll-stop 50');
      await waitFor('the poller to start', async () => fs.existsSync(pollFile) && readPolls(pollFile).length >= 5);
      const pollsBefore = readPolls(pollFile).length;

      // Reinstalling the same .deb runs erlang-base's upgrade path: its prerm kills the first
      // process `pgrep epmd` finds when `epmd -kill` fails (refused: nodes are registered), and its
      // postinst runs `systemctl restart epmd.service epmd.socket`, i.e. epmd-ng's two units.
      const out = await ok(`cd /host && apt-get install -y --reinstall ./${erlangDeb} 2>&1`);
      const pollsDuring = readPolls(pollFile).length - pollsBefore;
      await new Promise((r) => setTimeout(r, 3000)); // a dropped node would register again ~2 s later
      await ok('touch /run/poll-stop');
      await waitFor('the poller to finish', async () => (await sh('systemctl is-active poller-eb')).stdout.trim() !== 'active');

      // Nothing named like epmd to kill: the daemon runs as "node".
      expect(out).toContain('Killing epmd... it is not running.');
      const polls = readPolls(pollFile);
      const bad = pollsMissing(polls, ['h0', 'r']);
      console.log(`erlang-base upgrade: ${polls.length} polls (${pollsDuring} while apt ran), slowest ${Math.max(...polls.map((p) => p.ms))} ms, ${bad.length} bad`);
      expect(pollsDuring).toBeGreaterThanOrEqual(3);
      expect(bad.slice(0, 10)).toEqual([]);
      // epmd-ng serves, enabled as before; the registrations are the same ones: the once-only
      // client's connection never closed and the new process adopted each with its creation.
      expect((await sh('systemctl is-enabled epmd-ng.service epmd-ng.socket epmd-ng-ready.service')).stdout.trim().split('\n')).toEqual(ENABLED);
      expect(await epmdServer()).toMatchObject({ id: 'epmd-ng.service', comm: 'node' });
      expect(await ok('cat /run/holder.out')).not.toContain('closed');
      const journal = (await ok('journalctl --no-pager -u epmd-ng.service -o json')).trim().split('\n').map((l) => JSON.parse(l) as JournalEntry);
      const registered = creationsIn(journal, 'register');
      const adopted = creationsIn(journal, 'adopt');
      for (const n of ['h0', 'r']) expect(adopted.get(n), n).toBe(registered.get(n));
      // systemd's rule for Requires=: restarting epmd.service restarted app3, whose node is back.
      expect((await show('app3.service', 'InvocationID')).InvocationID).not.toBe(app3.InvocationID);
      await waitNode('app3', 30_000);
      await ok('systemctl stop erl-r holder');
    }, 90_000);

    it('purging erlang-base while epmd-ng is installed leaves epmd-ng enabled and listening', async () => {
      // erlang-base's prerm stops "epmd.service epmd.socket" (ours) and its purge removes the
      // links it recorded through our aliases; epmd-ng's dpkg trigger puts both back.
      await ok('systemctl stop app3.service && dpkg --purge erlang-base');
      expect((await sh('systemctl is-enabled epmd-ng.service epmd-ng.socket epmd-ng-ready.service')).stdout.trim().split('\n')).toEqual(ENABLED);
      expect((await show('epmd.socket', 'Id')).Id).toBe('epmd-ng.socket');
      expect((await sh('systemctl is-active epmd-ng.socket')).stdout.trim()).toBe('active');
      expect(await listening()).toEqual(['0.0.0.0:4369', '[::]:4369']);
      await ok(`dpkg -i /host/${erlangDeb}`);
      expect((await show('epmd.service', 'Id')).Id).toBe('epmd-ng-ready.service');
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
