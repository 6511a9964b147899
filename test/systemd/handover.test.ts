// The first installation over erlang-base's running epmd, on the host, step by step as the
// package's postinst runs it (test/packaging/coexistence.test.ts runs the postinst itself under a
// real systemd): OTP's epmd serves a dual-stack [::] socket as erlang-base's epmd.socket has it
// (ListenStream=4369, BindIPv6Only=both), `epmd-ng hand-over-sockets` holds that socket as
// epmd-ng-handover.service does (Sockets=epmd.socket), epmd-ng binds beside it with sockets as
// epmd-ng.socket makes them, and then the hand-over is stopped and OTP's epmd after it. The kernel
// gives every IPv6 connection to the older dual-stack socket, and nothing can steer them away from
// it (it is in no SO_REUSEPORT group), so a connection still queued there when it closes would be
// reset. Needs root: Linux 6.18 and later want CAP_NET_ADMIN to attach the filter that closes it
// to new connections.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SdNative } from '../../src/systemd/native.js';
import { NAMES_REQ, launchDaemon, sleep } from '../conformance/util.js';
import { bundle, cleanEnv, daemonCommand, repoRoot, type Daemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { nativeAsRoot, startNotifyReceiver, type NotifyReceiver } from '../helpers/sd-native.js';
import { exchange, register, type Registration } from '../helpers/wire.js';

const started: { procs: ChildProcess[]; daemons: Daemon[]; receivers: NotifyReceiver[]; registrations: Registration[] } = {
  procs: [],
  daemons: [],
  receivers: [],
  registrations: [],
};

afterEach(async () => {
  for (const r of started.registrations.splice(0)) r.socket.destroy();
  for (const p of started.procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const d of started.daemons.splice(0)) {
    d.proc.kill('SIGCONT');
    await d.stop();
  }
  for (const r of started.receivers.splice(0)) await r.stop();
});

interface Step {
  proc: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
}

/** Runs `args` of the bundle with `fds` passed as systemd passes a unit's sockets (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES). */
function runActivated(args: string[], fds: number[], fdName: string, env: Record<string, string> = {}): Step {
  const proc = spawn('/bin/sh', ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', 'sh', process.execPath, bundle, ...args], {
    env: cleanEnv({ ...env, LISTEN_FDS: String(fds.length), LISTEN_FDNAMES: fds.map(() => fdName).join(':') }),
    stdio: ['ignore', 'ignore', 'pipe', ...fds],
  });
  started.procs.push(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, stderr: () => err, exited };
}

async function notifyReceiver(tag: string): Promise<NotifyReceiver> {
  const r = await startNotifyReceiver(`@epmd-ng-handover-${process.pid}-${tag}-${Date.now()}`);
  started.receivers.push(r);
  return r;
}

/** OTP's epmd serving a dual-stack socket on a free port, as erlang-base's units run it, and that socket. */
async function otpOnDualStack(native: SdNative): Promise<{ otp: Daemon; fd: number; port: number }> {
  const port = await freePort();
  const fd = native.listenTcp('::', port, { ipv6Only: false });
  const otp = await launchDaemon({ command: daemonCommand('otp'), args: ['-systemd', '-port', String(port)], listenFds: [fd], probePort: port });
  started.daemons.push(otp);
  return { otp, fd, port };
}

/** Starts the hand-over on `fd` and waits for its READY=1. */
async function handOver(fd: number): Promise<Step> {
  const notify = await notifyReceiver('step');
  const step = runActivated(['hand-over-sockets'], [fd], 'epmd.socket', { NOTIFY_SOCKET: notify.address });
  expect((await notify.next(10_000)).fields.READY).toBe('1');
  return step;
}

type Answer = { t: number; by: 'otp' | 'epmd-ng' } | { t: number; error: string };

/**
 * `loops` clients that ask NAMES over `host` back to back until stop() and record who answered:
 * OTP's epmd lists only "otpnode", epmd-ng only "ngnode". An error is a reset, a refusal, a reply
 * cut short, or no answer within 8 s (a dropped SYN is sent again after 1 s, then after 3 s).
 */
function flood(port: number, host: string, loops: number): { answers: Answer[]; t0: number; stop(): Promise<void> } {
  const answers: Answer[] = [];
  const t0 = Date.now();
  let running = true;
  const loop = async () => {
    while (running) {
      const t = Date.now() - t0;
      try {
        const r = await exchange(port, NAMES_REQ, { host, waitMs: 8000 });
        const text = r.recv.subarray(4).toString('latin1');
        if (r.end !== 'FIN' || r.recv.length < 4) answers.push({ t, error: `${r.end} after ${r.recv.length} bytes` });
        else if (text === 'name otpnode at port 5001\n') answers.push({ t, by: 'otp' });
        else if (text === 'name ngnode at port 5002\n') answers.push({ t, by: 'epmd-ng' });
        else answers.push({ t, error: `unexpected reply ${JSON.stringify(text)}` });
      } catch (err) {
        answers.push({ t, error: (err as NodeJS.ErrnoException).code ?? String(err) });
      }
    }
  };
  const all = Promise.all(Array.from({ length: loops }, loop));
  return {
    answers,
    t0,
    stop: async () => {
      running = false;
      await all;
    },
  };
}

describe('epmd-ng hand-over-sockets (what epmd-ng-handover.service runs)', () => {
  let native: SdNative;
  beforeAll(() => {
    native = nativeAsRoot();
  });

  it('erlang-base\'s socket is retired without a reset: IPv6 clients flooding through the whole switch are all answered, by OTP\'s epmd until it stops and by epmd-ng after', async () => {
    const { otp, fd, port } = await otpOnDualStack(native);
    started.registrations.push(await register(port, { port: 5001, name: 'otpnode' }));
    const step = await handOver(fd);
    expect(step.stderr()).toBe('epmd-ng: fd 3 (epmd.socket): SO_REUSEPORT set: a socket with ReusePort=yes can bind its port beside it\n');
    fs.closeSync(fd); // ours; OTP's epmd and the hand-over hold theirs, as systemd would

    // epmd-ng binds beside it (which SO_REUSEPORT on OTP's socket allows) and takes IPv4: the kernel
    // prefers an IPv4 socket to a dual-stack one. IPv6 still goes to OTP's older socket.
    const ngNotify = await notifyReceiver('ng');
    const ng = spawn('python3', [path.join(repoRoot, 'test/fixtures/reuseport-listen.py'), String(port), 'epmd-local', process.execPath, bundle, '-systemd', '-port', String(port)], {
      env: cleanEnv({ NOTIFY_SOCKET: ngNotify.address }),
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    started.procs.push(ng);
    for (;;) if ((await ngNotify.next(10_000)).fields.READY === '1') break;
    started.registrations.push(await register(port, { port: 5002, name: 'ngnode' }));

    const v6 = flood(port, '::1', 8);
    await sleep(500);
    // OTP's epmd cannot accept for a moment, so connections are queued in its socket when the
    // hand-over is stopped: some of the flood's, maybe (the flood's clients may all be waiting for
    // answers to connections it has accepted), and these.
    process.kill(otp.pid, 'SIGSTOP');
    await sleep(100);
    const queued = Array.from({ length: 4 }, () => exchange(port, NAMES_REQ, { host: '::1', waitMs: 8000 }));
    await sleep(200);
    step.proc.kill('SIGTERM');
    await sleep(500);
    expect(step.proc.exitCode, 'the hand-over waits while connections are queued').toBeNull();
    process.kill(otp.pid, 'SIGCONT');
    expect(await step.exited).toBe(0);
    for (const r of await Promise.all(queued)) expect(r.recv.subarray(4).toString('latin1'), 'answered by OTP\'s epmd from its queue').toBe('name otpnode at port 5001\n');
    const lines = step.stderr().split('\n');
    expect(lines[1]).toBe('epmd-ng: fd 3 (epmd.socket): takes no new connections (their clients try again in 1 s)');
    expect(lines[2]).toMatch(/^epmd-ng: accept queues empty after \d+ ms: the epmd serving these sockets can stop$/);
    // What `systemctl stop epmd.socket epmd.service` then does: OTP's epmd exits, the socket closes.
    await otp.stop();
    const otpGone = Date.now() - v6.t0;
    await sleep(3000);
    await v6.stop();

    const errors = v6.answers.filter((a) => 'error' in a);
    const byOtp = v6.answers.filter((a) => 'by' in a && a.by === 'otp').length;
    const byNg = v6.answers.filter((a) => 'by' in a && a.by === 'epmd-ng').length;
    console.log(`hand-over under an IPv6 flood: ${v6.answers.length} answers, ${byOtp} by OTP's epmd, ${byNg} by epmd-ng, ${errors.length} errors`);
    expect(errors.slice(0, 10)).toEqual([]);
    expect(byOtp, 'the kernel gave IPv6 to OTP\'s dual-stack socket before').toBeGreaterThan(50);
    expect(byNg, 'and to epmd-ng once it had closed').toBeGreaterThan(50);
    // A connection made once OTP's epmd had stopped was answered by epmd-ng.
    expect(v6.answers.filter((a) => a.t > otpGone && !('by' in a && a.by === 'epmd-ng'))).toEqual([]);
  }, 60_000);

  it('when the epmd serving the socket does not accept, it gives up after 5 s and says how many clients will be reset, exit 1', async () => {
    const { otp, fd, port } = await otpOnDualStack(native);
    const step = await handOver(fd);
    fs.closeSync(fd);
    process.kill(otp.pid, 'SIGSTOP');
    const stuck = [exchange(port, NAMES_REQ, { host: '::1', waitMs: 15_000 }), exchange(port, NAMES_REQ, { host: '127.0.0.1', waitMs: 15_000 })];
    await sleep(300);
    const t0 = Date.now();
    step.proc.kill('SIGTERM');
    expect(await step.exited).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4900);
    expect(step.stderr().split('\n').slice(2)).toEqual([
      'epmd-ng: 2 connection(s) still queued after 5000 ms: the epmd serving these sockets does not accept them, and their clients will be reset when it stops',
      '',
    ]);
    // Nothing was lost by waiting: OTP's epmd, running again, answers both.
    process.kill(otp.pid, 'SIGCONT');
    for (const r of await Promise.all(stuck)) expect(r).toMatchObject({ end: 'FIN', recv: expect.objectContaining({ length: 4 }) });
  }, 30_000);

  it('refuses sockets that are not erlang-base\'s (epmd-ng\'s own, once epmd.socket is its alias): touches nothing, exit 1', async () => {
    const port = await freePort();
    const fd = native.listenTcp('::', port, { ipv6Only: true, thisHostOnly: true });
    try {
      const step = runActivated(['hand-over-sockets'], [fd], 'epmd-local');
      expect(await step.exited).toBe(1);
      expect(step.stderr()).toBe("epmd-ng: refusing to hand over fd 3 (epmd-local): not erlang-base's epmd.socket (is epmd.socket epmd-ng's own already?)\n");
      expect(native.sockInfo(fd)?.reusePort).toBe(false);
      expect(native.filterState(fd)).toBe('this-host-only');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('without sockets from systemd: one line saying which unit runs it, exit 1', async () => {
    const step = runActivated(['hand-over-sockets'], [], 'epmd.socket');
    expect(await step.exited).toBe(1);
    expect(step.stderr()).toBe('epmd-ng: systemd passed no listening sockets (run by epmd-ng-handover.service, with Sockets=epmd.socket)\n');
  });
});
