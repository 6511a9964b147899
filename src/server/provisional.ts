import type { Logger } from '../log/logger.js';
import type { ProvisionalEntry, Registry } from '../registry/registry.js';
import { probeNode, type ProbeResult } from './probe.js';

export interface ProvisionalOptions {
  /** How long an entry lives without its node registering again or a probe confirming it, ms. */
  ttlMs: number;
  /** Time between probe rounds, ms. */
  intervalMs: number;
  /**
   * Delay before the first round, ms: OTP 24+ nodes register again about 2 s after losing their
   * epmd connection, and replace their entries without being probed at all.
   */
  firstRoundMs: number;
  probe?: (port: number, name: Buffer, creation: number) => Promise<ProbeResult>;
  now?: () => number;
  /** An entry was dropped (the caller saves a snapshot). */
  dropped?: (entry: ProvisionalEntry, why: string) => void;
  /** A probe confirmed an entry and extended its time (the caller saves a snapshot, which keeps that time). */
  extended?: (entry: ProvisionalEntry) => void;
}

/** Probes running at once; a restart with thousands of restored entries must not open thousands of sockets. */
const PROBE_CONCURRENCY = 32;

/**
 * Looks after entries restored without their connection (spec §18): probes each node's port on
 * loopback, drops it when nothing or another node answers there, and when its time is up. A probe
 * whose handshake shows the very node (same name and creation) extends its time, so a node that
 * never registers again (a C node) stays visible while it provably lives.
 */
export class ProvisionalKeeper<Owner> {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly registry: Registry<Owner>,
    private readonly log: Logger,
    private readonly options: ProvisionalOptions,
  ) {}

  start(): void {
    if (this.timer || this.registry.provisionalNewestFirst().length === 0) return;
    this.timer = setTimeout(() => {
      void this.round();
      this.timer = setInterval(() => void this.round(), this.options.intervalMs);
      this.timer.unref();
    }, this.options.firstRoundMs);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass over every provisional entry; exported for tests. */
  async round(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const entries = this.registry.provisionalNewestFirst();
      if (entries.length === 0) return this.stop();
      const probe = this.options.probe ?? probeNode;
      const now = this.options.now ?? Date.now;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < entries.length) {
          const entry = entries[next++]!;
          const result = await probe(entry.port, entry.name, entry.creation);
          // The node may have registered again while the probe ran: then the entry is gone already.
          if (this.registry.lookupProvisional(entry.name) !== entry) continue;
          if (result === 'confirmed') {
            entry.expiresAt = now() + this.options.ttlMs;
            this.options.extended?.(entry);
          } else if (result === 'gone' || result === 'other-node') this.drop(entry, result === 'gone' ? 'nothing listens on its port' : 'another node answers on its port');
          else if (now() >= entry.expiresAt) this.drop(entry, 'expired before its node registered again');
        }
      };
      await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, entries.length) }, worker));
    } finally {
      this.running = false;
    }
  }

  private drop(entry: ProvisionalEntry, why: string): void {
    if (!this.registry.dropProvisional(entry)) return;
    this.log.info({ event: 'unregister', node: entry.name.toString('utf8'), port: entry.port, creation: entry.creation, reason: 'provisional', why }, 'provisional entry removed');
    this.options.dropped?.(entry, why);
  }
}
