// Socket activation and sd_notify on the host, without a real service manager: Debian's
// systemd-socket-activate passes the listening sockets exactly as PID 1 does (LISTEN_PID, LISTEN_FDS,
// LISTEN_FDNAMES), and a python3 datagram socket stands in for PID 1's notify socket. The same
// behaviour against a real systemd is in service.test.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bundle, cleanEnv, copyBundle } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { ensureNativeBuilt, startNotifyReceiver, type NotifyReceiver } from '../helpers/sd-native.js';
import { exchange, frame, register } from '../helpers/wire.js';

interface Activated {
  proc: ChildProcess;
  port: number;
  notify: NotifyReceiver;
  stderr(): string;
  exited: Promise<number | null>;
}

const running: Activated[] = [];

async function activate(args: string[], env: Record<string, string> = {}, script = bundle): Promise<Activated> {
  const port = await freePort();
  const notify = await startNotifyReceiver(`@epmd-ng-test-${process.pid}-${port}`);
  const proc = spawn(
    'systemd-socket-activate',
    ['-l', `127.0.0.1:${port}`, '-l', `[::1]:${port}`, '--fdname=epmd:epmd', '-E', `NOTIFY_SOCKET=${notify.address}`,
      ...Object.entries(env).flatMap(([k, v]) => ['-E', `${k}=${v}`]), process.execPath, script, ...args],
    { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  proc.stderr!.on('data', (d) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const a = { proc, port, notify, stderr: () => err, exited };
  running.push(a);
  // systemd-socket-activate listens at once; the daemon starts on the first connection.
  for (let i = 0; i < 100 && !err.includes('Listening on'); i++) await new Promise((r) => setTimeout(r, 20));
  return a;
}

/** The next notification other than a state memfd's hand-over (made with the first registration, and after a restart that adopted some). */
async function nextNotice(a: Activated) {
  for (;;) {
    const d = await a.notify.next();
    if (!d.fields.FDNAME?.startsWith('state-')) return d;
  }
}

afterEach(async () => {
  for (const a of running.splice(0)) {
    a.proc.kill('SIGKILL');
    await a.notify.stop();
  }
});

beforeAll(() => ensureNativeBuilt());

describe('socket activation (systemd-socket-activate)', () => {
  it('serves the first client on the inherited sockets, then sends READY=1 with STATUS and MAINPID', async () => {
    const a = await activate(['-systemd']);
    const names = await exchange(a.port, frame(Buffer.from('n')));
    // No port configured: NAMES reports the socket's real port, so net_adm:names() works (spec Q11).
    expect(names.recv.readUInt32BE(0)).toBe(a.port);
    const ready = await nextNotice(a);
    expect(ready.fields.READY).toBe('1');
    expect(ready.fields.MAINPID).toBe(String(a.proc.pid));
    expect(ready.pid).toBe(a.proc.pid);
    expect(ready.fields.STATUS).toMatch(new RegExp(`^Serving 0 nodes \\(0 provisional\\) on 127\\.0\\.0\\.1:${a.port}, \\[::1\\]:${a.port}: loopback only; \\d+ connections? open$`));
    const v6 = await exchange(a.port, frame(Buffer.from('n')), { host: '::1' });
    expect(v6.recv.length).toBe(4);
  });

  it('reports the configured port in NAMES when one is given, as OTP does', async () => {
    const a = await activate(['-systemd', '-port', '4444']);
    const names = await exchange(a.port, frame(Buffer.from('n')));
    expect(names.recv.readUInt32BE(0)).toBe(4444);
  });

  it('hands each registration to the fd store, removes it when the node goes, and keeps STATUS current', async () => {
    const a = await activate(['-systemd']);
    const node = await register(a.port, { port: 5000, name: 'one' });
    expect((await a.notify.next()).fields.READY).toBe('1');
    // With the first registration: the state memfd that describes the stored connections, then
    // the connection itself.
    const state = await a.notify.next();
    expect(state.fields).toEqual({ FDSTORE: '1', FDNAME: 'state-1' });
    expect(state.fds[0]!.mode).toBe('file');
    const stored = await a.notify.next();
    expect(stored.fields).toEqual({ FDSTORE: '1', FDNAME: 'r1' });
    // The node's own connection: its peer is the node's local end.
    expect(stored.fds).toHaveLength(1);
    expect(stored.fds[0]!.mode).toBe('socket');
    expect(stored.fds[0]!.peer).toEqual(['127.0.0.1', node.socket.localPort]);
    const status = await a.notify.next();
    expect(status.fields.STATUS).toMatch(/^Serving 1 node \(0 provisional\) on .*; 1 connection open$/);
    await node.close();
    expect((await a.notify.next()).fields).toEqual({ FDSTOREREMOVE: '1', FDNAME: 'r1' });
    expect((await a.notify.next()).fields.STATUS).toMatch(/^Serving 0 nodes \(0 provisional\) on .*; 0 connections open$/);
  });

  it('SIGHUP reloads: RELOADING=1, then READY=1 again; SIGTERM sends STOPPING=1 and exits 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-env-'));
    const envFile = path.join(dir, 'epmd-ng');
    fs.writeFileSync(envFile, 'EPMD_NG_LOG_LEVEL=info\n');
    const a = await activate(['-systemd'], { EPMD_NG_ENV_FILE: envFile });
    await exchange(a.port, frame(Buffer.from('n')));
    await nextNotice(a);
    fs.writeFileSync(envFile, '# raised by the test\nEPMD_NG_LOG_LEVEL="debug"\n');
    a.proc.kill('SIGHUP');
    const reloading = await a.notify.next();
    expect(reloading.fields.RELOADING).toBe('1');
    expect(Number(reloading.fields.MONOTONIC_USEC)).toBeGreaterThan(0);
    expect((await nextNotice(a)).fields.READY).toBe('1');
    // The new level is in force: a request is now logged at debug level.
    await exchange(a.port, frame(Buffer.from('n')));
    await new Promise((r) => setTimeout(r, 100));
    expect(a.stderr()).toMatch(/"level":20.*"request":"names"/);
    a.proc.kill('SIGTERM');
    expect((await a.notify.next()).fields.STOPPING).toBe('1');
    expect(await a.exited).toBe(0);
    fs.rmSync(dir, { recursive: true });
  });

  it('KILL_REQ ends with STATUS=Exited. and ERRNO=0, as OTP sends it', async () => {
    const a = await activate(['-systemd']);
    await exchange(a.port, frame(Buffer.from('k')));
    expect((await nextNotice(a)).fields.READY).toBe('1');
    const last = await a.notify.next();
    expect(last.fields).toEqual({ STATUS: 'Exited.', ERRNO: '0' });
    expect(await a.exited).toBe(0);
  });

  it('pings the watchdog at half of WATCHDOG_USEC while the event loop is healthy', async () => {
    const a = await activate(['-systemd'], { WATCHDOG_USEC: '400000' });
    await exchange(a.port, frame(Buffer.from('n')));
    expect((await nextNotice(a)).fields.READY).toBe('1');
    const t0 = Date.now();
    expect((await a.notify.next()).fields.WATCHDOG).toBe('1');
    expect((await a.notify.next()).fields.WATCHDOG).toBe('1');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('does not ping a watchdog meant for another process (WATCHDOG_PID)', async () => {
    const a = await activate(['-systemd'], { WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' });
    await exchange(a.port, frame(Buffer.from('n')));
    expect((await nextNotice(a)).fields.READY).toBe('1');
    await a.notify.expectNothing(500);
  });

  it('under systemd, a missing addon is a clear start-up error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-noaddon-'));
    const lonely = copyBundle(dir);
    const a = await activate(['-systemd'], {}, lonely);
    await exchange(a.port, frame(Buffer.from('n')));
    expect(await a.exited).toBe(1);
    expect(a.stderr()).toContain('sd_native.node');
    fs.rmSync(dir, { recursive: true });
  });
});

describe('-systemd without socket activation', () => {
  it('exits 1 with a clear message when systemd provides no sockets', async () => {
    const proc = spawn(process.execPath, [bundle, '-systemd'], { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d) => (err += d.toString()));
    const code = await new Promise((resolve) => proc.on('exit', resolve));
    expect(code).toBe(1);
    expect(err).toContain('systemd provides no sockets');
  });
});
