// Restarts without the fd store (spec §18, issue "restarts lose nothing" items 2-4): snapshots in a
// state directory, provisional entries, probes, and bad state that is never fatal. The daemon is
// killed with SIGKILL as `kill -9` outside systemd would, and started again on the same port.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSnapshot } from '../../src/persistence/snapshot.js';
import { fakeCNode, type FakeNode } from '../helpers/c-node.js';
import { runCli, startDaemon, type Daemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { exchange, frame, register, type Registration } from '../helpers/wire.js';
import { startNode, type ErlNode } from '../interop/erl.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function stateDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-state-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function daemonWith(dir: string, port?: number, env: Record<string, string> = {}): Promise<Daemon> {
  const d = await startDaemon([], { port, env: { EPMD_NG_STATE_DIR: dir, ...env } });
  cleanups.push(() => d.stop());
  return d;
}

async function held(port: number, fields: Parameters<typeof register>[1]): Promise<Registration> {
  const r = await register(port, fields);
  cleanups.push(() => r.socket.destroy());
  return r;
}

async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const snapshotFile = (dir: string) => path.join(dir, 'registry.json');
const savedNames = (dir: string): string[] => {
  const d = decodeSnapshot(fs.readFileSync(snapshotFile(dir)));
  return d.ok ? d.snapshot.nodes.map((n) => n.name.toString()) : [];
};

async function namesJson(port: number): Promise<{ name: string; port: number; provisional: boolean }[]> {
  const r = await runCli(['names', '--json', '-p', String(port)]);
  return (JSON.parse(r.stdout) as { nodes: { name: string; port: number; provisional: boolean }[] }).nodes;
}

async function killHard(d: Daemon): Promise<void> {
  d.proc.kill('SIGKILL');
  await d.exited;
}

const creationOf = (reply: Buffer) => reply.readUInt32BE(2);

describe('snapshots and provisional entries', () => {
  it('after kill -9, registrations come back provisional at once; a live node re-registers; a dead one is probed away', async () => {
    const dir = stateDir();
    const d1 = await daemonWith(dir);
    const port = d1.port;
    // A real OTP node: re-registers by itself about 2 s after losing its epmd connection.
    const erl: ErlNode = await startNode({ name: `live${process.pid}`, epmdPort: port, cookie: 'snapshots' });
    cleanups.push(() => erl.stop());
    // A client that registers once and never again, and still answers on its port.
    let cCreation = 0;
    const cnode: FakeNode = await fakeCNode('cnode@localhost', () => cCreation);
    cleanups.push(() => cnode.close());
    cCreation = creationOf((await held(port, { port: cnode.port, name: 'cnode' })).reply);
    // A registration whose node is gone: nothing listens on its port.
    const deadPort = await freePort();
    await held(port, { port: deadPort, name: 'dead' });
    await waitUntil('the snapshot to list all three', () => fs.existsSync(snapshotFile(dir)) && savedNames(dir).length === 3);

    await killHard(d1);
    const d2 = await daemonWith(dir, port, { EPMD_NG_PROVISIONAL_TTL: '20' });
    const first = await namesJson(port);
    expect(first.map((n) => n.name).sort()).toEqual(['cnode', 'dead', erl.name].sort());
    expect(first.every((n) => n.provisional)).toBe(true);
    // PORT_PLEASE2 answers from a provisional entry.
    const lookup = await exchange(port, frame(Buffer.from('zcnode')));
    expect(lookup.recv.readUInt16BE(2)).toBe(cnode.port);
    // DUMP marks them.
    const dump = await exchange(port, frame(Buffer.from('d')));
    expect(dump.recv.toString()).toContain('provisional name <cnode> at port');

    // The probe finds nothing on the dead node's port and drops it; the C node is confirmed.
    await waitUntil('the dead entry to be probed away', async () => !(await namesJson(port)).some((n) => n.name === 'dead'));
    expect(cnode.probes).toBeGreaterThan(0);
    // The OTP node's own re-registration replaces its provisional entry (never refused as duplicate).
    await waitUntil('the live node to re-register', async () => (await namesJson(port)).some((n) => n.name === erl.name && !n.provisional));
    expect(d2.stderr()).not.toContain('node name already occupied');
    const final = await namesJson(port);
    expect(final.find((n) => n.name === 'cnode')?.provisional).toBe(true);
  });

  it('an unconfirmed provisional entry expires after EPMD_NG_PROVISIONAL_TTL; KILL treats provisional entries as absent', async () => {
    const dir = stateDir();
    const d1 = await daemonWith(dir);
    const port = d1.port;
    // Something listens on the port but does not speak the distribution protocol: "alive", unconfirmed.
    const silent = await fakeCNode('someone-else@localhost', () => 1);
    cleanups.push(() => silent.close());
    const other = await held(port, { port: silent.port, name: 'quiet' });
    await waitUntil('the snapshot', () => fs.existsSync(snapshotFile(dir)) && savedNames(dir).includes('quiet'));
    await killHard(d1);
    other.socket.destroy();
    const d2 = await daemonWith(dir, port, { EPMD_NG_PROVISIONAL_TTL: '3' });
    expect((await namesJson(port)).map((n) => n.name)).toEqual(['quiet']);
    // KILL_REQ counts only live registrations: with only provisional entries it is allowed.
    const kill = await exchange(port, frame(Buffer.from('k')), { waitMs: 1000 });
    expect(kill.recv.toString()).toBe('OK');
    expect((await d2.exited).code).toBe(0);

    const d3 = await daemonWith(dir, port, { EPMD_NG_PROVISIONAL_TTL: '3' });
    expect((await namesJson(port)).map((n) => n.name)).toEqual(['quiet']);
    // Another node name answers on that port: the entry goes at the first probe.
    await waitUntil('the entry to go', async () => (await namesJson(port)).length === 0, 10_000);
    expect(d3.stderr()).toContain('another node answers on its port');

    const muteDir = stateDir();
    const d4 = await daemonWith(muteDir);
    const unprobed = await freePort();
    const net = await import('node:net');
    // A port that accepts but never answers the handshake keeps the entry only until its time is up.
    const mute = net.createServer((s) => s.on('error', () => {})).listen(unprobed, '127.0.0.1');
    cleanups.push(() => mute.close());
    const r = await held(d4.port, { port: unprobed, name: 'mute' });
    await waitUntil('the snapshot', () => fs.existsSync(snapshotFile(muteDir)) && savedNames(muteDir).includes('mute'));
    await killHard(d4);
    r.socket.destroy();
    const started = Date.now();
    const d5 = await daemonWith(muteDir, d4.port, { EPMD_NG_PROVISIONAL_TTL: '3' });
    expect((await namesJson(d4.port)).map((n) => n.name)).toEqual(['mute']);
    await waitUntil('the entry to expire', async () => (await namesJson(d4.port)).length === 0, 15_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    expect(d5.stderr()).toContain('expired before its node registered again');
  });

  it('restarts in a row do not renew a provisional entry: it leaves when its first TTL is up', async () => {
    const dir = stateDir();
    const d1 = await daemonWith(dir);
    const port = d1.port;
    // A port that accepts but never answers the handshake: probes cannot decide, only the TTL can.
    const { default: net } = await import('node:net');
    const mutePort = await freePort();
    const mute = net.createServer((s) => s.on('error', () => {})).listen(mutePort, '127.0.0.1');
    cleanups.push(() => mute.close());
    const r = await held(port, { port: mutePort, name: 'mute' });
    await waitUntil('the snapshot', () => fs.existsSync(snapshotFile(dir)) && savedNames(dir).includes('mute'));
    await killHard(d1);
    r.socket.destroy();
    const restoredAt = Date.now();
    // kill -9 and start again every second, sooner than any probe round (2.5 s after a start).
    let d = await startDaemon([], { port, env: { EPMD_NG_STATE_DIR: dir, EPMD_NG_PROVISIONAL_TTL: '3' } });
    expect((await namesJson(port)).map((n) => n.name)).toEqual(['mute']);
    while (Date.now() - restoredAt < 4500) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await killHard(d);
      d = await startDaemon([], { port, env: { EPMD_NG_STATE_DIR: dir, EPMD_NG_PROVISIONAL_TTL: '3' } });
    }
    cleanups.push(() => d.stop());
    expect(await namesJson(port)).toEqual([]);
    expect(d.stderr()).toMatch(/"provisional":0/);
  });

  it('creations keep increasing across restarts (the counters are persisted)', async () => {
    const dir = stateDir();
    const d1 = await daemonWith(dir);
    const first = await register(d1.port, { port: 6001, name: 'again' });
    await first.close();
    await waitUntil('the snapshot to remember it', () => fs.existsSync(snapshotFile(dir)) && !savedNames(dir).includes('again') && fs.readFileSync(snapshotFile(dir), 'utf8').includes(Buffer.from('again').toString('base64')));
    await d1.stop();
    const d2 = await daemonWith(dir, d1.port);
    const second = await held(d2.port, { port: 6001, name: 'again' });
    // Same second or not, the slot continues: never a creation the name held before.
    expect(creationOf(second.reply)).toBe(creationOf(first.reply) + 1);
  });

  it('after a reboot (another boot id) entries are not restored, but their creations still increase', async () => {
    const dir = stateDir();
    const d1 = await daemonWith(dir);
    const before = await held(d1.port, { port: 6002, name: 'rebooted' });
    await waitUntil('the snapshot', () => fs.existsSync(snapshotFile(dir)) && savedNames(dir).includes('rebooted'));
    await killHard(d1);
    before.socket.destroy();
    const doc = JSON.parse(fs.readFileSync(snapshotFile(dir), 'utf8')) as { bootId: string };
    doc.bootId = '00000000-0000-0000-0000-000000000000';
    fs.writeFileSync(snapshotFile(dir), JSON.stringify(doc));
    const d2 = await daemonWith(dir, d1.port);
    expect(await namesJson(d2.port)).toEqual([]);
    const after = await held(d2.port, { port: 6002, name: 'rebooted' });
    expect(creationOf(after.reply)).toBeGreaterThan(creationOf(before.reply));
  });
});

describe('bad state is never fatal', () => {
  it('a corrupt snapshot is moved aside with one warning; the daemon starts empty and serves', async () => {
    const dir = stateDir();
    fs.writeFileSync(snapshotFile(dir), '{"format":"epmd-ng-registry","version":1,"nodes":[{"na');
    const d = await daemonWith(dir);
    expect(await namesJson(d.port)).toEqual([]);
    await held(d.port, { port: 7000, name: 'fine' });
    expect((await namesJson(d.port)).map((n) => n.name)).toEqual(['fine']);
    const aside = fs.readdirSync(dir).filter((f) => f.startsWith('registry.json.bad-'));
    expect(aside).toHaveLength(1);
    expect(d.stderr().split('\n').filter((l) => l.includes('"level":40') && l.includes('registry.json')).length).toBe(1);
  });

  it('a future snapshot version is moved aside too', async () => {
    const dir = stateDir();
    fs.writeFileSync(snapshotFile(dir), JSON.stringify({ format: 'epmd-ng-registry', version: 99 }));
    const d = await daemonWith(dir);
    expect(await namesJson(d.port)).toEqual([]);
    expect(d.stderr()).toMatch(/version 99/);
  });

  it('an unwritable state directory is logged, and serving goes on', async () => {
    const parent = stateDir();
    const notADir = path.join(parent, 'state');
    fs.writeFileSync(notADir, 'a file where the directory should be');
    const d = await daemonWith(notADir);
    await held(d.port, { port: 7001, name: 'still' });
    await waitUntil('a warning about the snapshot', () => /"level":40.*(ENOTDIR|not a directory)/i.test(d.stderr()), 5000);
    expect((await namesJson(d.port)).map((n) => n.name)).toEqual(['still']);
    expect(d.proc.exitCode).toBeNull();
  });
});

describe('crash consistency', () => {
  it('SIGKILL at random moments during a registration storm never leaves an unreadable snapshot', async () => {
    const dir = stateDir();
    let seed = 20261121;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    let port: number | undefined;
    for (let round = 0; round < 20; round++) {
      const d = await startDaemon([], { port, env: { EPMD_NG_STATE_DIR: dir, EPMD_NG_PROVISIONAL_TTL: '0' } });
      port = d.port;
      const storm = Array.from({ length: 200 }, (_, i) => register(d.port, { port: 10000 + i, name: `storm${round}_${i}` }).then((r) => r.socket.destroy(), () => undefined));
      await new Promise((r) => setTimeout(r, 50 + rand() * 700));
      d.proc.kill('SIGKILL');
      await d.exited;
      await Promise.all(storm);
      if (fs.existsSync(snapshotFile(dir))) {
        const decoded = decodeSnapshot(fs.readFileSync(snapshotFile(dir)));
        expect(decoded.ok, `round ${round}: ${decoded.ok ? '' : decoded.reason}`).toBe(true);
      }
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('registry.json.bad-'))).toEqual([]);
    }
    expect(fs.existsSync(snapshotFile(dir))).toBe(true);
  });
});
