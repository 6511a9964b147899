// What the server counts for `epmd-ng status` and the Prometheus metrics: plain integers, bumped on
// the hot path with one increment each; nothing is computed until someone asks.
import type { RequestType } from '../protocol/requests.js';

/** Kinds of protocol violation and refused work, as the server logs them. */
export type Violation = 'framing' | 'malformed' | 'non-local' | 'remote' | 'disallowed' | 'duplicate' | 'rejected' | 'overload' | 'accept' | 'slow-reader';

export const VIOLATIONS: readonly Violation[] = ['framing', 'malformed', 'non-local', 'remote', 'disallowed', 'duplicate', 'rejected', 'overload', 'accept', 'slow-reader'];
export const REQUEST_TYPES: readonly RequestType[] = ['alive2', 'port-please2', 'names', 'dump', 'kill', 'stop', 'status'];

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

export class ServerCounters {
  /** Connections accepted since start (adopted registrations not included). */
  accepted = 0;
  /** Connections closed to make room under the cap (the oldest without a registration). */
  evictions = 0;
  /** Connections refused at the cap because nothing could be evicted. */
  refused = 0;
  /** Complete, well-formed requests by type. */
  readonly requests: Record<RequestType, number> = zeroes(REQUEST_TYPES);
  /** Every violation, including those whose log line the rate limiter dropped. */
  readonly violations: Record<Violation, number> = zeroes(VIOLATIONS);
}
