// Daemon start-up (spec §11.2, §12; golden section G-E F3, F7 and F8): "already running" exits 0,
// the port from ERL_EPMD_PORT, explicit -address lists and ERL_EPMD_ADDRESS. Only loopback
// addresses are used. The wildcard addresses and the no-address default differ on purpose
// between OTP and epmd-ng and are covered in deviations.test.ts.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { NAMES_REQ, Resources, exchange, freePort, listenerKeys, pidsListeningOn, runCmd, sleep, u32, waitUntil } from './util.js';

const res = new Resources();
afterEach(() => res.cleanup());

describe('F3 a second daemon on a port already in use', () => {
  it.each([[[] as string[]], [['-d']]])('exits 0 (args %j) and the first daemon keeps serving', async (extra) => {
    const d = await res.daemon();
    await res.register(d.port, { port: 4242, name: 'first' });
    const r = await runCmd(['-port', String(d.port), ...extra], { timeoutMs: 5000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(0);
    const names = await exchange(d.port, NAMES_REQ);
    expect(names.recv).toEqual(Buffer.concat([u32(d.port), Buffer.from('name first at port 4242\n')]));
    expect(await Promise.race([d.exited.then(() => 'exited'), sleep(200).then(() => 'running')])).toBe('running');
  });
});

describe('port selection', () => {
  it('without -port the daemon uses ERL_EPMD_PORT and reports it', async () => {
    const port = await freePort();
    const d = await res.daemon([], { port, noPortFlag: true, env: { ERL_EPMD_PORT: String(port) } });
    expect(listenerKeys(d.pid).every((k) => k.endsWith(`:${port}`))).toBe(true);
    expect((await exchange(port, NAMES_REQ)).recv).toEqual(u32(port));
  });

  it('-port overrides ERL_EPMD_PORT', async () => {
    const other = await freePort();
    const d = await res.daemon([], { env: { ERL_EPMD_PORT: String(other) } });
    expect(listenerKeys(d.pid).every((k) => k.endsWith(`:${d.port}`))).toBe(true);
    expect((await exchange(d.port, NAMES_REQ)).recv).toEqual(u32(d.port));
    await expect(exchange(other, NAMES_REQ)).rejects.toThrow();
  });
});

describe('F7 -address lists (loopback addresses only)', () => {
  it('-address 127.0.0.1 and -address ::1 both give exactly 127.0.0.1 and [::1]', async () => {
    for (const addr of ['127.0.0.1', '::1']) {
      const d = await res.daemon(['-address', addr]);
      expect(listenerKeys(d.pid)).toEqual([`127.0.0.1:${d.port}`, `[::1]:${d.port}`].sort());
      await d.stop();
    }
  });

  it('-address 127.0.0.2 adds its own socket to the implicit loopback pair', async () => {
    const d = await res.daemon(['-address', '127.0.0.2']);
    expect(listenerKeys(d.pid)).toEqual([`127.0.0.1:${d.port}`, `127.0.0.2:${d.port}`, `[::1]:${d.port}`].sort());
    expect((await exchange(d.port, NAMES_REQ, { host: '127.0.0.2' })).recv).toEqual(u32(d.port));
  });

  it('commas and spaces both separate addresses', async () => {
    const d = await res.daemon(['-address', ' 127.0.0.2, 127.0.0.3 ,127.0.0.4']);
    expect(listenerKeys(d.pid)).toEqual(
      [`127.0.0.1:${d.port}`, `127.0.0.2:${d.port}`, `127.0.0.3:${d.port}`, `127.0.0.4:${d.port}`, `[::1]:${d.port}`].sort(),
    );
  });

  it('ERL_EPMD_ADDRESS=127.0.0.3 is used when no -address is given', async () => {
    const d = await res.daemon([], { env: { ERL_EPMD_ADDRESS: '127.0.0.3' } });
    expect(listenerKeys(d.pid)).toEqual([`127.0.0.1:${d.port}`, `127.0.0.3:${d.port}`, `[::1]:${d.port}`].sort());
  });

  it('-address overrides ERL_EPMD_ADDRESS', async () => {
    const d = await res.daemon(['-address', '127.0.0.4'], { env: { ERL_EPMD_ADDRESS: '127.0.0.3' } });
    expect(listenerKeys(d.pid)).toEqual([`127.0.0.1:${d.port}`, `127.0.0.4:${d.port}`, `[::1]:${d.port}`].sort());
  });

  const extra = (n: number): string => Array.from({ length: n }, (_, i) => `127.0.1.${i + 2}`).join(',');

  it('13 extra addresses are accepted (16 sockets at most)', async () => {
    const d = await res.daemon(['-address', extra(13)]);
    expect(listenerKeys(d.pid).length).toBe(15);
  });

  it('14 extra addresses: exit 1 with a message, nothing served', async () => {
    const port = await freePort();
    const r = await runCmd(['-port', String(port), '-address', `${extra(14)},`], { timeoutMs: 5000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().length).toBeGreaterThan(0);
    await expect(exchange(port, NAMES_REQ)).rejects.toThrow();
  });

  it('an unparsable address: exit 1 with a message naming it, nothing served', async () => {
    const port = await freePort();
    const r = await runCmd(['-port', String(port), '-address', '999.1.1.1'], { timeoutMs: 5000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('999.1.1.1');
    await expect(exchange(port, NAMES_REQ)).rejects.toThrow();
  });

  it('an address list of only separators behaves like no address (both loopback families served)', async () => {
    const d = await res.daemon(['-address', ' , ']);
    for (const host of ['127.0.0.1', '::1']) expect((await exchange(d.port, NAMES_REQ, { host })).recv).toEqual(u32(d.port));
  });
});

describe('F8 -daemon', () => {
  it('returns 0 at once; the detached daemon serves from cwd / with stdio on /dev/null and stops on KILL', async () => {
    const port = await freePort();
    const started = Date.now();
    const r = await runCmd(['-port', String(port), '-daemon'], { timeoutMs: 5000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
    let pids: number[] = [];
    try {
      expect(await waitUntil(() => (pids = pidsListeningOn(port)).length === 1, 5000)).toBe(true);
      const pid = pids[0]!;
      expect(fs.readlinkSync(`/proc/${pid}/cwd`)).toBe('/');
      for (const fd of [0, 1, 2]) expect(fs.readlinkSync(`/proc/${pid}/fd/${fd}`)).toBe('/dev/null');
      expect((await exchange(port, NAMES_REQ)).recv).toEqual(u32(port));
      // A second `-daemon` on the same port still exits 0 (the parent does not wait for the bind).
      const again = await runCmd(['-port', String(port), '-daemon'], { timeoutMs: 5000 });
      expect(again.code).toBe(0);
      await sleep(300);
      expect(pidsListeningOn(port)).toEqual([pid]);
      const kill = await runCmd(['-port', String(port), '-kill']);
      expect(kill.stdout.toString()).toBe('Killed\n');
      expect(await waitUntil(() => !fs.existsSync(`/proc/${pid}`) || /State:\s+Z/.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')), 5000)).toBe(true);
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
});
