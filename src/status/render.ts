// `epmd-ng status` output: the document for a person, or Prometheus's text exposition format
// (for node_exporter's textfile collector).
import type { ListenerStatus, StatusDocument } from './document.js';

function duration(seconds: number): string {
  const s = Math.floor(seconds);
  const parts: string[] = [];
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) parts.push(`${d}d`);
  if (d || h) parts.push(`${h}h`);
  if (d || h || m) parts.push(`${m}m`);
  parts.push(`${s % 60}s`);
  return parts.join(' ');
}

/** `a 1, b 2`, or `none` when every count is zero (or only nonzero counts when some are). */
function counts(record: Record<string, number>, all: boolean): string {
  const entries = Object.entries(record).filter(([, n]) => all || n > 0);
  return entries.length === 0 ? 'none' : entries.map(([k, n]) => `${k} ${n}`).join(', ');
}

/** `0.0.0.0:4369 0 queued of 4096, …`; the daemon's accept queues, which `ss -ltn` shows too. */
function backlogs(listeners: ListenerStatus[]): string {
  if (listeners.every((l) => l.backlog === null)) return 'not readable (the daemon runs without its addon)';
  return listeners.map((l) => `${l.address} ${l.queued ?? '?'} queued of ${l.backlog ?? '?'}`).join(', ');
}

export function renderText(doc: StatusDocument): string {
  const snap = doc.snapshot;
  const wd = doc.watchdog;
  const snapshot = !snap.enabled
    ? 'off (no state directory)'
    : snap.lastAt === null
      ? `none written yet, to ${snap.file}`
      : `${snap.lastResult === 'ok' ? 'saved' : `FAILED (${snap.lastError})`} at ${snap.lastAt}, ${snap.writes} written, to ${snap.file}`;
  const watchdog = !wd.enabled
    ? 'off'
    : `ping every ${wd.periodMs} ms, last ${wd.lastPingAt ?? 'not yet'}, ${wd.withheld} withheld, ${wd.failures} failed`;
  const lines = [
    `epmd-ng ${doc.version}, pid ${doc.pid}, up ${duration(doc.uptimeSeconds)} (since ${doc.startedAt})`,
    `listening:   ${doc.addresses.join(', ')}${doc.activated ? ' (sockets from systemd)' : ''}; reported port ${doc.port}`,
    ...(doc.listeners ? [`backlog:     ${backlogs(doc.listeners)}`] : []),
    `reach:       ${doc.reach}`,
    `nodes:       ${doc.nodes.active} active, ${doc.nodes.provisional} provisional`,
    `connections: ${doc.connections.open} open, cap ${doc.connections.max}${doc.connections.registrationLimit === undefined ? '' : ` (registrations up to ${doc.connections.registrationLimit})`}, ${doc.connections.accepted} accepted, ${doc.connections.evictions} evicted, ${doc.connections.refused} refused`,
    `requests:    ${counts(doc.requests, true)}`,
    `violations:  ${counts(doc.violations, false)}`,
    `fd store:    ${doc.fdStore.enabled ? `${doc.fdStore.registrations} registrations held, ${doc.fdStore.pending} messages pending` : 'off'}`,
    `snapshot:    ${snapshot}`,
    `watchdog:    ${watchdog}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** Label values: backslash, double quote and newline escaped (exposition format rules). */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

type Sample = { labels?: Record<string, string>; value: number };

function metric(out: string[], name: string, type: 'gauge' | 'counter', help: string, samples: Sample[]): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const s of samples) {
    const labels = s.labels ? `{${Object.entries(s.labels).map(([k, v]) => `${k}="${label(v)}"`).join(',')}}` : '';
    out.push(`${name}${labels} ${s.value}`);
  }
}

const seconds = (iso: string | null): number => (iso === null ? 0 : Date.parse(iso) / 1000);
const flag = (b: boolean): number => (b ? 1 : 0);

export function renderPrometheus(doc: StatusDocument): string {
  const out: string[] = [];
  const one = (value: number): Sample[] => [{ value }];
  metric(out, 'epmd_ng_info', 'gauge', 'Always 1; the labels describe the running daemon.', [{ labels: { version: doc.version, port: String(doc.port) }, value: 1 }]);
  metric(out, 'epmd_ng_start_time_seconds', 'gauge', 'When the daemon started, seconds since the epoch.', one(seconds(doc.startedAt)));
  metric(out, 'epmd_ng_listening', 'gauge', 'Listening addresses (1 each).', doc.addresses.map((address) => ({ labels: { address }, value: 1 })));
  const queues = (doc.listeners ?? []).filter((l) => l.backlog !== null && l.queued !== null);
  metric(out, 'epmd_ng_listen_backlog', 'gauge', 'The accept queue limit of each listening socket.', queues.map((l) => ({ labels: { address: l.address }, value: l.backlog! })));
  metric(out, 'epmd_ng_listen_queued', 'gauge', 'Connections waiting in the accept queue of each listening socket.', queues.map((l) => ({ labels: { address: l.address }, value: l.queued! })));
  metric(out, 'epmd_ng_nodes', 'gauge', 'Registered nodes by state.', [
    { labels: { state: 'active' }, value: doc.nodes.active },
    { labels: { state: 'provisional' }, value: doc.nodes.provisional },
  ]);
  metric(out, 'epmd_ng_connections', 'gauge', 'Open connections, registrations included.', one(doc.connections.open));
  metric(out, 'epmd_ng_connections_max', 'gauge', 'The connection cap.', one(doc.connections.max));
  if (doc.connections.registrationLimit !== undefined) {
    metric(out, 'epmd_ng_registrations_max', 'gauge', 'How many connections may hold registrations; the rest of the cap is kept for queries.', one(doc.connections.registrationLimit));
  }
  metric(out, 'epmd_ng_connections_accepted_total', 'counter', 'Connections accepted.', one(doc.connections.accepted));
  metric(out, 'epmd_ng_evictions_total', 'counter', 'Connections without a complete request closed to make room under the cap.', one(doc.connections.evictions));
  metric(out, 'epmd_ng_connections_refused_total', 'counter', 'Connections refused at the cap.', one(doc.connections.refused));
  metric(out, 'epmd_ng_requests_total', 'counter', 'Well-formed requests by type.', Object.entries(doc.requests).map(([type, value]) => ({ labels: { type }, value })));
  metric(out, 'epmd_ng_violations_total', 'counter', 'Protocol violations and refused work by kind.', Object.entries(doc.violations).map(([kind, value]) => ({ labels: { kind }, value })));
  metric(out, 'epmd_ng_fdstore_enabled', 'gauge', '1 when registrations are handed to the systemd fd store.', one(flag(doc.fdStore.enabled)));
  metric(out, 'epmd_ng_fdstore_registrations', 'gauge', 'Registration connections held in the systemd fd store.', one(doc.fdStore.registrations));
  metric(out, 'epmd_ng_snapshot_enabled', 'gauge', '1 when registry snapshots are written.', one(flag(doc.snapshot.enabled)));
  metric(out, 'epmd_ng_snapshot_last_time_seconds', 'gauge', 'The last snapshot write attempt, seconds since the epoch (0: none).', one(seconds(doc.snapshot.lastAt)));
  metric(out, 'epmd_ng_snapshot_last_success', 'gauge', '1 when the last snapshot write succeeded.', one(flag(doc.snapshot.lastResult === 'ok')));
  metric(out, 'epmd_ng_snapshot_writes_total', 'counter', 'Snapshots written.', one(doc.snapshot.writes));
  metric(out, 'epmd_ng_watchdog_enabled', 'gauge', '1 when the systemd watchdog is on.', one(flag(doc.watchdog.enabled)));
  metric(out, 'epmd_ng_watchdog_last_ping_time_seconds', 'gauge', 'The last watchdog ping, seconds since the epoch (0: none).', one(seconds(doc.watchdog.lastPingAt)));
  metric(out, 'epmd_ng_watchdog_withheld_total', 'counter', 'Watchdog pings withheld because the event loop stalled.', one(doc.watchdog.withheld));
  return `${out.join('\n')}\n`;
}
