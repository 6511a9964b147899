// `epmd-ng take-over`: the registrations of a running OTP epmd (erlang-base's) become provisional
// entries of epmd-ng's snapshot, so that epmd-ng serves them from its first start, before their
// nodes register again; a node that never registers again stays while it answers the probe.
import { spawn, type ChildProcess } from 'node:child_process';
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

/** OTP's own epmd (erlang-base) on `port`, stopped after the test at the latest; resolves once it answers. */
async function otpEpmd(port: number): Promise<{ proc: ChildProcess; stop(): Promise<void> }> {
  const proc = spawn('/usr/bin/epmd', ['-port', String(port)], { env: cleanEnv(), stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    proc.kill('SIGKILL');
    await exited;
  };
  cleanups.push(stop);
  await waitUntil("OTP's epmd", async () => (await runCli(['started', '-p', String(port)])).code === 0);
  return { proc, stop };
}

async function names(port: number): Promise<{ name: string; provisional: boolean }[]> {
  return (JSON.parse((await runCli(['names', '--json', '-p', String(port)])).stdout) as { nodes: { name: string; provisional: boolean }[] }).nodes;
}

describe('take-over from a running OTP epmd', () => {
  it('its registrations are served at once by epmd-ng as provisional entries; a C node that never registers again stays', async () => {
    const port = await freePort();
    const otp = await otpEpmd(port);
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
    await otp.stop();
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

  it('an epmd that accepts but cannot answer (stopped): gives up after 5 s with one line, takes nothing, exit 0', async () => {
    const port = await freePort();
    const { proc } = await otpEpmd(port);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-take-over-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    proc.kill('SIGSTOP');
    const t0 = Date.now();
    const r = await runCli(['take-over', '-p', String(port), '--state-dir', dir]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4900);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`epmd-ng: the epmd on port ${port} accepts but did not answer within 5 s; nothing taken over (its nodes register with epmd-ng once it has stopped)\n`);
    expect(fs.existsSync(path.join(dir, 'registry.json'))).toBe(false);
  }, 30_000);

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
