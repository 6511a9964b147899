// Restarts lose nothing, on a real systemd 252 (scripts/sdh/): registration connections ride the fd
// store across `systemctl restart`, a watchdog kill and SIGKILL with Restart=on-failure; after
// `systemctl stop` + start the snapshot brings them back as provisional entries. 100 registrations
// come from a client that registers once and never again (as C nodes do), two from real Erlang nodes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerShell, creationsIn, waitFor } from './container.js';
import { installEpmdNg } from './install.js';
import { BOOT_TIMEOUT_MS, STOP_TIMEOUT_MS, bootContainer, containerName, isRoot, requireRoot, stopContainer } from './sdh.js';

const name = containerName('epmd-restart');
const { sh, ok, show, journal } = containerShell(name);
const HELD = 100;
/** Stored fds beside the registrations: the state memfd and a copy of each of the socket unit's two sockets. */
const STORED_EXTRA = 1 + 2;

/** The node names epmd -names lists right now (empty if it could not be asked). */
async function listed(): Promise<string[]> {
  const r = await sh('epmd -names');
  return [...r.stdout.matchAll(/^name (\S+) at port \d+$/gm)].map((m) => m[1]!).sort();
}

/** epmd-ng names --json, with the provisional marks. */
async function listedJson(): Promise<{ name: string; provisional: boolean }[]> {
  return (JSON.parse(await ok('epmd-ng names --json')) as { nodes: { name: string; provisional: boolean }[] }).nodes;
}

const expected = (...erl: string[]) => [...Array.from({ length: HELD }, (_, i) => `c${i}`), ...erl].sort();

/**
 * Polls NAMES every 20 ms inside the container while `action` runs, and returns every answer's
 * node count: a gap in visibility would show up as a short list. -1 is no answer at all (refused,
 * reset, or closed before the port header), which is never mistaken for an empty list.
 */
async function pollDuring(action: string): Promise<number[]> {
  const poller =
    "const net=require('net');const counts=[];let stop=false;" +
    "function ask(){return new Promise(r=>{const s=net.connect(4369,'127.0.0.1',()=>s.write(Buffer.from([0,1,110])));const c=[];s.on('data',d=>c.push(d));s.on('close',()=>{const b=Buffer.concat(c);r(b.length<4?-1:b.subarray(4).toString().split('\\n').filter(Boolean).length)});s.on('error',()=>r(-1))})}" +
    "(async()=>{setTimeout(()=>stop=true,+process.argv[1]);while(!stop){counts.push(await ask());await new Promise(r=>setTimeout(r,20))}console.log(JSON.stringify(counts))})()";
  const [polled] = await Promise.all([
    sh(`node -e "${poller.replace(/"/g, '\\"')}" 4000`),
    (async () => {
      await new Promise((r) => setTimeout(r, 300));
      await ok(action);
    })(),
  ]);
  return JSON.parse(polled.stdout) as number[];
}

/** creation per node from the journal's register and adopt events. */
async function creations(event: 'register' | 'adopt'): Promise<Map<string, number>> {
  return creationsIn(await journal('epmd-ng.service'), event);
}

describe('registrations survive restarts (fd store and snapshots)', () => {
  if (!isRoot()) {
    it('runs as root', () => requireRoot('test/systemd/restart.test.ts'));
    return;
  }

  beforeAll(async () => {
    await bootContainer(name);
    await installEpmdNg(name, ['test/fixtures/holder.mjs']);
    // Two real nodes and the once-only client, each as its own transient service.
    for (const n of ['a', 'b']) await ok(`systemd-run --unit=erl-${n} --setenv=HOME=/root erl -sname ${n} -start_epmd false -noshell -noinput -setcookie c`);
    await ok(`systemd-run --unit=holder node /host/test/fixtures/holder.mjs c ${HELD} /run/holder.out`);
    await waitFor('all nodes registered', async () => (await listed()).length === HELD + 2, 30_000);
  }, BOOT_TIMEOUT_MS);

  afterAll(() => stopContainer(name), STOP_TIMEOUT_MS);

  it('systemctl restart: every node stays visible throughout, with the same creation, on the same connection', async () => {
    const before = await show('epmd-ng.service', 'MainPID');
    const counts = await pollDuring('systemctl restart epmd-ng.service');
    expect((await show('epmd-ng.service', 'MainPID')).MainPID).not.toBe(before.MainPID);
    expect(counts.length).toBeGreaterThan(20);
    expect(counts.filter((c) => c !== HELD + 2)).toEqual([]);
    expect(await listed()).toEqual(expected('a', 'b'));
    expect((await listedJson()).every((n) => !n.provisional)).toBe(true);
    // Creations unchanged: the new process took each registration over with its creation.
    const registered = await creations('register');
    const adopted = await creations('adopt');
    expect(adopted.size).toBe(HELD + 2);
    for (const [node, creation] of adopted) expect(creation, node).toBe(registered.get(node));
    // The client that never re-registers never saw its connections close.
    expect(await ok('cat /run/holder.out')).not.toContain('closed');
    // One stored fd per registration, plus the memfd that describes them and the listening sockets.
    expect(Number((await show('epmd-ng.service', 'NFileDescriptorStore')).NFileDescriptorStore)).toBe(HELD + 2 + STORED_EXTRA);
  });

  it('systemctl restart epmd.service epmd.socket, as erlang-base\'s postinst does: no connection refused or reset, every registration kept', async () => {
    const before = { service: await show('epmd-ng.service', 'MainPID'), socket: await show('epmd-ng.socket', 'ActiveEnterTimestampMonotonic') };
    const counts = await pollDuring('systemctl restart epmd.service epmd.socket');
    // Both really restarted: the socket unit made new sockets.
    expect((await show('epmd-ng.service', 'MainPID')).MainPID).not.toBe(before.service.MainPID);
    expect((await show('epmd-ng.socket', 'ActiveEnterTimestampMonotonic')).ActiveEnterTimestampMonotonic).not.toBe(
      before.socket.ActiveEnterTimestampMonotonic,
    );
    // Not one poll refused, reset (-1) or short: the old sockets kept listening in the fd store.
    expect(counts.length).toBeGreaterThan(20);
    expect(counts.filter((c) => c !== HELD + 2)).toEqual([]);
    const registered = await creations('register');
    const adopted = await creations('adopt');
    for (const [node, creation] of registered) expect(adopted.get(node), node).toBe(creation);
    expect(await ok('cat /run/holder.out')).not.toContain('closed');
    const kept = await journal('epmd-ng.service');
    expect(kept.filter((e) => e.MESSAGE?.includes('kept from before the socket unit restarted')).length).toBe(2);
    // New connections were steered to the new sockets (the kernel accepted the reuseport program).
    expect(kept.filter((e) => e.MESSAGE?.includes('cannot steer'))).toEqual([]);
    // The old sockets are drained and closed: one socket per address again, and out of the store.
    await waitFor('the old sockets closed', async () => (await ok("ss -ltnH 'sport = :4369' | wc -l")).trim() === '2');
    await waitFor('the store back to its size', async () => Number((await show('epmd-ng.service', 'NFileDescriptorStore')).NFileDescriptorStore) === HELD + 2 + STORED_EXTRA);
    // erlang-base's prerm kills what `pgrep epmd` finds: the daemon's process is named node.
    expect((await sh('pgrep epmd')).code).toBe(1);
  });

  it('a node that dies after the restart is still noticed through its connection closing', async () => {
    await ok('systemctl kill -s KILL erl-b.service');
    await waitFor('b gone from NAMES', async () => !(await listed()).includes('b'));
    expect(await listed()).toEqual(expected('a'));
    await waitFor('b out of the fd store', async () => Number((await show('epmd-ng.service', 'NFileDescriptorStore')).NFileDescriptorStore) === HELD + 1 + STORED_EXTRA);
  });

  it('SIGKILL with Restart=on-failure: all registrations are back before READY', async () => {
    const before = await show('epmd-ng.service', 'MainPID', 'NRestarts');
    const counts = await pollDuring('systemctl kill -s KILL --kill-who=main epmd-ng.service');
    await waitFor('the restart', async () => (await show('epmd-ng.service', 'ActiveState')).ActiveState === 'active');
    const after = await show('epmd-ng.service', 'MainPID', 'NRestarts');
    expect(after.MainPID).not.toBe(before.MainPID);
    expect(Number(after.NRestarts)).toBe(Number(before.NRestarts) + 1);
    // Connections made while no process ran wait in the socket's backlog: never a short answer.
    // (The one request the killed process was serving at that instant may be reset: -1.)
    expect(counts.filter((c) => c !== HELD + 1 && c !== -1)).toEqual([]);
    expect(counts.filter((c) => c === -1).length).toBeLessThanOrEqual(1);
    expect(await listed()).toEqual(expected('a'));
    expect(await ok('cat /run/holder.out')).not.toContain('closed');
  });

  it('a watchdog kill: the same', async () => {
    await ok(
      'mkdir -p /run/systemd/system/epmd-ng.service.d && ' +
        "printf '[Service]\\nEnvironment=EPMD_NG_TEST_HOOKS=1\\nWatchdogSec=2\\n' > /run/systemd/system/epmd-ng.service.d/hang.conf && " +
        'systemctl daemon-reload && systemctl restart epmd-ng.service',
    );
    const before = await show('epmd-ng.service', 'MainPID', 'NRestarts');
    await ok('systemctl kill -s SIGUSR2 --kill-who=main epmd-ng.service');
    await waitFor('the watchdog restart', async () => {
      const s = await show('epmd-ng.service', 'MainPID', 'NRestarts', 'ActiveState');
      return s.ActiveState === 'active' && s.MainPID !== before.MainPID && Number(s.NRestarts) > Number(before.NRestarts);
    });
    expect(await ok('journalctl --no-pager -u epmd-ng.service -o cat')).toContain('Watchdog timeout');
    expect(await listed()).toEqual(expected('a'));
    expect(await ok('cat /run/holder.out')).not.toContain('closed');
    await ok('rm -r /run/systemd/system/epmd-ng.service.d && systemctl daemon-reload');
  });

  it('systemctl stop + start: provisional entries at once, and a live node\'s re-registration is accepted', async () => {
    await ok('systemctl stop epmd-ng.service');
    // systemd drops the fd store on stop: every connection closed, the once-only client saw it.
    await waitFor('the client to see its connections close', async () => (await ok('grep -c closed /run/holder.out || true')).trim() === String(HELD));
    // (Node a's retries may start epmd-ng through the socket before this does: the same either way.)
    await ok('systemctl start epmd-ng.service');
    const first = await listedJson();
    expect(first.map((n) => n.name).sort()).toEqual(expected('a'));
    expect(first.filter((n) => n.name.startsWith('c')).every((n) => n.provisional)).toBe(true);
    // The OTP node registers again by itself about 2 s after losing its connection: accepted.
    await waitFor('a registered again', async () => (await listedJson()).some((n) => n.name === 'a' && !n.provisional));
    expect(await ok('journalctl --no-pager -u epmd-ng.service -o cat')).not.toContain('already occupied');
    // The once-only client's nodes answer the probe's handshake with their name and creation: they stay.
    await new Promise((r) => setTimeout(r, 3500));
    const later = await listedJson();
    expect(later.filter((n) => n.provisional).length).toBe(HELD);
    expect(later.map((n) => n.name).sort()).toEqual(expected('a'));
  });

  it('a dead node\'s restored entry is removed by the probe', async () => {
    await ok('systemctl stop epmd-ng.service && systemctl stop holder.service && systemctl start epmd-ng.service');
    // The client's nodes are gone now; their entries are restored all the same (a may be too, until it registers again).
    expect((await listedJson()).filter((n) => n.provisional && n.name.startsWith('c')).length).toBe(HELD);
    await waitFor('the probe to remove the dead entries', async () => (await listedJson()).filter((n) => n.provisional).length === 0, 20_000);
    await waitFor('a back', async () => (await listed()).includes('a'));
    expect(await listed()).toEqual(['a']);
  });

  it('a corrupt snapshot is moved aside and the service starts and serves', async () => {
    await ok('systemctl stop epmd-ng.service && printf \'{"format":"epmd-ng-registry","vers\' > /var/lib/private/epmd-ng/registry.json && systemctl start epmd-ng.service');
    expect((await show('epmd-ng.service', 'ActiveState')).ActiveState).toBe('active');
    expect((await sh('epmd -names')).code).toBe(0);
    expect(await ok('ls /var/lib/private/epmd-ng')).toMatch(/registry\.json\.bad-/);
    const warnings = await journal('epmd-ng.service', '-p warning');
    expect(warnings.some((e) => e.MESSAGE?.includes('registry.json'))).toBe(true);
  });

  it('a read-only state directory is logged, and the service starts and serves', async () => {
    await ok(
      'mkdir -p /run/systemd/system/epmd-ng.service.d && ' +
        "printf '[Service]\\nReadOnlyPaths=/var/lib/private/epmd-ng\\n' > /run/systemd/system/epmd-ng.service.d/ro.conf && " +
        'systemctl daemon-reload && systemctl restart epmd-ng.service',
    );
    await ok('systemd-run --unit=erl-e --setenv=HOME=/root erl -sname e -start_epmd false -noshell -noinput -setcookie c');
    await waitFor('e registered', async () => (await listed()).includes('e'));
    await waitFor('a warning about the snapshot', async () => (await journal('epmd-ng.service', '-p warning')).some((e) => /EROFS|read-only/i.test(e.MESSAGE ?? '')));
    expect((await show('epmd-ng.service', 'ActiveState')).ActiveState).toBe('active');
    await ok('systemctl stop erl-e; rm -r /run/systemd/system/epmd-ng.service.d && systemctl daemon-reload && systemctl restart epmd-ng.service');
  });
});
