// The operator's view on a real systemd 252 (Debian 12 in systemd-nspawn, scripts/sdh/): journal
// entries a person reads with fields journalctl filters on, the large-entry memfd path, the stderr
// fallback, `-daemon` logging to the journal or syslog, `epmd-ng status` against the hardened unit
// (DynamicUser=), the STATUS= line, and the example timer that publishes Prometheus metrics.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusDocument } from '../../src/status/document.js';
import { repoRoot } from '../helpers/daemon.js';
import { containerShell, waitFor, type JournalEntry } from './container.js';
import { installEpmdNg } from './install.js';
import { BOOT_TIMEOUT_MS, STOP_TIMEOUT_MS, bootContainer, containerName, isRoot, requireRoot, shareDir, stopContainer } from './sdh.js';

const name = containerName('epmd-ops');
const { sh, ok, show, journal } = containerShell(name);

const startNode = (node: string) => ok(`systemd-run --unit=erl-${node} --setenv=HOME=/root erl -sname ${node} -start_epmd false -noshell -noinput -setcookie c`);
const listed = async (node: string) => new RegExp(`^name ${node} at port \\d+$`, 'm').test((await sh('epmd -names')).stdout);
const statusJson = async (args = ''): Promise<StatusDocument> => JSON.parse(await ok(`epmd-ng status --json ${args}`)) as StatusDocument;

/** Entries of one unit, with the daemon's own fields. */
const entriesOf = (unit: string, match = '') => journal(unit, `${match} --all`);

describe('operator experience under a real systemd', () => {
  if (!isRoot()) {
    it('runs as root', () => requireRoot('test/systemd/operator.test.ts'));
    return;
  }

  beforeAll(async () => {
    await bootContainer(name);
    await installEpmdNg(name);
    await build({
      entryPoints: [path.join(repoRoot, 'test/fixtures/journal-large-entry.ts')],
      outfile: path.join(shareDir(name), 'journal-large-entry.mjs'),
      bundle: true,
      platform: 'node',
      target: 'node18',
      format: 'esm',
      banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
      logLevel: 'warning',
    });
    await startNode('a');
    await startNode('b');
    await waitFor('nodes a and b registered', async () => (await listed('a')) && (await listed('b')), 30_000);
  }, BOOT_TIMEOUT_MS);

  afterAll(() => stopContainer(name), STOP_TIMEOUT_MS);

  it('journalctl -u epmd-ng EPMD_NODE=a: one node\'s history, readable, with the fields in -o json', async () => {
    await ok('systemctl stop erl-a');
    await waitFor('a unregistered', async () => !(await listed('a')));
    const history = await entriesOf('epmd-ng.service', 'EPMD_NODE=a');
    expect(history.map((e) => e.EPMD_EVENT)).toEqual(['register', 'unregister']);
    const [registered, unregistered] = history as [JournalEntry, JournalEntry];
    expect(registered.MESSAGE).toBe(`node a registered: port ${registered.EPMD_PORT}, creation ${registered.EPMD_CREATION}, from ${registered.EPMD_PEER} (nodeType=77)`);
    expect(registered).toMatchObject({ PRIORITY: '6', SYSLOG_IDENTIFIER: 'epmd-ng', _TRANSPORT: 'journal', _SYSTEMD_UNIT: 'epmd-ng.service', EPMD_NODE: 'a' });
    expect(registered.EPMD_PEER).toMatch(/^(127\.0\.0\.1|\[::1\]):\d+$/);
    expect(Number(registered.EPMD_PORT)).toBeGreaterThan(1024);
    expect(Number(registered.EPMD_CREATION)).toBeGreaterThan(0);
    // The daemon runs as the unit's dynamic user: journald accepted the entries from it.
    expect(Number(registered._UID)).toBeGreaterThan(0);
    expect(unregistered).toMatchObject({ EPMD_REASON: 'closed', EPMD_PORT: registered.EPMD_PORT, EPMD_CREATION: registered.EPMD_CREATION, PRIORITY: '6' });
    expect(unregistered.MESSAGE).toBe(`node a unregistered (connection closed): port ${registered.EPMD_PORT}, creation ${registered.EPMD_CREATION}, from ${registered.EPMD_PEER}`);
    // Another node's filter does not show a's lines; the text output reads as sentences.
    expect((await entriesOf('epmd-ng.service', 'EPMD_NODE=b')).every((e) => e.EPMD_NODE === 'b')).toBe(true);
    const text = await ok('journalctl --no-pager -u epmd-ng -o cat EPMD_EVENT=register');
    expect(text).toMatch(/^node a registered: port \d+, creation \d+, from \S+ \(nodeType=77\)$/m);
    expect(text).not.toContain('{');
  });

  it('violations are warnings with their kind, so -p warning and EPMD_EVENT=violation filter them', async () => {
    await sh("printf '\\000\\000' > /dev/tcp/127.0.0.1/4369; sleep 0.3");
    const warnings = await entriesOf('epmd-ng.service', '-p warning EPMD_EVENT=violation');
    const framing = warnings.find((e) => e.EPMD_KIND === 'framing');
    expect(framing).toMatchObject({ PRIORITY: '4', EPMD_LENGTH: '0' });
    expect(framing!.MESSAGE).toMatch(/^invalid packet size from 127\.0\.0\.1:\d+ \(length=0\)$/);
    expect((await entriesOf('epmd-ng.service', '-p warning')).some((e) => e.EPMD_EVENT === 'register')).toBe(false);
  });

  it('an entry too large for a datagram reaches journald as a sealed memfd from an unprivileged sender', async () => {
    const size = 400_000;
    await ok(`systemd-run --wait --unit=large-entry -p DynamicUser=yes node /host/journal-large-entry.mjs ${size}`);
    // journald may still be reading it.
    await waitFor('the large entry', async () => (await entriesOf('large-entry.service', 'EPMD_EVENT=large-entry-test')).length > 0);
    const [entry] = await entriesOf('large-entry.service', 'EPMD_EVENT=large-entry-test');
    // (Compared piecewise: a failing match would print 400 kB.)
    expect(entry?._TRANSPORT).toBe('journal');
    expect(entry?.PRIORITY).toBe('6');
    expect(Number(entry?._UID)).toBeGreaterThan(0);
    // The message cuts long values; the field has every byte.
    expect(entry?.MESSAGE).toBe(`a large entry (blob=${'x'.repeat(200)}…)`);
    expect(entry?.EPMD_BLOB?.length).toBe(size);
    expect(/^x+$/.test(entry?.EPMD_BLOB ?? '')).toBe(true);
  });

  it('epmd-ng status against the hardened unit: any local user may ask, over the epmd port', async () => {
    const doc = await statusJson();
    expect(doc).toMatchObject({
      port: 4369,
      addresses: ['0.0.0.0:4369', '[::]:4369'],
      reach: 'port 4369 for this host only (every local address)',
      activated: true,
      nodes: { active: 1, provisional: 0 },
      fdStore: { enabled: true, registrations: 1 },
      snapshot: { enabled: true, file: '/var/lib/epmd-ng/registry.json', lastResult: 'ok', lastError: null },
      watchdog: { enabled: true, periodMs: 5000, withheld: 0, failures: 0 },
    });
    expect(doc.violations.framing).toBeGreaterThanOrEqual(1);
    expect(doc.requests.alive2).toBe(2);
    expect(doc.pid).toBe(Number((await show('epmd-ng.service', 'MainPID')).MainPID));
    await waitFor('a watchdog ping', async () => (await statusJson()).watchdog.lastPingAt !== null, 12_000);
    // An ordinary user needs nothing but loopback access, exactly as for epmd -names.
    const text = await ok('runuser -u nobody -- epmd-ng status');
    expect(text).toMatch(/^nodes: {7}1 active, 0 provisional$/m);
    expect(text).toMatch(/^fd store: {4}1 registrations held, 0 messages pending$/m);
    expect(text).toMatch(/^watchdog: {4}ping every 5000 ms, last \d{4}-.+Z, 0 withheld, 0 failed$/m);
    expect(text).toMatch(/^listening: {3}0\.0\.0\.0:4369, \[::\]:4369 \(sockets from systemd\); reported port 4369$/m);
    expect(text).toMatch(/^reach: {7}port 4369 for this host only \(every local address\)$/m);
    // The socket unit's sockets keep their backlog (systemd's default Backlog=, SOMAXCONN, capped
    // by the kernel): the daemon reads it from the sockets systemd passed.
    const somaxconn = Number(await ok('cat /proc/sys/net/core/somaxconn'));
    expect(doc.listeners?.map((l) => l.backlog)).toEqual([Math.min(4096, somaxconn), Math.min(4096, somaxconn)]);
    expect(text).toMatch(/^backlog: {5}0\.0\.0\.0:4369 \d+ queued of \d+, \[::\]:4369 \d+ queued of \d+$/m);
  });

  it('systemctl status: the STATUS= line gives nodes, provisional entries and connections', async () => {
    await waitFor('STATUS with one node', async () => /^Serving 1 node \(0 provisional\) on port 4369 for this host only \(every local address\); \d+ connections? open$/.test((await show('epmd-ng.service', 'StatusText')).StatusText!));
    expect(await ok('systemctl status --no-pager epmd-ng.service')).toMatch(/Status: "Serving 1 node \(0 provisional\) on .*; \d+ connections? open"/);
  });

  it('the example timer publishes the Prometheus text atomically for node_exporter', async () => {
    await ok(
      'cp /usr/share/doc/epmd-ng/examples/epmd-ng-prometheus.service /usr/share/doc/epmd-ng/examples/epmd-ng-prometheus.timer /etc/systemd/system/ && ' +
        'mkdir -p /var/lib/prometheus/node-exporter && systemctl daemon-reload && systemctl enable --now epmd-ng-prometheus.timer',
    );
    const file = '/var/lib/prometheus/node-exporter/epmd-ng.prom';
    await waitFor('the first metrics file', async () => (await sh(`test -s ${file}`)).code === 0, 20_000);
    const first = await show('epmd-ng-prometheus.service', 'ExecMainStartTimestampMonotonic', 'Result');
    expect(first.Result).toBe('success');
    const metrics = await ok(`cat ${file}`);
    expect(metrics).toMatch(/^epmd_ng_nodes\{state="active"\} 1$/m);
    expect(metrics).toMatch(/^epmd_ng_fdstore_registrations 1$/m);
    expect(metrics).toMatch(/^epmd_ng_watchdog_enabled 1$/m);
    expect(await ok(`stat -c %a ${file}`)).toBe('644\n');
    expect((await ok('ls -A /var/lib/prometheus/node-exporter')).trim()).toBe('epmd-ng.prom');
    // The timer runs it again 15 s later, and the new file reflects the change in between.
    await startNode('c');
    await waitFor('node c registered', () => listed('c'), 30_000);
    await waitFor(
      'a second run of the timer',
      async () => (await show('epmd-ng-prometheus.service', 'ExecMainStartTimestampMonotonic')).ExecMainStartTimestampMonotonic !== first.ExecMainStartTimestampMonotonic,
      30_000,
    );
    await waitFor('the metrics with node c', async () => /^epmd_ng_nodes\{state="active"\} 2$/m.test(await ok(`cat ${file}`)), 5_000);
    expect((await ok('ls -A /var/lib/prometheus/node-exporter')).trim()).toBe('epmd-ng.prom');
    await ok('systemctl disable --now epmd-ng-prometheus.timer');
  });

  it('-daemon logs to the journal when it may write to it', async () => {
    await ok('systemd-run --unit=detached-journal -p Type=forking -p DynamicUser=yes /usr/bin/epmd-ng -daemon -port 4400');
    await waitFor('the detached daemon on 4400', async () => (await sh('epmd-ng names -p 4400')).code === 0);
    await waitFor('its start-up entry', async () => (await entriesOf('detached-journal.service', 'SYSLOG_IDENTIFIER=epmd-ng')).some((e) => e.MESSAGE?.startsWith('listening on')));
    const listening = (await entriesOf('detached-journal.service', 'SYSLOG_IDENTIFIER=epmd-ng')).find((e) => e.MESSAGE?.startsWith('listening on'))!;
    expect(listening).toMatchObject({ _TRANSPORT: 'journal', PRIORITY: '6', EPMD_ADDRESSES: '0.0.0.0:4400, [::]:4400' });
    expect(listening.MESSAGE).toMatch(/^listening on port 4400 /);
    await ok('epmd-ng kill -p 4400');
  });

  it('-daemon logs to syslog (/dev/log) when the journal socket is out of reach, as OTP does', async () => {
    await ok('systemd-run --unit=detached-syslog -p Type=forking -p DynamicUser=yes -p InaccessiblePaths=/run/systemd/journal/socket /usr/bin/epmd-ng -daemon -port 4401');
    await waitFor('the detached daemon on 4401', async () => (await sh('epmd-ng names -p 4401')).code === 0);
    await sh("printf '\\000\\000' > /dev/tcp/127.0.0.1/4401; sleep 0.3");
    await waitFor('its syslog lines', async () => (await entriesOf('detached-syslog.service', 'SYSLOG_IDENTIFIER=epmd-ng')).length >= 2);
    const lines = await entriesOf('detached-syslog.service', 'SYSLOG_IDENTIFIER=epmd-ng');
    const listening = lines.find((e) => e.MESSAGE?.startsWith('listening on port 4401 '));
    expect(listening).toMatchObject({ _TRANSPORT: 'syslog', PRIORITY: '6', SYSLOG_FACILITY: '3' });
    expect(Number(listening!.SYSLOG_PID)).toBeGreaterThan(0);
    const violation = lines.find((e) => e.MESSAGE?.startsWith('invalid packet size'));
    expect(violation).toMatchObject({ _TRANSPORT: 'syslog', PRIORITY: '4' });
    await ok('epmd-ng kill -p 4401');
  });

  it('without the journal socket, the foreground daemon falls back to <priority> lines on stderr', async () => {
    await ok('systemd-run --unit=fallback -p DynamicUser=yes -p InaccessiblePaths=/run/systemd/journal/socket /usr/bin/epmd-ng -port 4402');
    await waitFor('the daemon on 4402', async () => (await sh('epmd-ng names -p 4402')).code === 0);
    await sh("printf '\\000\\000' > /dev/tcp/127.0.0.1/4402; sleep 0.3");
    await waitFor('its stderr lines', async () => (await entriesOf('fallback.service', '_TRANSPORT=stdout')).some((e) => e.MESSAGE?.startsWith('invalid packet size')));
    const lines = await entriesOf('fallback.service', '_TRANSPORT=stdout');
    expect(lines.find((e) => e.MESSAGE?.startsWith('listening on port 4402 '))?.PRIORITY).toBe('6');
    expect(lines.find((e) => e.MESSAGE?.startsWith('invalid packet size'))?.PRIORITY).toBe('4');
    expect(lines.every((e) => !e.MESSAGE?.startsWith('{') && !e.MESSAGE?.startsWith('<'))).toBe(true);
    await ok('systemctl stop fallback.service');
  });
});
