/**
 * OTP's own `epmd` client (/usr/bin/epmd -names / -dump / -started / -kill / -stop) against the daemon
 * under test must print exactly what it prints against OTP's epmd (golden G-E, §11.3). The registry
 * is a fixed set of raw ALIVE2 registrations plus one real Erlang node on a fixed distribution port.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startDaemon, type CliResult, type Daemon } from '../helpers/daemon.js';
import { register, type Registration } from '../helpers/wire.js';
import { namesMap, namesReq } from './epmd.js';
import { randomCookie, startNode, stopAllNodes, uniqueName, waitFor } from './erl.js';

const OTP_CLIENT = ['/usr/bin/epmd'];

const daemons: Daemon[] = [];
const regs: Registration[] = [];

async function daemon(args: string[] = [], env?: Record<string, string>): Promise<Daemon> {
  const d = await startDaemon(args, env ? { env } : {});
  daemons.push(d);
  return d;
}

async function reg(port: number, name: string, distPort: number, extra: { nodeType?: number; high?: number } = {}): Promise<Registration> {
  const r = await register(port, { name, port: distPort, ...extra });
  regs.push(r);
  expect(r.reply[1], `registration of ${name}`).toBe(0);
  return r;
}

afterEach(async () => {
  await stopAllNodes();
  await Promise.all(regs.splice(0).map((r) => r.close()));
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

function otp(port: number, ...cmd: string[]): Promise<CliResult> {
  return runCli(['-port', String(port), ...cmd], {}, OTP_CLIENT);
}

const header = (port: number): string => `epmd: up and running on port ${port} with data:\n`;

/** `p`'s value if it settles within `ms`, else 'timeout'. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
}

/** DUMP output with the implementation-specific fd numbers masked (§5.4; names are in literal <>, golden A16/B7). */
const maskFd = (s: string): string => s.replace(/fd = \d+/g, 'fd = N');

describe("OTP's epmd client against the daemon under test", () => {
  it('-names / -dump / -started print the registry; -kill and -stop are refused without relaxed check', async () => {
    const d = await daemon();
    const P = d.port;

    await reg(P, 'alpha', 5001);
    await reg(P, 'beta', 5002, { nodeType: 72, high: 5 });
    const gamma = await reg(P, 'gamma', 5003);
    await gamma.close();
    expect(await waitFor(async () => !(await namesMap(P)).has('gamma'), 3000, 20)).toBeGreaterThanOrEqual(0);
    const node = await startNode({ name: uniqueName('cli'), epmdPort: P, cookie: randomCookie() });
    await reg(P, 'delta', 5004);

    const expectedNames =
      header(P) +
      'name delta at port 5004\n' +
      `name ${node.name} at port ${node.distPort}\n` +
      'name beta at port 5002\n' +
      'name alpha at port 5001\n';
    const names = await otp(P, '-names');
    expect(names).toMatchObject({ code: 0, stdout: expectedNames, stderr: '' });

    // The client takes the port from ERL_EPMD_PORT as well.
    const viaEnv = await runCli(['-names'], { ERL_EPMD_PORT: String(P) }, OTP_CLIENT);
    expect(viaEnv).toMatchObject({ code: 0, stdout: expectedNames, stderr: '' });

    const dump = await otp(P, '-dump');
    expect(dump.code).toBe(0);
    expect(maskFd(dump.stdout)).toBe(
      header(P) +
        'active name     <delta> at port 5004, fd = N\n\0' +
        `active name     <${node.name}> at port ${node.distPort}, fd = N\n\0` +
        'active name     <beta> at port 5002, fd = N\n\0' +
        'active name     <alpha> at port 5001, fd = N\n\0' +
        'old/unused name <gamma>, port = 5003, fd = N \n\0',
    );

    expect(await otp(P, '-started')).toMatchObject({ code: 0, stdout: '', stderr: '' });

    // The implementation's own client prints the same bytes against the same registry.
    expect((await runCli(['-port', String(P), '-names'])).stdout).toBe(expectedNames);

    const kill = await otp(P, '-kill');
    expect(kill).toMatchObject({ code: 1, stdout: 'Killing not allowed - living nodes in database.\n', stderr: '' });

    const stop = await otp(P, '-stop', 'alpha');
    expect(stop).toMatchObject({ code: 1, stdout: 'epmd: local epmd responded with <>\n', stderr: '' });

    // Nothing changed: daemon alive, registry intact, the real node still registered.
    expect(d.proc.exitCode).toBeNull();
    expect(await otp(P, '-names')).toMatchObject({ code: 0, stdout: expectedNames });
    expect(await node.eval('erl_epmd:port_please("alpha", "localhost")')).toBe('{port,5001,6}');
  });

  it('with -relaxed_command_check: -stop NAME unregisters it, -kill stops the daemon with live nodes', async () => {
    const d = await daemon(['-relaxed_command_check']);
    const P = d.port;
    const alpha = await reg(P, 'alpha', 5001);
    const beta = await reg(P, 'beta', 5002);
    const node = await startNode({ name: uniqueName('rel'), epmdPort: P, cookie: randomCookie() });
    const creation = node.creation;

    expect(await otp(P, '-stop', 'alpha')).toMatchObject({ code: 0, stdout: 'STOPPED\n', stderr: '' });
    // The daemon closes alpha's registration connection and forgets it.
    expect(await within(alpha.closed, 3000)).not.toBe('timeout');
    expect(await otp(P, '-names')).toMatchObject({
      code: 0,
      stdout: header(P) + `name ${node.name} at port ${node.distPort}\n` + 'name beta at port 5002\n',
    });

    expect(await otp(P, '-stop', 'nobody')).toMatchObject({ code: 0, stdout: 'NOEXIST\n', stderr: '' });

    // Stopping a real node's registration: the node sees EOF and (OTP ≥ 24) re-registers ~2 s later.
    expect(await otp(P, '-stop', node.name)).toMatchObject({ code: 0, stdout: 'STOPPED\n' });
    expect((await namesMap(P)).has(node.name)).toBe(false);
    const back = await waitFor(async () => (await namesMap(P)).get(node.name) === node.distPort, 8000, 100);
    expect(back).toBeGreaterThanOrEqual(0);
    expect(Number(await node.eval('erlang:system_info(creation)'))).toBe(creation);

    const kill = await otp(P, '-kill');
    expect(kill).toMatchObject({ code: 0, stdout: 'Killed\n', stderr: '' });
    expect(await within(d.exited, 5000)).toEqual({ code: 0, signal: null });
    expect(await within(beta.closed, 3000)).not.toBe('timeout');
    expect(await otp(P, '-names')).toMatchObject({ code: 1, stdout: '', stderr: 'epmd: Cannot connect to local epmd\n' });
  });

  it('ERL_EPMD_RELAXED_COMMAND_CHECK (even empty) lets -kill stop a daemon with live nodes', async () => {
    const d = await daemon([], { ERL_EPMD_RELAXED_COMMAND_CHECK: '' });
    await reg(d.port, 'alpha', 5001);
    expect(await otp(d.port, '-kill')).toMatchObject({ code: 0, stdout: 'Killed\n', stderr: '' });
    expect(await within(d.exited, 5000)).toEqual({ code: 0, signal: null });
  });

  it('-names on an empty daemon prints the header only; -kill then stops it with exit code 0', async () => {
    const d = await daemon();
    const P = d.port;
    expect(await otp(P, '-names')).toMatchObject({ code: 0, stdout: header(P), stderr: '' });
    expect(await otp(P, '-dump')).toMatchObject({ code: 0, stdout: header(P), stderr: '' });
    expect((await namesReq(P)).port).toBe(P);
    expect(await otp(P, '-kill')).toMatchObject({ code: 0, stdout: 'Killed\n', stderr: '' });
    expect(await within(d.exited, 5000)).toEqual({ code: 0, signal: null });
    expect(await otp(P, '-kill')).toMatchObject({ code: 1, stdout: '', stderr: 'epmd: Cannot connect to local epmd\n' });
  });
});
