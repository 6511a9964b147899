// What the daemon tells systemd over its life: READY once serving, STATUS kept current,
// RELOADING/READY around a reload, STOPPING on the way out, watchdog pings while healthy.
// Outside systemd (no NOTIFY_SOCKET) every method does nothing.
import type { Logger } from '../log/logger.js';
import { loadNative } from './native.js';
import { Notifier, startWatchdog, type WatchdogHandle } from './notify.js';

/** STATUS updates after registration changes are coalesced: a storm of 10,000 sends a few. */
const STATUS_DELAY_MS = 200;
/** STATUS also counts connections, which change without any registration: refreshed this often. */
const STATUS_REFRESH_MS = 10_000;

/** The watchdog as `epmd-ng status` reports it. */
export interface WatchdogState {
  enabled: boolean;
  periodMs: number | null;
  /** Last WATCHDOG=1 sent (ms since the epoch). */
  lastPingAt: number | null;
  /** Pings withheld because the event loop had stalled. */
  withheld: number;
  /** Pings that could not be sent. */
  failures: number;
}

export class ServiceManager {
  readonly notifier: Notifier;
  /** Whether systemd listens: decided once, as the environment it started us with does not change. */
  readonly enabled: boolean;
  private watchdog: WatchdogHandle | null = null;
  private statusTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private lastStatus = '';
  private readonly watchdogCounts = { lastPingAt: null as number | null, withheld: 0, failures: 0 };

  constructor(
    private readonly log: Logger,
    private readonly describe: () => string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.notifier = new Notifier(env);
    this.enabled = this.notifier.isEnabled();
  }

  /** Fails early and clearly when systemd expects notifications but the addon cannot be loaded. */
  checkSupport(): void {
    if (this.enabled) loadNative();
  }

  /** READY=1 with STATUS and MAINPID, once every socket is listening; starts the watchdog. */
  ready(): void {
    this.lastStatus = this.describe();
    this.send(() => this.notifier.send({ READY: '1', STATUS: this.lastStatus, MAINPID: String(process.pid) }));
    const counts = this.watchdogCounts;
    const pinger = {
      watchdog: (): boolean => {
        const sent = this.notifier.watchdog();
        counts.lastPingAt = Date.now();
        return sent;
      },
    };
    this.watchdog = startWatchdog(pinger, {
      onError: (err) => {
        counts.failures++;
        this.log.warn({ err: String(err) }, 'watchdog ping failed');
      },
      onSkip: (lagMs) => {
        counts.withheld++;
        this.log.warn({ lagMs }, 'event loop stalled; watchdog ping withheld');
      },
    });
    if (this.watchdog) this.log.info({ periodMs: this.watchdog.periodMs }, 'systemd watchdog enabled');
    if (this.enabled) {
      this.refreshTimer = setInterval(() => this.refreshStatus(), STATUS_REFRESH_MS);
      this.refreshTimer.unref();
    }
  }

  watchdogState(): WatchdogState {
    return { enabled: this.watchdog !== null, periodMs: this.watchdog?.periodMs ?? null, ...this.watchdogCounts };
  }

  /** Registrations changed: refresh STATUS soon (coalesced). */
  changed(): void {
    if (!this.enabled || this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      this.refreshStatus();
    }, STATUS_DELAY_MS);
    this.statusTimer.unref();
  }

  /** Sends STATUS= when its text changed since the last one sent. */
  private refreshStatus(): void {
    const text = this.describe();
    if (text === this.lastStatus) return;
    this.lastStatus = text;
    this.send(() => this.notifier.status(text));
  }

  reloading(): void {
    this.send(() => this.notifier.reloading());
  }

  reloaded(): void {
    this.lastStatus = this.describe();
    this.send(() => this.notifier.ready(this.lastStatus));
  }

  stopping(): void {
    this.watchdog?.stop();
    clearTimeout(this.statusTimer);
    clearInterval(this.refreshTimer);
    this.send(() => this.notifier.stopping());
  }

  /** The last word before exiting on our own (KILL_REQ, fatal error), as OTP sends it. */
  exited(code: number): void {
    this.send(() => this.notifier.send({ STATUS: 'Exited.', ERRNO: String(code) }));
  }

  /** Notification failures are logged, never fatal: serving nodes matters more than status. */
  private send(action: () => boolean): void {
    try {
      action();
    } catch (err) {
      this.log.warn({ err: String(err) }, 'sd_notify failed');
    }
  }
}
