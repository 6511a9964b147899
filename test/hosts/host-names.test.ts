// A node is found through every name of its host, and other hosts get nothing (issue: host
// names). Real `erl` nodes on a "host" made of network, UTS and mount namespaces (its own host
// name and /etc/hosts, a veth link with an IPv4 and an IPv6 address), and a second namespace as
// another host on the same link (test/helpers/netlab.ts). Each case runs against epmd-ng and
// against OTP's epmd: the lookups must work with both; the remote cases are where epmd-ng differs
// (OTP's epmd answers every host).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bundle, cleanEnv, copyBundle } from '../helpers/daemon.js';
import { createLab, debianHosts, HOST_V4, HOST_V6, type HostLab, type ProbeResult } from '../helpers/netlab.js';
import { alive2Payload, frame } from '../helpers/wire.js';
import { randomCookie, startNode, stopAllNodes, type ErlNode, type NodeOptions } from '../interop/erl.js';

/** Inside the lab the network namespaces are the test's own, so epmd's usual port is free. */
const PORT = 4369;
const NAMES = frame(Buffer.from('n'));
const portPlease = (name: string) => frame(Buffer.from(`z${name}`));
const ALIVE2 = frame(alive2Payload({ port: 5555, name: 'intruder' }));
/** NAMES reply header: the port, 4369. */
const NAMES_HEADER = '00001111';
const SECONDARY_V4 = '192.0.2.3';
const OTHER_SUBNET_V4 = '198.51.100.1';
const LATE_V4 = '192.0.2.9';

const IMPLS = [
  { id: 'epmd-ng', command: [process.execPath, bundle] },
  { id: 'OTP epmd', command: ['/usr/bin/epmd'] },
] as const;

describe.each(IMPLS)('$id on a host with real host names', ({ id, command }) => {
  if (process.getuid?.() !== 0) {
    it('runs as root', () => {
      throw new Error('test/hosts needs root for network namespaces; run the test command as root');
    });
    return;
  }
  const ours = id === 'epmd-ng';
  let lab: HostLab;
  const daemons: ChildProcess[] = [];
  const cookie = randomCookie();

  beforeAll(async () => {
    lab = await createLab();
  }, 30_000);
  afterEach(async () => {
    await stopAllNodes();
    for (const d of daemons.splice(0)) await stop(d);
  });
  afterAll(async () => {
    await lab?.close();
  });

  async function stop(proc: ChildProcess): Promise<void> {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await gone;
  }

  function run(prefix: string[], env: Record<string, string> = {}): { proc: ChildProcess; output: () => string } {
    const [cmd, ...args] = prefix;
    const proc = spawn(cmd!, args, { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    daemons.push(proc);
    return { proc, output: () => output };
  }

  /** Starts the daemon on the host and waits until it answers NAMES on 127.0.0.1. */
  async function startEpmd(args: string[] = [], prefix = lab.onHost, withCommand = true): Promise<{ proc: ChildProcess; output: () => string }> {
    const started = run([...prefix, ...(withCommand ? command : []), '-port', String(PORT), ...args]);
    for (let i = 0; i < 100; i++) {
      const r = await lab.fromHost.probe({ host: '127.0.0.1', port: PORT, request: NAMES, waitMs: 500 });
      if (r.recv.startsWith(NAMES_HEADER)) return started;
      if (started.proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${id} did not start on the lab host: ${started.output()}`);
  }

  const node = (name: string, extra: Partial<NodeOptions> = {}): Promise<ErlNode> =>
    startNode({ name, epmdPort: PORT, cookie, wrapper: lab.onHost, realHost: true, ...extra });

  /** Node b finds node a by a's full name, as `rabbitmqctl` or `bin/app remote` would. */
  async function pingAcross(extra: Partial<NodeOptions> = {}): Promise<void> {
    const a = await node('a', extra);
    const b = await node('b', extra);
    expect(a.node).toMatch(/^a@epmdhost(\.|$)/);
    expect(await b.eval(`net_adm:ping('${a.node}')`)).toBe('pong');
  }

  /** PORT_PLEASE2 for `name` sent from the host to `address`: true when the node's port came back. */
  async function found(address: string, name: string): Promise<boolean> {
    const r = await lab.fromHost.probe({ host: address, port: PORT, request: portPlease(name) });
    return r.recv.startsWith('7700');
  }

  /** Whether `check` comes true within 3 s. */
  async function eventually(check: () => Promise<boolean>): Promise<boolean> {
    for (const deadline = Date.now() + 3000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      if (await check()) return true;
    }
    return false;
  }

  /** What another host gets back from each request sent to `address`. */
  async function fromRemote(address: string): Promise<Record<'NAMES' | 'PORT2' | 'ALIVE2', ProbeResult>> {
    const [NAMES_R, PORT2, ALIVE2_R] = await Promise.all(
      [NAMES, portPlease('a'), ALIVE2].map((request) => lab.fromRemote.probe({ host: address, port: PORT, request })),
    );
    return { NAMES: NAMES_R!, PORT2: PORT2!, ALIVE2: ALIVE2_R! };
  }

  /** epmd-ng: no handshake, no byte. OTP's epmd: NAMES and PORT2 answered, ALIVE2 refused. */
  function expectRemoteView(view: Record<'NAMES' | 'PORT2' | 'ALIVE2', ProbeResult>): void {
    if (ours) {
      for (const r of Object.values(view)) expect(r).toEqual({ connected: false, recv: '', end: 'no-handshake' });
    } else {
      expect(view.NAMES.recv.startsWith(NAMES_HEADER)).toBe(true);
      expect(view.PORT2.recv.startsWith('77')).toBe(true);
      expect(view.ALIVE2).toMatchObject({ connected: true, recv: '' });
    }
  }

  describe('lookups by the host name, whatever it resolves to', () => {
    it('Debian: the host name resolves to 127.0.1.1 (-sname)', async () => {
      lab.setHosts(debianHosts('127.0.1.1\tepmdhost'));
      await startEpmd();
      await pingAcross();
      expect(await found('127.0.1.1', 'a')).toBe(true);
    }, 60_000);

    it("cloud and RHEL style: the host name resolves to the host's own IPv4 address (-sname)", async () => {
      lab.setHosts(debianHosts(`${HOST_V4}\tepmdhost`));
      await startEpmd();
      await pingAcross();
      expect(await found(HOST_V4, 'a')).toBe(true);
    }, 60_000);

    it("long names: a FQDN resolving to the host's IPv4 address (-name)", async () => {
      lab.setHosts(debianHosts(`${HOST_V4}\tepmdhost.example.test epmdhost`));
      await startEpmd();
      await pingAcross({ realHost: 'epmdhost.example.test' });
    }, 60_000);

    it("IPv6: the host name resolves to the host's IPv6 address only (-proto_dist inet6_tcp)", async () => {
      lab.setHosts(debianHosts(`${HOST_V6}\tepmdhost`));
      await startEpmd();
      await pingAcross({ extraArgs: ['-proto_dist', 'inet6_tcp'] });
      expect(await found(HOST_V6, 'a')).toBe(true);
    }, 60_000);
  });

  it(`another host sending NAMES, PORT_PLEASE2 and ALIVE2 to each of the host's addresses: ${ours ? 'nothing, not even a handshake' : 'answered (OTP serves everyone)'}`, async () => {
    lab.setHosts(debianHosts('127.0.1.1\tepmdhost'));
    await startEpmd();
    await node('a');
    for (const address of [HOST_V4, HOST_V6]) expectRemoteView(await fromRemote(address));
    // The host itself is still served at both.
    for (const address of [HOST_V4, HOST_V6]) expect(await found(address, 'a')).toBe(true);
  }, 60_000);

  it('addresses added (secondary, other subnet), removed, and links going down and up never stop it from serving the others', async () => {
    lab.setHosts(debianHosts('127.0.1.1\tepmdhost'));
    await startEpmd();
    const a = await node('a');
    try {
      // A secondary address: the host reaches it from its primary address, not from itself.
      lab.ipOnHost(['addr', 'add', `${SECONDARY_V4}/24`, 'dev', lab.hostLink]);
      expect(await found(SECONDARY_V4, 'a')).toBe(true);
      if (ours) expect((await fromRemote(SECONDARY_V4)).NAMES.connected).toBe(false);
      lab.ipOnHost(['addr', 'add', `${OTHER_SUBNET_V4}/24`, 'dev', lab.hostLink]);
      expect(await found(OTHER_SUBNET_V4, 'a')).toBe(true);
      // Removing the primary address takes its secondaries with it.
      lab.ipOnHost(['addr', 'del', `${HOST_V4}/24`, 'dev', lab.hostLink]);
      expect(await found(OTHER_SUBNET_V4, 'a')).toBe(true);
      expect(await found('127.0.1.1', 'a')).toBe(true);
      lab.ipOnHost(['link', 'set', lab.hostLink, 'down']);
      expect(await found('127.0.1.1', 'a')).toBe(true);
      expect(await found(OTHER_SUBNET_V4, 'a')).toBe(true);
      lab.ipOnHost(['link', 'set', lab.hostLink, 'up']);
    } finally {
      lab.restoreHostAddresses();
    }
    // Addresses configured on a link that just came up take a moment to be usable.
    expect(await eventually(() => found(HOST_V4, 'a'))).toBe(true);
    expect(await eventually(() => found(HOST_V6, 'a'))).toBe(true);
    // The node's registration was never disturbed.
    expect(a.running).toBe(true);
    const b = await node('b');
    expect(await b.eval(`net_adm:ping('${a.node}')`)).toBe('pong');
  }, 60_000);

  it('-address keeps OTP\'s meaning: the listed address is open to other hosts, loopback is implicit', async () => {
    await startEpmd(['-address', HOST_V4]);
    const remote = await fromRemote(HOST_V4);
    expect(remote.NAMES.recv).toBe(NAMES_HEADER);
    expect(remote.ALIVE2).toMatchObject({ connected: true, recv: '' });
    expect((await lab.fromHost.probe({ host: '::1', port: PORT, request: NAMES })).recv).toBe(NAMES_HEADER);
    // Not listed, not served: the IPv6 address refuses the connection.
    expect((await fromRemote(HOST_V6)).NAMES).toMatchObject({ connected: false, end: 'ECONNREFUSED' });
  }, 60_000);

  it(`-address with an address not configured yet: ${ours ? 'served once it appears (IP_FREEBIND)' : 'OTP exits 1'}`, async () => {
    if (!ours) {
      const { proc, output } = run([...lab.onHost, ...command, '-port', String(PORT), '-address', LATE_V4]);
      const code = await new Promise((r) => proc.once('exit', r));
      expect(code).toBe(1);
      expect(output()).toMatch(/Cannot assign requested address|EADDRNOTAVAIL/);
      return;
    }
    const { output } = await startEpmd(['-address', LATE_V4]);
    expect(output()).toContain(`not configured on this host yet, served once they are: ${LATE_V4}`);
    lab.ipOnHost(['addr', 'add', `${LATE_V4}/24`, 'dev', lab.hostLink]);
    try {
      expect((await fromRemote(LATE_V4)).NAMES.recv).toBe(NAMES_HEADER);
    } finally {
      lab.restoreHostAddresses();
    }
  }, 60_000);

  // The addon is epmd-ng's own: OTP has no counterpart to this case.
  if (ours) it('without its native addon: other hosts complete a handshake but get zero bytes, and the log says so', async () => {
    // A copy of the bundle away from the repository finds no addon (none is installed on this host).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'epmdng-noaddon-'));
    try {
      const started = await startEpmd([], [...lab.onHost, process.execPath, copyBundle(dir)], false);
      expect(started.output()).toContain('no socket filter (the native addon is missing): other hosts complete a TCP handshake and are then closed');
      const a = await node('a');
      for (const address of [HOST_V4, HOST_V6]) {
        const view = await fromRemote(address);
        for (const r of Object.values(view)) {
          expect(r).toMatchObject({ connected: true, recv: '' });
          expect(['FIN', 'RST']).toContain(r.end);
        }
        expect(await found(address, 'a')).toBe(true);
      }
      const b = await node('b');
      expect(await b.eval(`net_adm:ping('${a.node}')`)).toBe('pong');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it(`socket activation: a remote connection queued before the daemon started gets ${ours ? 'zero bytes, later ones no handshake' : 'answered'}`, async () => {
    lab.setHosts(debianHosts('127.0.1.1\tepmdhost'));
    // One dual-stack socket, as systemd's ListenStream=4369 gives: IPv4 peers appear v4-mapped.
    const activate = [...lab.onHost, 'systemd-socket-activate', '-l', String(PORT), '--fdname=epmd-local', ...command, ...(ours ? [] : ['-systemd'])];
    const [cmd, ...args] = activate;
    const proc = spawn(cmd!, args, { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    daemons.push(proc);
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    for (let i = 0; i < 100 && !err.includes('Listening on'); i++) await new Promise((r) => setTimeout(r, 20));
    // The first client is another host: its connection waits in the backlog and starts the daemon.
    const queued = await lab.fromRemote.probe({ host: HOST_V4, port: PORT, request: NAMES, waitMs: 5000 });
    if (ours) {
      expect(queued).toMatchObject({ connected: true, recv: '' });
      expect(['FIN', 'RST']).toContain(queued.end);
      expectRemoteView(await fromRemote(HOST_V4));
      expectRemoteView(await fromRemote(HOST_V6));
    } else {
      expect(queued.recv.startsWith(NAMES_HEADER)).toBe(true);
    }
    await pingAcross();
  }, 60_000);
});
