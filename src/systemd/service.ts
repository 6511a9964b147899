// What the daemon tells systemd over its life: READY once serving, STATUS kept current,
// RELOADING/READY around a reload, STOPPING on the way out, watchdog pings while healthy.
// Outside systemd (no NOTIFY_SOCKET) every method does nothing.
import type { Logger } from '../log/logger.js';
import { loadNative } from './native.js';
import { Notifier, startWatchdog, type WatchdogHandle } from './notify.js';

/** STATUS updates after registration changes are coalesced: a storm of 10,000 sends a few. */
const STATUS_DELAY_MS = 200;

export class ServiceManager {
  readonly notifier: Notifier;
  private watchdog: WatchdogHandle | null = null;
  private statusTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly describe: () => string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.notifier = new Notifier(env);
  }

  get enabled(): boolean {
    return this.notifier.isEnabled();
  }

  /** Fails early and clearly when systemd expects notifications but the addon cannot be loaded. */
  checkSupport(): void {
    if (this.enabled) loadNative();
  }

  /** READY=1 with STATUS and MAINPID, once every socket is listening; starts the watchdog. */
  ready(): void {
    this.send(() => this.notifier.send({ READY: '1', STATUS: this.describe(), MAINPID: String(process.pid) }));
    this.watchdog = startWatchdog(this.notifier, {
      onError: (err) => this.log.warn({ err: String(err) }, 'watchdog ping failed'),
      onSkip: (lagMs) => this.log.warn({ lagMs }, 'event loop stalled; watchdog ping withheld'),
    });
    if (this.watchdog) this.log.info({ periodMs: this.watchdog.periodMs }, 'systemd watchdog enabled');
  }

  /** Registrations changed: refresh STATUS soon (coalesced). */
  changed(): void {
    if (!this.enabled || this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      this.send(() => this.notifier.status(this.describe()));
    }, STATUS_DELAY_MS);
    this.statusTimer.unref();
  }

  reloading(): void {
    this.send(() => this.notifier.reloading());
  }

  reloaded(): void {
    this.send(() => this.notifier.ready(this.describe()));
  }

  stopping(): void {
    this.watchdog?.stop();
    clearTimeout(this.statusTimer);
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
