// epmd-ng as a systemd service on a real systemd 252 (Debian 12 in systemd-nspawn, scripts/sdh/):
// the shipped units, socket activation, Type=notify readiness, status, journal priorities, reload,
// stop, the watchdog, an application unit with Requires=epmd.service, hardening, and the drop-in
// that opens the port to other hosts. Needs root (the test command runs as root).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerShell, pingByHostName, waitFor } from './container.js';
import { installEpmdNg } from './install.js';
import { createRemote, debianHosts, HOST_V4, HOST_V6, type RemoteHost } from '../helpers/netlab.js';
import { frame } from '../helpers/wire.js';
import { BOOT_TIMEOUT_MS, STOP_TIMEOUT_MS, bootContainer, containerName, execIn, isRoot, leaderPid, requireRoot, stopContainer } from './sdh.js';

const name = containerName('epmd-svc');

const { sh, ok, show, journal } = containerShell(name);
const NAMES = frame(Buffer.from('n'));
const OTHER_SUBNET_V4 = '198.51.100.1';
/** The container's /etc/hosts as Debian's installer writes it, with `nameLine` for the host name. */
const setHosts = (nameLine: string) => ok(`echo ${Buffer.from(debianHosts(nameLine)).toString('base64')} | base64 -d > /etc/hosts`);

/** NAMES over TCP from inside the container, to any address (node 18 from Debian). */
function namesVia(host: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const js = `const s=require('net').connect(4369,'${host}',()=>s.write(Buffer.from([0,1,110])));const c=[];s.on('data',d=>c.push(d));s.on('close',()=>{const b=Buffer.concat(c);console.log(b.readUInt32BE(0)+' '+b.subarray(4).toString())});s.on('error',e=>{console.error(e.code);process.exit(2)})`;
  return execIn(name, ['node', '-e', js]);
}

describe('epmd-ng under a real systemd', () => {
  if (!isRoot()) {
    it('runs as root', () => requireRoot('test/systemd/service.test.ts'));
    return;
  }

  // Another machine on a link to the container, which gets HOST_V4 and HOST_V6 on its end.
  let remote: RemoteHost;
  const fromRemote = (address: string) => remote.fromRemote.probe({ host: address, port: 4369, request: NAMES });

  beforeAll(async () => {
    await bootContainer(name);
    await installEpmdNg(name);
    remote = await createRemote(leaderPid(name));
    const link = remote.targetLink;
    await ok(`ip addr add ${HOST_V4}/24 dev ${link} && ip -6 addr add ${HOST_V6}/64 dev ${link} nodad && ip link set ${link} up`);
  }, BOOT_TIMEOUT_MS);

  afterAll(async () => {
    await remote?.close();
    await stopContainer(name);
  }, STOP_TIMEOUT_MS);

  it('listens on every address through the socket unit while the service is still inactive', async () => {
    expect((await sh('systemctl is-active epmd-ng.socket')).stdout.trim()).toBe('active');
    expect((await sh('systemctl is-active epmd-ng.service')).stdout.trim()).toBe('inactive');
    const listening = await ok("ss -ltnH | awk '{print $4}' | sort");
    expect(listening.trim().split('\n')).toEqual(['0.0.0.0:4369', '[::]:4369']);
    // The aliases point at epmd-ng's units, so `systemctl start epmd` and Requires=epmd.service
    // reach it: epmd.service is epmd-ng-ready.service, which brings the daemon up.
    expect((await ok('systemctl show -p Id epmd.service')).trim()).toBe('Id=epmd-ng-ready.service');
    expect((await ok('systemctl show -p Id epmd.socket')).trim()).toBe('Id=epmd-ng.socket');
  });

  it('answers the first client, and systemd reports it active only after READY=1', async () => {
    const names = await sh('epmd -names');
    expect(names.code).toBe(0);
    expect(names.stdout).toBe('epmd: up and running on port 4369 with data:\n');
    const s = await show('epmd-ng.service', 'ActiveState', 'StatusText');
    expect(s.ActiveState).toBe('active');
    expect(s.StatusText).toMatch(/^Serving 0 nodes \(0 provisional\) on port 4369 for this host only \(every local address\); \d+ connections? open$/);
    // Type=notify: the unit became active after the daemon had its sockets up and said so. The
    // entry's send time counts (_SOURCE_REALTIME_TIMESTAMP, the kernel's stamp on the native
    // datagram), not when a busy journald got round to reading it (__MONOTONIC_TIMESTAMP).
    const listening = (await journal('epmd-ng.service')).find((e) => e.MESSAGE?.startsWith('listening on'));
    expect(listening?._TRANSPORT).toBe('journal');
    const usec = async (iface: string, prop: string) =>
      Number((await ok(`busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1/unit/epmd_2dng_2eservice org.freedesktop.systemd1.${iface} ${prop}`)).split(' ')[1]);
    const started = await usec('Service', 'ExecMainStartTimestamp');
    const logged = Number(listening!._SOURCE_REALTIME_TIMESTAMP);
    const active = await usec('Unit', 'ActiveEnterTimestamp');
    expect(started).toBeGreaterThan(0);
    expect(started).toBeLessThan(logged);
    // journald stamps the line when it reads the daemon's stderr, PID 1 stamps READY=1 when it reads
    // the notify socket: the line is written first, but the two readers race by a few milliseconds.
    expect(logged).toBeLessThanOrEqual(active + 100_000);
  });

  it('runs as the unit\'s dynamic user with no capabilities, under the hardening', async () => {
    const pid = (await show('epmd-ng.service', 'MainPID')).MainPID!;
    expect(Number(pid)).toBeGreaterThan(0);
    const user = (await ok(`ps -o user= -p ${pid}`)).trim();
    expect(user).not.toBe('root');
    const status = await ok(`cat /proc/${pid}/status`);
    expect(status).toMatch(/^CapEff:\s+0000000000000000$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    const security = await sh('systemd-analyze security epmd-ng.service --no-pager | tail -1');
    const score = Number(/exposure level for epmd-ng\.service: ([\d.]+)/.exec(security.stdout)?.[1]);
    expect(score).toBeLessThanOrEqual(1.5);
  });

  it('registers a real Erlang node through the activated socket; epmd -names and STATUS show it', async () => {
    await ok('systemd-run --unit=erl-a --setenv=HOME=/root erl -sname a -start_epmd false -noshell -noinput -setcookie c');
    await waitFor('node a in epmd -names', async () => /^name a at port \d+$/m.test((await sh('epmd -names')).stdout));
    const json = JSON.parse(await ok('epmd-ng names --json')) as { port: number; nodes: { name: string }[] };
    expect(json.port).toBe(4369);
    expect(json.nodes.map((n) => n.name)).toEqual(['a']);
    await waitFor('STATUS with one node', async () => (await show('epmd-ng.service', 'StatusText')).StatusText!.startsWith('Serving 1 node (0 provisional) on'));
    await ok('systemctl stop erl-a');
  });

  it("with Debian's stock /etc/hosts, a -sname node finds another by the host name (127.0.1.1), by the host's own address, and through an address added later", async () => {
    const host = (await ok('hostname')).trim();
    expect((await ok(`getent hosts ${host}`)).trim().split(/\s+/)[0]).toBe('127.0.1.1');
    await ok('systemd-run --unit=erl-c --setenv=HOME=/root erl -sname c -start_epmd false -noshell -noinput -setcookie c');
    await waitFor('node c in epmd -names', async () => /^name c at port/m.test((await sh('epmd -names')).stdout));
    const ping = async () => (await ok(pingByHostName('c'))).trim();
    expect(await ping()).toBe('pong');
    // The host name on the host's own address instead, as on clouds and RHEL.
    await setHosts(`${HOST_V4}\t${host}`);
    expect((await ok(`getent hosts ${host}`)).trim().split(/\s+/)[0]).toBe(HOST_V4);
    expect(await ping()).toBe('pong');
    // An address configured while epmd-ng runs is served to the host at once, and to nobody else.
    await ok(`ip addr add ${OTHER_SUBNET_V4}/24 dev ${remote.targetLink}`);
    expect((await namesVia(OTHER_SUBNET_V4)).stdout.trim()).toBe('4369 name c at port ' + /name c at port (\d+)/.exec((await sh('epmd -names')).stdout)![1]);
    for (const address of [HOST_V4, HOST_V6]) expect(await fromRemote(address)).toEqual({ connected: false, recv: '', end: 'no-handshake' });
    await ok(`ip addr del ${OTHER_SUBNET_V4}/24 dev ${remote.targetLink}`);
    await setHosts(`127.0.1.1\t${host}`);
    await ok('systemctl stop erl-c');
  });

  it('epmd-ng-filter.service run again beside the daemon (as a socket restart does) leaves the shared sockets non-blocking', async () => {
    const { MainPID } = await show('epmd-ng.service', 'MainPID');
    await ok('systemctl start epmd-ng-filter.service');
    expect((await ok("journalctl -u epmd-ng-filter.service --no-pager -o cat | grep '^epmd-ng: fd' | tail -2")).trim().split('\n')).toEqual([
      'epmd-ng: fd 3 (epmd-local): this host only, filter attached',
      'epmd-ng: fd 4 (epmd-local): this host only, filter attached',
    ]);
    // systemd makes passed sockets blocking unless NonBlocking=yes; the daemon's accept() would then block.
    for (const fd of [3, 4]) {
      const flags = /^flags:\s+(\d+)$/m.exec(await ok(`cat /proc/${MainPID}/fdinfo/${fd}`))?.[1];
      expect(parseInt(flags!, 8) & 0o4000, `fd ${fd} flags ${flags}`).toBe(0o4000);
    }
    for (let i = 0; i < 3; i++) expect((await namesVia('127.0.0.1')).code).toBe(0);
    expect((await show('epmd-ng.service', 'MainPID')).MainPID).toBe(MainPID);
  });

  it('writes readable journal entries with real priorities, so journalctl -p warning filters', async () => {
    // A malformed packet: a protocol violation, logged at warning level.
    await sh("printf '\\000\\000' > /dev/tcp/127.0.0.1/4369; sleep 0.3");
    const all = await journal('epmd-ng.service');
    const registered = all.find((e) => e.EPMD_EVENT === 'register');
    expect(registered?.PRIORITY).toBe('6');
    expect(registered?.MESSAGE).toMatch(/^node a registered: port \d+, creation \d+, from 127\.0\.0\.1:\d+/);
    const violation = all.find((e) => e.MESSAGE?.includes('invalid packet size'));
    expect(violation?.PRIORITY).toBe('4');
    const warnings = await journal('epmd-ng.service', '-p warning');
    expect(warnings.some((e) => e.MESSAGE?.includes('invalid packet size'))).toBe(true);
    expect(warnings.some((e) => e.EPMD_EVENT === 'register')).toBe(false);
  });

  it('systemctl reload re-reads the settings file and stays active with the same process', async () => {
    const before = await show('epmd-ng.service', 'MainPID');
    await ok("echo 'EPMD_NG_LOG_LEVEL=debug' > /etc/default/epmd-ng && systemctl reload epmd-ng.service");
    const after = await show('epmd-ng.service', 'MainPID', 'ActiveState');
    expect(after.ActiveState).toBe('active');
    expect(after.MainPID).toBe(before.MainPID);
    const reloaded = (await journal('epmd-ng.service')).filter((e) => e.MESSAGE?.startsWith('reloaded'));
    expect(reloaded.at(-1)?.EPMD_LOG_LEVEL).toBe('debug');
    // Debug level is in force: each request is now logged.
    await sh('epmd -names');
    await waitFor('a debug entry', async () => (await journal('epmd-ng.service', '-p debug')).some((e) => e.EPMD_REQUEST === 'names'));
    await ok('rm /etc/default/epmd-ng');
  });

  it('an application with Requires=/After=epmd.service starts after epmd is ready; a crash or restart of the daemon leaves it alone, epmd.service\'s restart and stop reach it', async () => {
    await ok('cp /usr/share/doc/epmd-ng/examples/erlang-app.service /etc/systemd/system/ && systemctl daemon-reload');
    await ok('systemctl stop epmd');
    expect((await sh('systemctl is-active epmd-ng.service epmd-ng-ready.service')).stdout.split('\n').slice(0, 2)).toEqual(['inactive', 'inactive']);
    await ok('systemctl start erlang-app.service');
    const epmd = await show('epmd-ng.service', 'ActiveState', 'ActiveEnterTimestampMonotonic');
    const app = await show('erlang-app.service', 'ActiveState', 'ExecMainStartTimestampMonotonic', 'InvocationID', 'MainPID');
    expect(epmd.ActiveState).toBe('active');
    expect(Number(app.ExecMainStartTimestampMonotonic)).toBeGreaterThanOrEqual(Number(epmd.ActiveEnterTimestampMonotonic));
    await waitFor('node example registered', async () => /^name example at port/m.test((await sh('epmd -names')).stdout));
    const unchanged = async () => expect(await show('erlang-app.service', 'ActiveState', 'InvocationID', 'MainPID')).toEqual({ ActiveState: 'active', InvocationID: app.InvocationID, MainPID: app.MainPID });

    // The daemon crashes (SIGKILL) and Restart= brings it back; then it is restarted by hand: the
    // application keeps running both times, and its node stays registered (fd store).
    const daemon = await show('epmd-ng.service', 'MainPID', 'NRestarts');
    await ok('systemctl kill -s KILL --kill-who=main epmd-ng.service');
    await waitFor('the daemon restarted', async () => (await show('epmd-ng.service', 'ActiveState', 'NRestarts')).NRestarts !== daemon.NRestarts);
    expect((await ok('epmd -names')).trim()).toMatch(/^name example at port \d+$/m);
    await ok('systemctl restart epmd-ng.service');
    expect((await show('epmd-ng.service', 'MainPID')).MainPID).not.toBe(daemon.MainPID);
    expect((await ok('epmd -names')).trim()).toMatch(/^name example at port \d+$/m);
    await unchanged();
    expect((await sh('systemctl is-active epmd.service')).stdout.trim()).toBe('active');
    // `systemctl reload epmd` reaches the daemon (PropagatesReloadTo=).
    const reloads = (await journal('epmd-ng.service')).filter((e) => e.MESSAGE?.startsWith('reloaded')).length;
    await ok('systemctl reload epmd');
    await waitFor('the daemon reloaded', async () => (await journal('epmd-ng.service')).filter((e) => e.MESSAGE?.startsWith('reloaded')).length > reloads);
    await unchanged();

    // systemd.unit(5): a unit that Requires= another is restarted when that one is restarted...
    const before = (await show('epmd-ng.service', 'MainPID')).MainPID;
    await ok('systemctl restart epmd');
    const restarted = await show('erlang-app.service', 'ActiveState', 'InvocationID');
    expect(restarted.ActiveState).toBe('active');
    expect(restarted.InvocationID).not.toBe(app.InvocationID);
    expect((await show('epmd-ng.service', 'MainPID')).MainPID).not.toBe(before);
    await waitFor('node example registered again', async () => /^name example at port/m.test((await sh('epmd -names')).stdout));
    // ...and stopped when it is stopped; the daemon stops with epmd.service (PartOf=).
    await ok('systemctl stop epmd');
    expect((await sh('systemctl is-active erlang-app.service epmd-ng.service')).stdout.split('\n').slice(0, 2)).toEqual(['inactive', 'inactive']);
  });

  it('a daemon that cannot start fails epmd.service, and with it the application, instead of starting it without an epmd', async () => {
    await ok(
      'mkdir -p /run/systemd/system/epmd-ng.service.d && ' +
        "printf '[Service]\nEnvironment=EPMD_NG_OPTS=-no_such_flag\n' > /run/systemd/system/epmd-ng.service.d/bad.conf && systemctl daemon-reload",
    );
    const started = await sh('systemctl start erlang-app.service');
    expect(started.code).not.toBe(0);
    expect(await show('epmd-ng-ready.service', 'ActiveState', 'Result')).toEqual({ ActiveState: 'failed', Result: 'exit-code' });
    expect((await sh('systemctl is-active erlang-app.service')).stdout.trim()).not.toBe('active');
    expect(await ok('journalctl --no-pager -u epmd-ng.service -o cat')).toContain('-no_such_flag');
    // The start limit stopped the socket too (systemd's rule for a service that fails for good).
    await ok('rm -r /run/systemd/system/epmd-ng.service.d && systemctl daemon-reload && systemctl reset-failed epmd-ng.service epmd-ng-ready.service epmd-ng.socket');
    await ok('systemctl start epmd-ng.socket erlang-app.service && systemctl stop erlang-app.service');
    expect((await sh('epmd -names')).code).toBe(0);
  });

  it('systemctl stop: STOPPING, an orderly exit with status 0', async () => {
    await ok('epmd -names >/dev/null && systemctl stop epmd-ng.service');
    const s = await show('epmd-ng.service', 'ActiveState', 'Result', 'ExecMainStatus');
    expect(s).toMatchObject({ ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0' });
    const stopping = (await journal('epmd-ng.service')).filter((e) => e.MESSAGE?.startsWith('stopping'));
    expect(stopping.at(-1)?.EPMD_REASON).toBe('SIGTERM');
  });

  it('a hung event loop is caught by the watchdog: killed with SIGABRT and restarted', async () => {
    await ok(
      'mkdir -p /run/systemd/system/epmd-ng.service.d && ' +
        "printf '[Service]\\nEnvironment=EPMD_NG_TEST_HOOKS=1\\nWatchdogSec=2\\n' > /run/systemd/system/epmd-ng.service.d/hang.conf && " +
        'systemctl daemon-reload && systemctl start epmd-ng.service',
    );
    const before = await show('epmd-ng.service', 'MainPID', 'NRestarts');
    await ok('systemctl kill -s SIGUSR2 --kill-who=main epmd-ng.service');
    await waitFor('a restart after the watchdog fired', async () => {
      const s = await show('epmd-ng.service', 'MainPID', 'NRestarts', 'ActiveState');
      return s.ActiveState === 'active' && s.MainPID !== before.MainPID && Number(s.NRestarts) > Number(before.NRestarts);
    });
    const log = await ok('journalctl --no-pager -u epmd-ng.service -o cat');
    expect(log).toContain('Watchdog timeout');
    expect(log).toMatch(/code=dumped, status=6\/ABRT|status=6\/ABRT/);
    expect((await sh('epmd -names')).code).toBe(0);
    await ok('rm -r /run/systemd/system/epmd-ng.service.d && systemctl daemon-reload && systemctl restart epmd-ng.service');
  });

  it("keeps the socket unit's Backlog= once the service has taken its sockets over", async () => {
    // Node's listen() on a socket it is handed would cut the backlog to 511 (see serveFd).
    const backlogs = async () => (await ok("ss -ltnH sport = :4369 | awk '{print $3}'")).trim().split('\n');
    const restartSocket = 'systemctl daemon-reload && systemctl stop epmd-ng.service && systemctl restart epmd-ng.socket';
    expect((await sh('epmd -names')).code).toBe(0);
    expect(await backlogs()).toEqual(['4096', '4096']);
    await ok(`mkdir -p /run/systemd/system/epmd-ng.socket.d && printf '[Socket]\\nBacklog=1000\\n' > /run/systemd/system/epmd-ng.socket.d/backlog.conf && ${restartSocket}`);
    expect(await backlogs()).toEqual(['1000', '1000']);
    expect((await sh('epmd -names')).code).toBe(0);
    expect((await show('epmd-ng.service', 'ActiveState')).ActiveState).toBe('active');
    expect(await backlogs()).toEqual(['1000', '1000']);
    await ok(`rm -r /run/systemd/system/epmd-ng.socket.d && ${restartSocket}`);
    expect((await sh('epmd -names')).code).toBe(0);
    expect(await backlogs()).toEqual(['4096', '4096']);
  });

  it('the documented drop-in opens port 4369 to other hosts', async () => {
    expect(await fromRemote(HOST_V4)).toEqual({ connected: false, recv: '', end: 'no-handshake' });
    await ok(
      'mkdir -p /etc/systemd/system/epmd-ng.socket.d && cp /usr/share/doc/epmd-ng/examples/epmd-ng-remote.conf /etc/systemd/system/epmd-ng.socket.d/remote.conf && ' +
        'systemctl daemon-reload && systemctl stop epmd-ng.service && systemctl restart epmd-ng.socket',
    );
    const listening = await ok("ss -ltnH sport = :4369 | awk '{print $4}'");
    expect(listening.trim().split('\n')).toEqual(['*:4369']);
    // A new socket, without the filter, and named for everyone: the remote host is answered (its
    // connection starts the service, which takes a moment on a busy machine).
    expect((await remote.fromRemote.probe({ host: HOST_V4, port: 4369, request: NAMES, waitMs: 10_000 })).recv).toBe('00001111');
    expect((await fromRemote(HOST_V6)).recv).toBe('00001111');
    // Loopback still works, and IPv4 loopback on the dual-stack socket still counts as local.
    await ok('systemd-run --unit=erl-b --setenv=HOME=/root erl -sname b -start_epmd false -noshell -noinput -setcookie c');
    await waitFor('node b registered over the dual-stack socket', async () => /^name b at port/m.test((await sh('epmd -names')).stdout));
    await ok('systemctl stop erl-b; rm -r /etc/systemd/system/epmd-ng.socket.d; systemctl daemon-reload; systemctl stop epmd-ng.service; systemctl restart epmd-ng.socket');
    // Back to this host only once the service has attached its filter to the new sockets.
    expect((await sh('epmd -names')).code).toBe(0);
    expect(await fromRemote(HOST_V4)).toEqual({ connected: false, recv: '', end: 'no-handshake' });
  });

  it('a drop-in that lists a host address but keeps the name epmd-local: this host only, and the journal says why', async () => {
    const restart = 'systemctl daemon-reload && systemctl stop epmd-ng.service && systemctl restart epmd-ng.socket';
    const warning = async () => (await journal('epmd-ng.service', '-p warning')).filter((e) => e.MESSAGE?.includes('FileDescriptorName='));
    expect(await warning()).toEqual([]);
    await ok(`mkdir -p /etc/systemd/system/epmd-ng.socket.d && printf '[Socket]\\nListenStream=\\nListenStream=${HOST_V4}:4369\\n' > /etc/systemd/system/epmd-ng.socket.d/address.conf && ${restart}`);
    try {
      // This host is served at that address (its connection starts the service); the other host
      // gets no handshake, because of the name.
      expect((await namesVia(HOST_V4)).stdout).toMatch(/^4369 /);
      expect(await fromRemote(HOST_V4)).toEqual({ connected: false, recv: '', end: 'no-handshake' });
      await waitFor('the warning in the journal', async () => (await warning()).length === 1, 10_000);
      expect((await warning())[0]!.MESSAGE).toBe(
        `${HOST_V4}:4369 is named epmd-local, so only this host is served there and other hosts get no answer; to serve them, give the socket unit another FileDescriptorName= (see epmd-ng-remote.conf in the package's examples) (addresses=${HOST_V4}:4369)`,
      );
      expect((await show('epmd-ng.service', 'StatusText')).StatusText).toMatch(new RegExp(`^Serving \\d+ nodes? \\(\\d+ provisional\\) on ${HOST_V4.replace(/\./g, '\\.')}:4369: this host only; `));
    } finally {
      await ok(`rm -r /etc/systemd/system/epmd-ng.socket.d && ${restart}`);
    }
    expect((await sh('epmd -names')).code).toBe(0);
  });
});
