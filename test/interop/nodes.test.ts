/**
 * Interop with real Erlang/OTP nodes (erlang-base, OTP 25): nodes register with the daemon under test,
 * find and ping each other through it, survive a daemon restart, and get the protocol's errors.
 * Run against OTP's epmd with EPMD_IMPL=otp to validate the suite itself.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startDaemon, type Daemon } from '../helpers/daemon.js';
import { register, type Registration } from '../helpers/wire.js';
import { namesMap, namesReq, port2Resp, portPlease, recordingProxy, type RecordingProxy } from './epmd.js';
import { launchNode, parseNames, randomCookie, startNode, stopAllNodes, uniqueName, waitFor, type ErlNode } from './erl.js';

const daemons: Daemon[] = [];
const regs: Registration[] = [];
const proxies: RecordingProxy[] = [];

async function daemon(args: string[] = [], port?: number): Promise<Daemon> {
  const d = await startDaemon(args, port === undefined ? {} : { port });
  daemons.push(d);
  return d;
}

afterEach(async () => {
  await stopAllNodes();
  await Promise.all(regs.splice(0).map((r) => r.close()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

const atom = (s: string): string => `'${s.replace(/'/g, "\\'")}'`;

function ping(from: ErlNode, to: ErlNode): Promise<string> {
  return from.eval(`net_adm:ping(${atom(to.node)})`);
}

async function creationOf(n: ErlNode): Promise<number> {
  return Number(await n.eval('erlang:system_info(creation)'));
}

describe('real Erlang nodes against the daemon under test', () => {
  it('nodes register, see each other in NAMES / net_adm:names(), ping each other; creation comes from epmd', async () => {
    const d = await daemon();
    const cookie = randomCookie();
    // c registers through a recording proxy so the ALIVE2 reply (and its creation) can be seen.
    const proxy = await recordingProxy(d.port);
    proxies.push(proxy);
    const [a, b, c] = await Promise.all([
      startNode({ name: uniqueName('ia'), epmdPort: d.port, cookie }),
      startNode({ name: uniqueName('ib'), epmdPort: d.port, cookie }),
      startNode({ name: uniqueName('ic'), epmdPort: proxy.port, cookie }),
    ]);

    // NAMES over the wire: the daemon's own port, then every node with its distribution port.
    const names = await namesReq(d.port);
    expect(names.port).toBe(d.port);
    expect(new Map(names.entries.map((e) => [e.name, e.port]))).toEqual(
      new Map([
        [a.name, a.distPort],
        [b.name, b.distPort],
        [c.name, c.distPort],
      ]),
    );
    expect(names.text).toMatch(/^(name \S+ at port \d+\n){3}$/);

    // PORT_PLEASE2 echoes what a real OTP 25 node sent in its ALIVE2_REQ (type 77, versions 6/5, no extra).
    expect((await portPlease(d.port, a.name)).toString('hex')).toBe(port2Resp(a.name, a.distPort).toString('hex'));

    // The implementation's own CLI.
    const cli = await runCli(['-port', String(d.port), '-names']);
    expect(cli.code).toBe(0);
    expect(cli.stdout.startsWith(`epmd: up and running on port ${d.port} with data:\n`)).toBe(true);
    for (const n of [a, b, c]) expect(cli.stdout).toContain(`name ${n.name} at port ${n.distPort}\n`);

    // Distribution through the daemon: port_please + connect.
    expect(await ping(a, b)).toBe('pong');
    expect(await ping(b, a)).toBe('pong');
    expect(await ping(c, a)).toBe('pong'); // c looks a up through the proxy
    expect(await ping(b, c)).toBe('pong');
    expect(await a.eval(`erl_epmd:port_please(${atom(b.name)}, "localhost")`)).toBe(`{port,${b.distPort},6}`);
    expect(await a.eval('erl_epmd:port_please("nonexistent_node_xyz", "localhost")')).toBe('noport');

    // net_adm:names() only works because NAMES starts with the port the node used to reach epmd.
    for (const n of [a, b]) {
      const printed = await n.eval('net_adm:names()');
      const seen = parseNames(printed);
      expect(seen, printed).not.toBeNull();
      expect(seen!.get(a.name)).toBe(a.distPort);
      expect(seen!.get(b.name)).toBe(b.distPort);
      expect(seen!.get(c.name)).toBe(c.distPort);
    }
    // ...and fails for c, which reached epmd through the proxy's port: epmd reports its own port (G-I).
    expect(await c.eval('net_adm:names()')).toBe('{error,address}');

    // Creation: the node's creation is the one epmd returned in ALIVE2_X_RESP (32-bit, > 3).
    const viaProxy = proxy.alive2Creation(c.name);
    expect(viaProxy).toBeDefined();
    expect(await creationOf(c)).toBe(viaProxy);
    for (const n of [a, b, c]) {
      const cr = await creationOf(n);
      expect(cr).toBe(n.creation);
      expect(Number.isInteger(cr)).toBe(true);
      expect(cr).toBeGreaterThan(3);
      expect(cr).toBeLessThan(2 ** 32);
    }

    // A node that dies is unregistered; the next registration of its name gets a newer creation.
    await a.stop();
    expect(await waitFor(async () => !(await namesMap(d.port)).has(a.name), 3000, 50)).toBeGreaterThanOrEqual(0);
    const again = await register(d.port, { name: a.name, port: 40001 });
    regs.push(again);
    expect(again.reply.subarray(0, 2).toString('hex')).toBe('7600');
    expect(again.reply.readUInt32BE(2)).toBeGreaterThan(a.creation);
    expect((await namesMap(d.port)).get(a.name)).toBe(40001);
    // b's cached connection to a is gone; a lookup now sees the raw registration's port.
    expect(await b.eval(`erl_epmd:port_please(${atom(a.name)}, "localhost")`)).toBe('{port,40001,6}');
  });

  it('a node re-registers by itself after its epmd is restarted on the same port', async () => {
    const d1 = await daemon();
    const cookie = randomCookie();
    const [x, y] = await Promise.all([
      startNode({ name: uniqueName('rx'), epmdPort: d1.port, cookie }),
      startNode({ name: uniqueName('ry'), epmdPort: d1.port, cookie }),
    ]);
    const before = await namesMap(d1.port);
    expect(before.get(x.name)).toBe(x.distPort);
    expect(before.get(y.name)).toBe(y.distPort);

    // Stop the daemon by PID and start a fresh one of the same implementation on the same port.
    await d1.stop();
    expect(d1.proc.exitCode !== null || d1.proc.signalCode !== null).toBe(true);
    const d2 = await daemon([], d1.port);
    expect(d2.pid).not.toBe(d1.pid);
    expect((await namesReq(d2.port)).entries).toEqual([]);

    // OTP ≥ 24 nodes retry 2 s after losing the connection, then every 2 s.
    const elapsed = await waitFor(async () => {
      const m = await namesMap(d2.port);
      return m.get(x.name) === x.distPort && m.get(y.name) === y.distPort;
    }, 10_000, 100);
    expect(elapsed, `nodes did not re-register; NAMES: ${JSON.stringify([...(await namesMap(d2.port))])}`).toBeGreaterThanOrEqual(0);

    // y has never talked to x: this ping needs a lookup through the new daemon.
    expect(await y.eval('nodes()')).toBe('[]');
    expect(await ping(y, x)).toBe('pong');
    // The node keeps its original creation (it ignores the one returned on re-registration).
    expect(await creationOf(x)).toBe(x.creation);
    const seen = parseNames(await x.eval('net_adm:names()'));
    expect(seen?.get(x.name)).toBe(x.distPort);
    expect(seen?.get(y.name)).toBe(y.distPort);
  });

  it('a second node with the same name is refused and the first stays registered', async () => {
    const d = await daemon();
    const cookie = randomCookie();
    const name = uniqueName('dup');
    const first = await startNode({ name, epmdPort: d.port, cookie });

    const second = await launchNode({ name, epmdPort: d.port, cookie });
    await expect(second.ready).rejects.toThrow(/seems to be in use by another Erlang node/);
    const st = await second.exited;
    expect(st.code).not.toBe(0);
    expect(second.output()).toContain(`the name ${first.node} seems to be in use by another Erlang node`);

    const names = await namesReq(d.port);
    expect(names.entries.filter((e) => e.name === name)).toEqual([{ name, port: first.distPort }]);
    expect((await portPlease(d.port, name)).toString('hex')).toBe(port2Resp(name, first.distPort).toString('hex'));

    const other = await startNode({ name: uniqueName('dupo'), epmdPort: d.port, cookie });
    expect(await ping(other, first)).toBe('pong');
    expect(first.running).toBe(true);
    expect(await creationOf(first)).toBe(first.creation);
  });

  it('a hidden node registers, is listed and reachable', async () => {
    const d = await daemon();
    const cookie = randomCookie();
    const [h, n] = await Promise.all([
      startNode({ name: uniqueName('hid'), epmdPort: d.port, cookie, hidden: true }),
      startNode({ name: uniqueName('vis'), epmdPort: d.port, cookie }),
    ]);
    const names = await namesMap(d.port);
    expect(names.get(h.name)).toBe(h.distPort);
    expect(names.get(n.name)).toBe(n.distPort);
    // OTP registers hidden nodes with node type 77 too (G-I conn8); epmd echoes it.
    expect((await portPlease(d.port, h.name)).toString('hex')).toBe(port2Resp(h.name, h.distPort, 77).toString('hex'));

    const cli = await runCli(['-port', String(d.port), '-names']);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(`name ${h.name} at port ${h.distPort}\n`);

    expect(await ping(n, h)).toBe('pong');
    expect(await n.eval('nodes()')).toBe('[]');
    expect(await n.eval('nodes(hidden)')).toBe(`[${h.node}]`);
    expect(parseNames(await h.eval('net_adm:names()'))?.get(n.name)).toBe(n.distPort);
    expect(parseNames(await n.eval('net_adm:names()'))?.get(h.name)).toBe(h.distPort);
  });
});
