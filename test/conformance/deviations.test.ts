// Behaviours where epmd-ng deliberately differs from OTP's epmd (spec §17 and the project's
// this-host-only default). Every test asserts OTP's observed behaviour when EPMD_IMPL=otp and the
// recommended fixed behaviour for epmd-ng.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, daemonCommand, impl } from '../helpers/daemon.js';
import { alive2Payload } from '../helpers/wire.js';
import {
  Conn,
  NAMES_REQ,
  PORT2_NOT_FOUND,
  Resources,
  exchange,
  frame,
  freePort,
  hex,
  launchDaemon,
  listenerKeys,
  listenersOf,
  namesReply,
  port2Ok,
  portPleaseReq,
  runCmd,
  sleep,
  u32,
  waitUntil,
} from './util.js';

const res = new Resources();
afterEach(() => res.cleanup());

describe('listening addresses without -address', () => {
  // Both bind the wildcards; epmd-ng's serve this host only (its socket filter and accept-time
  // check: test/hosts/host-names.test.ts shows other hosts get nothing, OTP's epmd answers them).
  it('both bind 0.0.0.0 and [::] (every local address)', async () => {
    const d = await res.daemon();
    expect(listenerKeys(d.pid)).toEqual([`0.0.0.0:${d.port}`, `[::]:${d.port}`].sort());
    // Either way both loopback families are served.
    for (const host of ['127.0.0.1', '::1']) expect((await exchange(d.port, NAMES_REQ, { host })).recv).toEqual(u32(d.port));
  });
});

describe('Q7 wildcard -address', () => {
  it.each(['0.0.0.0', '::'])('-address %s: OTP exits 0 without serving; epmd-ng serves with the wildcard covering loopback', async (addr) => {
    const port = await freePort();
    if (impl === 'otp') {
      const r = await runCmd(['-port', String(port), '-address', addr], { timeoutMs: 5000 });
      expect(r.timedOut).toBe(false);
      expect(r.code).toBe(0);
      await expect(exchange(port, NAMES_REQ)).rejects.toThrow();
    } else {
      const d = await res.daemon(['-address', addr], { port });
      const keys = listenerKeys(d.pid);
      expect(keys).toContain(addr === '::' ? `[::]:${port}` : `0.0.0.0:${port}`);
      for (const host of ['127.0.0.1', '::1']) expect((await exchange(port, NAMES_REQ, { host })).recv).toEqual(u32(port));
    }
  });
});

describe('Q8 -port above 65535', () => {
  it('OTP binds port mod 65536 and reports the untruncated value; epmd-ng rejects it with a usage error', async () => {
    const port = await freePort();
    const big = port + 65536;
    if (impl === 'otp') {
      const d = await res.daemon(['-port', String(big)], { port, noPortFlag: true });
      expect(listenersOf(d.pid).every((l) => l.port === port)).toBe(true);
      expect((await exchange(port, NAMES_REQ)).recv).toEqual(u32(big));
    } else {
      const r = await runCmd(['-port', String(big)], { timeoutMs: 5000 });
      expect(r.timedOut).toBe(false);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().length).toBeGreaterThan(0);
      await expect(exchange(port, NAMES_REQ)).rejects.toThrow();
    }
  });
});

describe('Q9 non-numeric ERL_EPMD_PORT', () => {
  it('OTP listens on kernel-chosen ports and reports port 0; epmd-ng exits 1 with a message', async () => {
    if (impl === 'otp') {
      const [cmd, ...prefix] = daemonCommand();
      const proc = spawn(cmd!, prefix, { env: cleanEnv({ ERL_EPMD_PORT: 'abc' }), stdio: ['ignore', 'pipe', 'pipe'] });
      res.adoptProc(proc);
      const exited = new Promise((r) => proc.on('exit', r));
      try {
        expect(await waitUntil(() => listenersOf(proc.pid!).length >= 2, 5000)).toBe(true);
        const ls = listenersOf(proc.pid!);
        const v4 = ls.find((l) => l.family === 4)!;
        expect(v4.port).toBeGreaterThan(0);
        expect((await exchange(v4.port, NAMES_REQ)).recv).toEqual(u32(0));
      } finally {
        proc.kill('SIGTERM');
        await exited;
      }
    } else {
      const r = await runCmd([], { env: { ERL_EPMD_PORT: 'abc' }, timeoutMs: 5000 });
      expect(r.timedOut).toBe(false);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().length).toBeGreaterThan(0);
    }
  });
});

describe('Q5 accept() failing with EMFILE', () => {
  it(
    'with RLIMIT_NOFILE 128 and 150 idle clients OTP exits 1 losing its registrations; epmd-ng keeps serving',
    async () => {
      const port = await freePort();
      const d = res.adoptDaemon(await launchDaemon({ args: ['-port', String(port)], nofile: 128, probePort: port }));
      const f = { port: 4711, name: 'survivor' };
      const reg = await res.register(port, f);
      expect(reg.reply.subarray(0, 2)).toEqual(hex('76 00'));

      const attempts = await Promise.allSettled(Array.from({ length: 150 }, () => Conn.open(port)));
      const conns = attempts.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
      for (const c of conns) res.trackSocket(c.socket);
      await sleep(1000);

      if (impl === 'otp') {
        const ex = await Promise.race([d.exited, sleep(5000).then(() => 'running' as const)]);
        expect(ex).toEqual({ code: 1, signal: null });
        expect(d.stderr()).toContain('Too many open files');
        await expect(exchange(port, NAMES_REQ)).rejects.toThrow();
      } else {
        expect(await Promise.race([d.exited.then(() => 'exited'), sleep(1000).then(() => 'running')])).toBe('running');
        for (const c of conns) c.destroy();
        await sleep(500);
        // Still serving, and the registration made before the flood is intact.
        expect((await exchange(port, portPleaseReq('survivor'))).recv).toEqual(port2Ok(f));
        expect((await exchange(port, NAMES_REQ)).recv).toEqual(namesReply(port, [['survivor', 4711]]));
      }
    },
    30_000,
  );
});

describe('Q17 / G-M duplicate ALIVE2 whose error reply cannot be written', () => {
  it(
    'OTP unregisters the legitimate holder (victim invisible, its connection left open); epmd-ng keeps the victim registered',
    async () => {
      const d = await res.daemon(['-delay_write', '1']);
      const f = { port: 4712, name: 'victim' };
      const victim = await res.register(d.port, f); // the reply takes ~1 s (delay_write)
      expect(victim.reply.subarray(0, 2)).toEqual(hex('76 00'));
      let victimClosed = false;
      void victim.closed.then(() => (victimClosed = true));

      // A second node claims the same name and resets its connection before the delayed
      // error reply is written.
      const dup = await res.conn(d.port);
      dup.write(frame(alive2Payload({ port: 4713, name: 'victim' })));
      await sleep(500);
      dup.reset();
      await sleep(2000);

      const pp = await exchange(d.port, portPleaseReq('victim'), { waitMs: 6000 });
      const names = await exchange(d.port, NAMES_REQ, { waitMs: 6000 });
      if (impl === 'otp') {
        expect(pp.recv).toEqual(PORT2_NOT_FOUND);
        expect(names.recv).toEqual(u32(d.port));
      } else {
        expect(pp.recv).toEqual(port2Ok(f));
        expect(names.recv).toEqual(namesReply(d.port, [['victim', 4712]]));
      }
      // In both cases the victim's own registration connection is still open.
      expect(victimClosed).toBe(false);
    },
    30_000,
  );
});
