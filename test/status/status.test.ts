// `epmd-ng status` against a real daemon: every count moves with real traffic (registrations,
// lookups, violations, evictions, snapshots); and the one-line errors against OTP's epmd, a port
// nobody listens on, and bad flags.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryReserve } from '../../src/server/connections.js';
import type { StatusDocument } from '../../src/status/document.js';
import { awaitDaemon, bundle, cleanEnv, repoRoot, runCli, startDaemon, type Daemon } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { exchange, hex, register, type Registration } from '../helpers/wire.js';

const NG = [process.execPath, bundle];
const status = (port: number, ...flags: string[]) => runCli(['status', '-p', String(port), ...flags], {}, NG);
const statusJson = async (port: number): Promise<StatusDocument> => {
  const r = await status(port, '--json');
  expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(r.stdout) as StatusDocument;
};

/** A one-line error on stderr, nothing on stdout, exit status 1. */
function expectOneLineError(r: { code: number | null; stdout: string; stderr: string }, text: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^epmd-ng: [^\n]+\n$/);
  expect(r.stderr).toMatch(text);
}

describe('epmd-ng status against a running daemon', () => {
  let daemon: Daemon;
  let stateDir: string;
  let node: Registration;
  const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-status-'));
    daemon = await startDaemon([], { env: { EPMD_NG_STATE_DIR: stateDir, EPMD_NG_LOG_LEVEL: 'error' } });
    node = await register(daemon.port, { name: 'alpha', port: 40001 });
    await exchange(daemon.port, hex('00 01 6e'));
    await exchange(daemon.port, hex('00 01 6e'));
    await exchange(daemon.port, Buffer.concat([hex('00 06 7a'), Buffer.from('alpha')]));
    await exchange(daemon.port, hex('00 00')); // a zero length: framing
    await exchange(daemon.port, hex('00 01 61')); // legacy 'a': malformed
    await new Promise((r) => setTimeout(r, 1200)); // the snapshot is written within 1 s of a change
  });
  afterAll(async () => {
    await node?.close();
    await daemon?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('--json: nodes, connections, requests, violations, snapshot, fd store and watchdog', async () => {
    const doc = await statusJson(daemon.port);
    expect(doc).toMatchObject({
      format: 1,
      version,
      pid: daemon.pid,
      port: daemon.port,
      addresses: [`0.0.0.0:${daemon.port}`, `[::]:${daemon.port}`],
      reach: `port ${daemon.port} for this host only (every local address)`,
      activated: false,
      nodes: { active: 1, provisional: 0 },
      requests: { alive2: 1, 'port-please2': 1, names: 2, dump: 0, kill: 0, stop: 0, status: 1 },
      violations: { framing: 1, malformed: 1, 'non-local': 0, overload: 0 },
      fdStore: { enabled: false, registrations: 0 },
      snapshot: { enabled: true, file: path.join(stateDir, 'registry.json'), lastResult: 'ok', lastError: null },
      watchdog: { enabled: false, periodMs: null, lastPingAt: null },
    });
    // The registration and this very request are open; accepted also counts the five exchanges and
    // startDaemon's readiness probe.
    expect(doc.connections.open).toBe(2);
    expect(doc.connections.accepted).toBe(8);
    // Each listening socket keeps the backlog OTP asks for (SOMAXCONN, capped by the kernel's
    // net.core.somaxconn), and nobody waits to be accepted while the daemon answers.
    const backlog = Math.min(4096, Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')));
    expect(doc.listeners).toEqual(doc.addresses.map((address) => ({ address, backlog, queued: 0 })));
    expect(doc.snapshot.writes).toBeGreaterThanOrEqual(1);
    expect(Date.now() - Date.parse(doc.snapshot.lastAt!)).toBeLessThan(60_000);
    expect(doc.uptimeSeconds).toBeGreaterThan(1);
    expect(Date.parse(doc.startedAt)).toBeLessThanOrEqual(Date.now());
  });

  it('counts go up with each request, and every violation counts even when its log line is rate-limited', async () => {
    const before = await statusJson(daemon.port);
    for (let i = 0; i < 25; i++) await exchange(daemon.port, hex('00 00'));
    const after = await statusJson(daemon.port);
    expect(after.violations.framing - before.violations.framing).toBe(25);
    expect(after.requests.status - before.requests.status).toBe(1);
  });

  it('text: one line per topic, for a person', async () => {
    const r = await status(daemon.port);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^epmd-ng ${version.replace(/\./g, '\\.')}, pid ${daemon.pid}, up \\d+s \\(since \\d{4}-.+Z\\)$`));
    expect(lines).toContain(`listening:   0.0.0.0:${daemon.port}, [::]:${daemon.port}; reported port ${daemon.port}`);
    expect(lines).toContain(`reach:       port ${daemon.port} for this host only (every local address)`);
    expect(lines.find((l) => l.startsWith('backlog: '))).toMatch(new RegExp(`^backlog: {5}0\\.0\\.0\\.0:${daemon.port} 0 queued of \\d+, \\[::\\]:${daemon.port} 0 queued of \\d+$`));
    expect(lines).toContain('nodes:       1 active, 0 provisional');
    const connections = /^connections: 2 open, cap (\d+) \(registrations up to (\d+)\), \d+ accepted, 0 evicted, 0 refused$/.exec(lines.find((l) => l.startsWith('connections: ')) ?? '');
    expect(connections, lines.join('\n')).not.toBeNull();
    expect(Number(connections![2])).toBe(Number(connections![1]) - queryReserve(Number(connections![1])));
    expect(lines.find((l) => l.startsWith('violations: '))).toMatch(/^violations: {2}framing \d+, malformed 1$/);
    expect(lines.find((l) => l.startsWith('snapshot: '))).toMatch(/^snapshot: {4}saved at \d{4}-.+Z, \d+ written, to .*registry\.json$/);
    expect(lines).toContain('fd store:    off');
    expect(lines).toContain('watchdog:    off');
  });

  it('--prometheus: valid text exposition, HELP and TYPE for every metric, the same numbers', async () => {
    const r = await status(daemon.port, '--prometheus');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const typed = new Set<string>();
    const samples = new Map<string, number>();
    for (const line of lines) {
      const comment = /^# (HELP|TYPE) ([a-z_]+) (.+)$/.exec(line);
      if (comment) {
        if (comment[1] === 'TYPE') {
          expect(comment[3]).toMatch(/^(gauge|counter)$/);
          if (comment[3] === 'counter') expect(comment[2]).toMatch(/_total$/);
          typed.add(comment[2]!);
        }
        continue;
      }
      const sample = /^([a-z_]+)(\{[a-z_]+="(?:[^"\\\n]|\\.)*"(?:,[a-z_]+="(?:[^"\\\n]|\\.)*")*\})? (-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/.exec(line);
      expect(sample, line).not.toBeNull();
      expect(typed.has(sample![1]!), `${sample![1]} has no TYPE line before it`).toBe(true);
      samples.set(`${sample![1]}${sample![2] ?? ''}`, Number(sample![3]));
    }
    expect(samples.get('epmd_ng_nodes{state="active"}')).toBe(1);
    expect(samples.get('epmd_ng_requests_total{type="names"}')).toBe(2);
    expect(samples.get('epmd_ng_requests_total{type="alive2"}')).toBe(1);
    expect(samples.get('epmd_ng_connections')).toBe(2);
    expect(samples.get('epmd_ng_snapshot_last_success')).toBe(1);
    expect(samples.get('epmd_ng_fdstore_enabled')).toBe(0);
    expect(samples.get(`epmd_ng_listening{address="[::]:${daemon.port}"}`)).toBe(1);
    expect(samples.get(`epmd_ng_listen_backlog{address="[::]:${daemon.port}"}`)).toBe(Math.min(4096, Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'))));
    expect(samples.get(`epmd_ng_listen_queued{address="0.0.0.0:${daemon.port}"}`)).toBe(0);
    expect(samples.get(`epmd_ng_info{version="${version}",port="${daemon.port}"}`)).toBe(1);
    expect(Math.abs(samples.get('epmd_ng_start_time_seconds')! - Date.now() / 1000)).toBeLessThan(120);
  });
});

describe('evictions under the connection cap', () => {
  it('counts the connections evicted to make room', async () => {
    const daemon = await startDaemon([], { env: { EPMD_NG_MAX_CONNECTIONS: '3', EPMD_NG_LOG_LEVEL: 'error' } });
    const idle: net.Socket[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const s = net.connect({ host: '127.0.0.1', port: daemon.port });
        s.on('error', () => {});
        await new Promise((r) => s.once('connect', r));
        idle.push(s);
      }
      await new Promise((r) => setTimeout(r, 100));
      const doc = await statusJson(daemon.port);
      // The fourth idle connection evicted the first; the status request evicted the second.
      // A cap of 3 keeps 1 connection for queries.
      expect(doc.connections).toMatchObject({ max: 3, registrationLimit: 2, evictions: 2, refused: 0, open: 3 });
      expect(doc.violations.overload).toBe(2);
    } finally {
      for (const s of idle) s.destroy();
      await daemon.stop();
    }
  });
});

describe('one-line errors and a non-zero exit', () => {
  let otp: Daemon;
  beforeAll(async () => {
    const port = await freePort();
    const proc = spawn('/usr/bin/epmd', ['-port', String(port), '-address', '127.0.0.1'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const started = await awaitDaemon(proc, port);
    if (started instanceof Error) throw started;
    otp = started;
  });
  afterAll(() => otp?.stop());

  it("against OTP's epmd: it does not answer status requests", async () => {
    const r = await status(otp.port);
    expectOneLineError(r, new RegExp(`^epmd-ng: the daemon on port ${otp.port} does not answer status requests \\(OTP's epmd or an older epmd-ng\\?\\)$`, 'm'));
    // OTP's epmd is still serving afterwards.
    expect((await runCli(['-port', String(otp.port), '-names'], {}, ['/usr/bin/epmd'])).code).toBe(0);
  });

  it('against a port nobody listens on', async () => {
    const port = await freePort();
    expectOneLineError(await status(port), new RegExp(`cannot connect to epmd on port ${port} \\(is it running\\?\\)`));
    expectOneLineError(await status(port, '--prometheus'), /cannot connect/);
  });

  it('bad flags and values', async () => {
    expectOneLineError(await runCli(['status', '--bogus'], {}, NG), /unknown option '--bogus'/);
    expectOneLineError(await runCli(['status', '--json', '--prometheus'], {}, NG), /'--json' cannot be used with option '--prometheus'/);
    expectOneLineError(await runCli(['status', '-p', '70000'], {}, NG), /invalid port "70000"/);
    expectOneLineError(await runCli(['status', 'extra'], {}, NG), /too many arguments/);
    expectOneLineError(await runCli(['status'], { ERL_EPMD_PORT: 'abc' }, NG), /ERL_EPMD_PORT/);
  });
});
