// sd_notify for epmd-ng: readiness, status, reload/stop, watchdog pings and the fd store.
// Outside systemd (no NOTIFY_SOCKET) every call is a no-op and the native addon is never loaded.
import { loadNative, type SdNative } from './native.js';

/** systemd's fdname_is_valid(): at most 255 printable ASCII characters, no ':'. */
export function isValidFdName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && /^[\x20-\x7e]+$/.test(name) && !name.includes(':');
}

/** CLOCK_MONOTONIC in microseconds: libuv's hrtime reads CLOCK_MONOTONIC on Linux. */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** One line per field, "KEY=value\n...", rejecting what would corrupt the line-based protocol. */
export function formatState(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => {
      if (!/^[A-Z0-9_]+$/.test(k)) throw new TypeError(`sd_notify: invalid field name ${JSON.stringify(k)}`);
      if (v.includes('\n')) throw new TypeError(`sd_notify: ${k} value must not contain a newline`);
      return `${k}=${v}`;
    })
    .join('\n');
}

export class Notifier {
  /**
   * env is read at every call (process.env by default), so NOTIFY_SOCKET set or removed later is seen.
   * load is only called on the first message actually sent.
   */
  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly load: () => SdNative = loadNative,
  ) {}

  /** True when the service manager listens: NOTIFY_SOCKET is set and not empty. */
  isEnabled(): boolean {
    return !!this.env.NOTIFY_SOCKET;
  }

  /**
   * Sends the fields as one datagram (with fds via SCM_RIGHTS). Returns false, doing nothing, outside
   * systemd; throws when sending fails (the Error carries .code, e.g. ECONNREFUSED) or the addon is missing.
   */
  send(fields: Record<string, string>, fds?: readonly number[]): boolean {
    const address = this.env.NOTIFY_SOCKET;
    if (!address) return false;
    const state = formatState(fields);
    // The address is passed explicitly so that the addon and isEnabled() agree on one environment.
    return this.load().notify(state, fds ?? null, address);
  }

  /** READY=1, optionally with a STATUS= line. Also ends a RELOADING=1 phase. */
  ready(status?: string): boolean {
    return this.send(status === undefined ? { READY: '1' } : { READY: '1', STATUS: oneLine(status) });
  }

  /** Free-form text shown by `systemctl status`. */
  status(text: string): boolean {
    return this.send({ STATUS: oneLine(text) });
  }

  /**
   * RELOADING=1; send ready() when done. systemd 253+ (Type=notify-reload) wants MONOTONIC_USEC to
   * match the reload to the message; 252 ignores the extra field.
   */
  reloading(): boolean {
    return this.send({ RELOADING: '1', MONOTONIC_USEC: String(monotonicUsec()) });
  }

  stopping(): boolean {
    return this.send({ STOPPING: '1' });
  }

  watchdog(): boolean {
    return this.send({ WATCHDOG: '1' });
  }

  /**
   * Hands a duplicate of fd to the fd store under `name` (needs FileDescriptorStoreMax= in the unit).
   * systemd does not dedupe by name, so names must be unique.
   */
  storeFd(name: string, fd: number): boolean {
    if (!isValidFdName(name)) throw new TypeError(`invalid fd store name ${JSON.stringify(name)}`);
    return this.send({ FDSTORE: '1', FDNAME: name }, [fd]);
  }

  /** Drops every stored fd named `name`. */
  removeFd(name: string): boolean {
    if (!isValidFdName(name)) throw new TypeError(`invalid fd store name ${JSON.stringify(name)}`);
    return this.send({ FDSTOREREMOVE: '1', FDNAME: name });
  }

  /** Asks for usec more time in the current start/stop/reload phase (EXTEND_TIMEOUT_USEC=). */
  extendTimeout(usec: number): boolean {
    if (!Number.isSafeInteger(usec) || usec < 0) throw new RangeError(`invalid timeout ${usec} µs`);
    return this.send({ EXTEND_TIMEOUT_USEC: String(usec) });
  }
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

// ---------------------------------------------------------------------------------------------------
// Watchdog. Parsing and the per-tick decision are pure; startWatchdog() only adds the timer.

export type WatchdogEnv = { enabled: true; usec: number } | { enabled: false; reason: string };

/**
 * sd_watchdog_enabled() semantics: WATCHDOG_USEC must be a positive integer; if WATCHDOG_PID is set
 * the watchdog is ours only when it equals pid (a child that inherited the variables must not ping).
 */
export function parseWatchdogEnv(env: NodeJS.ProcessEnv, pid: number): WatchdogEnv {
  const usecText = env.WATCHDOG_USEC;
  if (usecText === undefined || usecText === '') return { enabled: false, reason: 'WATCHDOG_USEC is not set' };
  if (!/^[0-9]+$/.test(usecText) || !Number.isSafeInteger(Number(usecText)) || Number(usecText) === 0) {
    return { enabled: false, reason: `invalid WATCHDOG_USEC=${JSON.stringify(usecText)}` };
  }
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined && pidText !== '') {
    if (!/^[0-9]+$/.test(pidText) || Number(pidText) === 0) {
      return { enabled: false, reason: `invalid WATCHDOG_PID=${JSON.stringify(pidText)}` };
    }
    if (Number(pidText) !== pid) return { enabled: false, reason: `WATCHDOG_PID=${pidText} is not this process` };
  }
  return { enabled: true, usec: Number(usecText) };
}

/**
 * Decides one timer tick: the tick was due at dueMs and runs at nowMs. The lag is how long the event
 * loop kept the timer from running; if it exceeds maxLagMs (the watchdog interval) the loop is not
 * healthy and this tick does not ping, so a wedged process does not keep itself alive on a stray tick.
 */
export function watchdogTick(dueMs: number, nowMs: number, maxLagMs: number): { ping: boolean; lagMs: number } {
  const lagMs = Math.max(0, nowMs - dueMs);
  return { ping: lagMs <= maxLagMs, lagMs };
}

export interface WatchdogOptions {
  env?: NodeJS.ProcessEnv;
  pid?: number;
  /** A ping failed to send (default: process.emitWarning). */
  onError?: (err: unknown) => void;
  /** A tick was skipped because the event loop lagged by lagMs. */
  onSkip?: (lagMs: number) => void;
  /** Monotonic milliseconds (default performance.now). */
  now?: () => number;
}

export interface WatchdogHandle {
  /** The service's WatchdogSec in microseconds. */
  readonly usec: number;
  /** Milliseconds between pings (half the interval). */
  readonly periodMs: number;
  stop(): void;
}

/**
 * Pings WATCHDOG=1 every half interval from an unref'd timer (it never keeps the process alive) when
 * the watchdog is enabled for this process; returns null otherwise. A chain of setTimeout rather than
 * setInterval, so each tick knows exactly when it was due.
 */
export function startWatchdog(
  notifier: Pick<Notifier, 'watchdog'>,
  opts: WatchdogOptions = {},
): WatchdogHandle | null {
  const parsed = parseWatchdogEnv(opts.env ?? process.env, opts.pid ?? process.pid);
  if (!parsed.enabled) return null;
  const now = opts.now ?? (() => performance.now());
  const onError = opts.onError ?? ((err: unknown) => process.emitWarning(`watchdog ping failed: ${String(err)}`));
  const maxLagMs = parsed.usec / 1000;
  const periodMs = Math.max(1, Math.floor(parsed.usec / 2000));
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = (): void => {
    const due = now() + periodMs;
    timer = setTimeout(() => {
      const { ping, lagMs } = watchdogTick(due, now(), maxLagMs);
      if (ping) {
        try {
          notifier.watchdog();
        } catch (err) {
          onError(err);
        }
      } else {
        opts.onSkip?.(lagMs);
      }
      if (!stopped) schedule();
    }, periodMs);
    timer.unref();
  };
  schedule();

  return {
    usec: parsed.usec,
    periodMs,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
