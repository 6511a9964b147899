// The status document: what STATUS_REQ answers (as JSON) and what `epmd-ng status` prints as text
// or Prometheus metrics. Assembled on request from the counters and the daemon's parts.
import type { RequestType } from '../protocol/requests.js';
import type { Violation } from './counters.js';

/** Layout version of the document; bumped (with STATUS_VERSION) only for incompatible changes. */
export const STATUS_FORMAT = 1;

export interface StatusDocument {
  format: typeof STATUS_FORMAT;
  version: string;
  pid: number;
  /** ISO 8601, UTC. */
  startedAt: string;
  uptimeSeconds: number;
  /** The port NAMES reports. */
  port: number;
  addresses: string[];
  /** Who can reach those addresses, e.g. `port 4369 for this host only (every local address)`. */
  reach: string;
  /** The listening sockets came from systemd. */
  activated: boolean;
  /**
   * Each listening socket's accept queue (null when the daemon cannot read it: no addon). Absent
   * from the documents of older daemons; fields are only ever added within a format.
   */
  listeners?: ListenerStatus[];
  nodes: { active: number; provisional: number };
  /** registrationLimit: how many may hold registrations; the rest of `max` is kept for queries (absent from older daemons). */
  connections: { open: number; max: number; registrationLimit?: number; accepted: number; evictions: number; refused: number };
  requests: Record<RequestType, number>;
  violations: Record<Violation, number>;
  fdStore: { enabled: boolean; registrations: number; pending: number };
  snapshot: {
    enabled: boolean;
    file: string | null;
    /** The last write attempt, ISO 8601; null before the first. */
    lastAt: string | null;
    lastResult: 'ok' | 'failed' | null;
    lastError: string | null;
    writes: number;
  };
  watchdog: { enabled: boolean; periodMs: number | null; lastPingAt: string | null; withheld: number; failures: number };
}

export interface ListenerStatus {
  address: string;
  /** The accept queue's limit: the listen backlog, capped by net.core.somaxconn. */
  backlog: number | null;
  /** Connections the kernel has completed that wait for the daemon to accept them. */
  queued: number | null;
}

export const isoTime = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
