// `epmd-ng take-over`: the registrations of a running OTP epmd (erlang-base's) become provisional
// entries of epmd-ng's snapshot, so that epmd-ng serves them from its first start, before their
// nodes register again; a node that never registers again stays while it answers the probe.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSnapshot } from '../../src/persistence/snapshot.js';
import { UNKNOWN_CREATION } from '../../src/registry/registry.js';
import { fakeCNode } from '../helpers/c-node.js';
import { cleanEnv, runCli, startDaemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { exchange, frame, register } from '../helpers/wire.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** OTP's own epmd (erlang-base) on `port`; resolves once it answers, with its pid and how to stop it. */
async function otpEpmd(port: number): Promise<(() => Promise<void>) & { pid: number }> {
  const proc = spawn('/usr/bin/epmd', ['-port', String(port)], { env: cleanEnv(), stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await waitUntil("OTP's epmd", async () => (await runCli(['started', '-p', String(port)])).code === 0);
  const stop = async (): Promise<void> => {
    proc.kill('SIGKILL');
    await exited;
  };
  return Object.assign(stop, { pid: proc.pid! });
}

/**
 * Binds and listens on `port` as epmd-ng.socket does (0.0.0.0 and [::] IPv6-only, SO_REUSEPORT as
 * ReusePort=yes sets it, SO_REUSEADDR as systemd always sets it: OTP's epmd leaves its closed
 * connections in TIME_WAIT on the port), in python3 because Node's net module cannot set SO_REUSEPORT before Node
 * 22; the sockets close when python exits. Returns python's last line: "bound" or the error.
 */
function bindLikeTheSocketUnit(port: number): string {
  const script = [
    'import socket, sys',
    'try:',
    '  for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):',
    '    s = socket.socket(fam)',
    '    for opt in (socket.SO_REUSEADDR, socket.SO_REUSEPORT): s.setsockopt(socket.SOL_SOCKET, opt, 1)',
    '    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)',
    `    s.bind((addr, ${port})); s.listen()`,
    '  print("bound")',
    'except OSError as e:',
    '  print(e.strerror)',
  ].join('\n');
  return spawnSync('python3', ['-c', script], { encoding: 'utf8' }).stdout.trim();
}

async function names(port: number): Promise<{ name: string; provisional: boolean }[]> {
  return (JSON.parse((await runCli(['names', '--json', '-p', String(port)])).stdout) as { nodes: { name: string; provisional: boolean }[] }).nodes;
}

describe('take-over from a running OTP epmd', () => {
  it('its registrations are served at once by epmd-ng as provisional entries; a C node that never registers again stays', async () => {
    const port = await freePort();
    const stopOtp = await otpEpmd(port);
    cleanups.push(stopOtp);
    // A C-style node: listens and answers the handshake, registers once.
    let creation = 0;
    const cnode = await fakeCNode('cnode@localhost', () => creation);
    cleanups.push(() => cnode.close());
    const held = await register(port, { port: cnode.port, name: 'cnode', extra: Buffer.from('x1') });
    cleanups.push(() => held.socket.destroy());
    creation = held.reply.readUInt32BE(2);
    // A registration whose node is gone by the time epmd-ng probes it.
    const gone = await register(port, { port: await freePort(), name: 'gone' });
    cleanups.push(() => gone.socket.destroy());
    const otpLookup = (await exchange(port, frame(Buffer.from('zcnode')))).recv;

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-take-over-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const taken = await runCli(['take-over', '-p', String(port), '--state-dir', path.join(dir, 'state')]);
    expect(taken.code).toBe(0);
    expect(taken.stderr).toContain(`took over 2 nodes from the epmd on port ${port}`);
    const saved = decodeSnapshot(fs.readFileSync(path.join(dir, 'state/registry.json')));
    expect(saved.ok && saved.snapshot.nodes.map((n) => [n.name.toString(), n.creation]).sort()).toEqual([
      ['cnode', UNKNOWN_CREATION],
      ['gone', UNKNOWN_CREATION],
    ]);
    expect(fs.statSync(path.join(dir, 'state')).mode & 0o777).toBe(0o700);

    // OTP's epmd goes; the C node's registration connection closes and it never registers again.
    await stopOtp();
    const d = await startDaemon([], { port, env: { EPMD_NG_STATE_DIR: path.join(dir, 'state'), EPMD_NG_PROVISIONAL_TTL: '3' } });
    cleanups.push(() => d.stop());
    expect((await names(port)).map((n) => [n.name, n.provisional]).sort()).toEqual([
      ['cnode', true],
      ['gone', true],
    ]);
    // The lookup answers exactly what OTP's epmd answered.
    expect((await exchange(port, frame(Buffer.from('zcnode')))).recv).toEqual(otpLookup);
    // The probe confirms the C node by its name (its creation was unknown) and removes the dead
    // entry; past the 3 s time the C node is still there, kept alive by the probes.
    await waitUntil('the dead entry probed away', async () => (await names(port)).every((n) => n.name !== 'gone'));
    await new Promise((r) => setTimeout(r, 6000));
    expect((await names(port)).map((n) => n.name)).toEqual(['cnode']);
    expect(cnode.probes).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('--share-port-of: a socket with SO_REUSEPORT then binds the port beside OTP\'s running epmd, which keeps answering', async () => {
    const port = await freePort();
    const otp = await otpEpmd(port);
    cleanups.push(otp);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-take-over-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    // Before: OTP's sockets have no SO_REUSEPORT, so the socket unit's bind would fail.
    expect(bindLikeTheSocketUnit(port)).toBe('Address already in use');
    const r = await runCli(['take-over', '-p', String(port), '--state-dir', dir, '--share-port-of', String(otp.pid)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`epmd-ng: port ${port} of process ${otp.pid} is shared (SO_REUSEPORT on 2 listening sockets)`);
    expect(bindLikeTheSocketUnit(port)).toBe('bound');
    expect((await runCli(['started', '-p', String(port)])).code).toBe(0);
  });

  it('--share-port-of a process without that port: one line saying so, the take-over itself still done', async () => {
    const port = await freePort();
    const otp = await otpEpmd(port);
    cleanups.push(otp);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-take-over-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const r = await runCli(['take-over', '-p', String(port), '--state-dir', dir, '--share-port-of', String(process.pid)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `epmd-ng: cannot share port ${port} of process ${process.pid}: it has no socket listening on that port\n` +
        `epmd-ng: took over 0 nodes from the epmd on port ${port}\n`,
    );
    expect(bindLikeTheSocketUnit(port)).toBe('Address already in use');
  });

  it('nothing answering on the port: nothing to take over, exit 0', async () => {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-take-over-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const r = await runCli(['take-over', '-p', String(port), '--state-dir', dir]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`epmd-ng: no epmd answers on port ${port}; nothing to take over\n`);
    expect(fs.existsSync(path.join(dir, 'registry.json'))).toBe(false);
  });
});
