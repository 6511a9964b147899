// `epmd-ng status` output from a fixed document: the text a person reads and Prometheus's text
// exposition format (escaping, HELP/TYPE, zero timestamps), and reading a STATUS_REQ reply.
import { describe, expect, it } from 'vitest';
import { parseStatusReply } from '../../src/cli/status.js';
import { REQUEST_TYPES, VIOLATIONS } from '../../src/status/counters.js';
import type { StatusDocument } from '../../src/status/document.js';
import { renderPrometheus, renderText } from '../../src/status/render.js';

const zero = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

function doc(over: Partial<StatusDocument> = {}): StatusDocument {
  return {
    format: 1,
    version: '1.2.3',
    pid: 42,
    startedAt: '2026-01-02T03:04:05.000Z',
    uptimeSeconds: 90061.5,
    port: 4369,
    addresses: ['0.0.0.0:4369', '[::]:4369'],
    reach: 'port 4369 for this host only (every local address)',
    activated: true,
    listeners: [
      { address: '0.0.0.0:4369', backlog: 4096, queued: 3 },
      { address: '[::]:4369', backlog: 4096, queued: 0 },
    ],
    nodes: { active: 3, provisional: 1 },
    connections: { open: 5, max: 16384, registrationLimit: 16320, accepted: 100, evictions: 2, refused: 1 },
    requests: { ...zero(REQUEST_TYPES), alive2: 3, 'port-please2': 50 },
    violations: { ...zero(VIOLATIONS), framing: 4 },
    fdStore: { enabled: true, registrations: 3, pending: 0 },
    snapshot: { enabled: true, file: '/var/lib/epmd-ng/registry.json', lastAt: '2026-01-03T00:00:00.000Z', lastResult: 'ok', lastError: null, writes: 7 },
    watchdog: { enabled: true, periodMs: 5000, lastPingAt: '2026-01-03T00:00:01.000Z', withheld: 0, failures: 0 },
    ...over,
  };
}

describe('status text', () => {
  it('one line per topic', () => {
    expect(renderText(doc())).toBe(
      [
        'epmd-ng 1.2.3, pid 42, up 1d 1h 1m 1s (since 2026-01-02T03:04:05.000Z)',
        'listening:   0.0.0.0:4369, [::]:4369 (sockets from systemd); reported port 4369',
        'backlog:     0.0.0.0:4369 3 queued of 4096, [::]:4369 0 queued of 4096',
        'reach:       port 4369 for this host only (every local address)',
        'nodes:       3 active, 1 provisional',
        'connections: 5 open, cap 16384 (registrations up to 16320), 100 accepted, 2 evicted, 1 refused',
        'requests:    alive2 3, port-please2 50, names 0, dump 0, kill 0, stop 0, status 0',
        'violations:  framing 4',
        'fd store:    3 registrations held, 0 messages pending',
        'snapshot:    saved at 2026-01-03T00:00:00.000Z, 7 written, to /var/lib/epmd-ng/registry.json',
        'watchdog:    ping every 5000 ms, last 2026-01-03T00:00:01.000Z, 0 withheld, 0 failed',
        '',
      ].join('\n'),
    );
  });

  it('failures, and what is off', () => {
    const text = renderText(
      doc({
        uptimeSeconds: 59,
        activated: false,
        violations: zero(VIOLATIONS),
        fdStore: { enabled: false, registrations: 0, pending: 0 },
        snapshot: { enabled: true, file: '/s/registry.json', lastAt: '2026-01-03T00:00:00.000Z', lastResult: 'failed', lastError: 'EROFS: read-only file system', writes: 0 },
        watchdog: { enabled: false, periodMs: null, lastPingAt: null, withheld: 0, failures: 0 },
      }),
    );
    expect(text).toContain('up 59s (since');
    expect(text).toContain('listening:   0.0.0.0:4369, [::]:4369; reported port 4369\n');
    expect(text).toContain('violations:  none\n');
    expect(text).toContain('fd store:    off\n');
    expect(text).toContain('snapshot:    FAILED (EROFS: read-only file system) at 2026-01-03T00:00:00.000Z, 0 written, to /s/registry.json\n');
    expect(text).toContain('watchdog:    off\n');
    expect(renderText(doc({ snapshot: { enabled: false, file: null, lastAt: null, lastResult: null, lastError: null, writes: 0 } }))).toContain('snapshot:    off (no state directory)\n');
  });

  it('accept queues the daemon cannot read, and a daemon too old to send them', () => {
    const unreadable = doc({ listeners: [{ address: '127.0.0.1:4369', backlog: null, queued: null }] });
    expect(renderText(unreadable)).toContain('backlog:     not readable (the daemon runs without its addon)\n');
    expect(renderPrometheus(unreadable)).not.toMatch(/^epmd_ng_listen_(backlog|queued)\{/m);
    const older = doc();
    delete older.listeners;
    expect(renderText(older)).not.toContain('backlog:');
    delete older.connections.registrationLimit;
    expect(renderText(older)).toContain('connections: 5 open, cap 16384, 100 accepted');
    expect(renderPrometheus(older)).not.toContain('epmd_ng_registrations_max');
    expect(renderText(older).split('\n')).toHaveLength(renderText(doc()).split('\n').length - 1);
  });
});

describe('Prometheus text exposition', () => {
  const text = renderPrometheus(doc());

  it('HELP and TYPE once per metric, before its samples; counters end in _total', () => {
    const lines = text.trimEnd().split('\n');
    const seen: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      const help = /^# HELP (\S+) .+$/.exec(lines[i]!);
      if (!help) continue;
      const type = /^# TYPE (\S+) (gauge|counter)$/.exec(lines[i + 1]!);
      expect(type?.[1]).toBe(help[1]);
      if (type?.[2] === 'counter') expect(help[1]).toMatch(/_total$/);
      seen.push(help[1]!);
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const line of lines.filter((l) => !l.startsWith('#'))) expect(seen).toContain(line.replace(/[{ ].*$/, ''));
  });

  it('the values, times in seconds since the epoch', () => {
    expect(text).toContain('epmd_ng_nodes{state="active"} 3\nepmd_ng_nodes{state="provisional"} 1\n');
    expect(text).toContain('epmd_ng_requests_total{type="port-please2"} 50\n');
    expect(text).toContain('epmd_ng_violations_total{kind="non-local"} 0\n');
    expect(text).toContain('epmd_ng_evictions_total 2\n');
    expect(text).toContain('epmd_ng_registrations_max 16320\n');
    expect(text).toContain('epmd_ng_listen_backlog{address="0.0.0.0:4369"} 4096\nepmd_ng_listen_backlog{address="[::]:4369"} 4096\n');
    expect(text).toContain('epmd_ng_listen_queued{address="0.0.0.0:4369"} 3\nepmd_ng_listen_queued{address="[::]:4369"} 0\n');
    expect(text).toContain(`epmd_ng_start_time_seconds ${Date.parse('2026-01-02T03:04:05.000Z') / 1000}\n`);
    expect(text).toContain(`epmd_ng_snapshot_last_time_seconds ${Date.parse('2026-01-03T00:00:00.000Z') / 1000}\n`);
    expect(text).toContain('epmd_ng_watchdog_enabled 1\n');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('no time yet is 0; label values are escaped', () => {
    const none = renderPrometheus(doc({ version: 'a"b\\c\nd', watchdog: { enabled: false, periodMs: null, lastPingAt: null, withheld: 0, failures: 0 } }));
    expect(none).toContain('epmd_ng_watchdog_last_ping_time_seconds 0\n');
    expect(none).toContain('epmd_ng_info{version="a\\"b\\\\c\\nd",port="4369"} 1\n');
  });
});

describe('reading a STATUS_REQ reply', () => {
  it('a document', () => expect(parseStatusReply(Buffer.from(`${JSON.stringify(doc())}\n`), 4369)).toEqual(doc()));
  it('nothing: an epmd that does not know the request', () =>
    expect(parseStatusReply(Buffer.alloc(0), 4369)).toBe("the daemon on port 4369 does not answer status requests (OTP's epmd or an older epmd-ng?)"));
  it('garbage or another format', () => {
    expect(parseStatusReply(Buffer.from('OK'), 1)).toBe('the daemon on port 1 sent an unreadable status reply (2 bytes)');
    expect(parseStatusReply(Buffer.from('{"format":2}'), 1)).toBe('the daemon on port 1 sent a status document of format 2, this epmd-ng reads 1');
    expect(parseStatusReply(Buffer.from('null'), 1)).toBe('the daemon on port 1 sent a status document of format undefined, this epmd-ng reads 1');
  });
});
