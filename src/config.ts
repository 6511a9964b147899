import fs from 'node:fs';
import { DEFAULT_PACKET_TIMEOUT, DEFAULT_PORT } from './protocol/constants.js';
import type { DaemonFlags } from './cli/otp-args.js';
import type { LogFormat } from './log/logger.js';

/** Everything the daemon needs to run, after flags and environment are combined. */
export interface DaemonConfig {
  port: number;
  /** Whether a port was given (-port or ERL_EPMD_PORT); decides what NAMES reports under socket activation (spec Q11). */
  portConfigured: boolean;
  address: string | undefined;
  packetTimeout: number;
  delayAccept: number;
  delayWrite: number;
  relaxedCommandCheck: boolean;
  debug: number;
  systemd: boolean;
  daemonize: boolean;
  maxConnections: number;
  logFormat: LogFormat | undefined;
  /** Explicit log level (EPMD_NG_LOG_LEVEL); otherwise -d decides. */
  logLevel: string | undefined;
  /** EnvironmentFiles re-read on SIGHUP, colon-separated (EPMD_NG_ENV_FILE). */
  envFile: string | undefined;
  /** Where snapshots live (EPMD_NG_STATE_DIR, else systemd's STATE_DIRECTORY); none: no snapshots. */
  stateDir: string | undefined;
  /** Seconds a restored provisional entry lives unless its node registers or a probe confirms it; 0: none are restored. */
  provisionalTtl: number;
  /** Hand registration connections to systemd's fd store (EPMD_NG_FDSTORE=0 turns it off). */
  fdStore: boolean;
}

export type Resolved<T> = { ok: true; value: T } | { ok: false; message: string };

/** Seconds a restored entry waits for its node: OTP 24+ nodes re-register within about 2 s. */
const DEFAULT_PROVISIONAL_TTL = 30;

/** File descriptors kept back from the connection cap: listeners, stdio, logs, state files. */
const RESERVED_FDS = 64;
/** Never below what OTP's own test suite needs (1000 registrations plus a query). */
const MIN_CONNECTIONS = 1024;

/** The soft RLIMIT_NOFILE (Node raises it to the hard limit at start-up), or undefined if unreadable. */
export function openFileLimit(): number | undefined {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    if (soft === 'unlimited') return 1 << 20;
    const n = Number(soft);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Default connection cap: what the fd limit allows after the reserve, and never below 1024. */
export function defaultMaxConnections(fdLimit: number | undefined): number {
  return Math.max(MIN_CONNECTIONS, (fdLimit ?? 4096) - RESERVED_FDS);
}

/** Port from -port, else ERL_EPMD_PORT, else 4369. A non-numeric variable is an error (spec Q9). */
export function resolvePort(flagPort: number | undefined, env: NodeJS.ProcessEnv): Resolved<{ port: number; configured: boolean }> {
  if (flagPort !== undefined) return { ok: true, value: { port: flagPort, configured: true } };
  const text = env.ERL_EPMD_PORT;
  if (text === undefined || text === '') return { ok: true, value: { port: DEFAULT_PORT, configured: false } };
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!(n >= 1 && n <= 65535)) return { ok: false, message: `ERL_EPMD_PORT must be a port number from 1 to 65535, got "${text}"` };
  return { ok: true, value: { port: n, configured: true } };
}

function positiveFromEnv(env: NodeJS.ProcessEnv, name: string): Resolved<number | undefined> {
  const text = env[name];
  if (text === undefined || text === '') return { ok: true, value: undefined };
  if (!/^\d+$/.test(text) || Number(text) < 1) return { ok: false, message: `${name} must be a whole number above 0, got "${text}"` };
  return { ok: true, value: Number(text) };
}

const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty', 'journal', 'syslog'];

export function resolveDaemonConfig(flags: DaemonFlags, env: NodeJS.ProcessEnv, fdLimit = openFileLimit()): Resolved<DaemonConfig> {
  const port = resolvePort(flags.port, env);
  if (!port.ok) return port;
  const reloadable = resolveReloadable(env);
  if (!reloadable.ok) return reloadable;
  const ttlText = env.EPMD_NG_PROVISIONAL_TTL;
  if (ttlText !== undefined && ttlText !== '' && !/^\d+$/.test(ttlText)) {
    return { ok: false, message: `EPMD_NG_PROVISIONAL_TTL must be a whole number of seconds, got "${ttlText}"` };
  }
  const logFormat = env.EPMD_NG_LOG_FORMAT;
  if (logFormat && !LOG_FORMATS.includes(logFormat as LogFormat)) {
    return { ok: false, message: `EPMD_NG_LOG_FORMAT must be one of ${LOG_FORMATS.join(', ')}, got "${logFormat}"` };
  }
  return {
    ok: true,
    value: {
      port: port.value.port,
      portConfigured: port.value.configured,
      address: flags.address ?? env.ERL_EPMD_ADDRESS,
      packetTimeout: flags.packetTimeout ?? DEFAULT_PACKET_TIMEOUT,
      delayAccept: flags.delayAccept ?? 0,
      delayWrite: flags.delayWrite ?? 0,
      // Presence is what counts, even with an empty value (spec §8).
      relaxedCommandCheck: flags.relaxedCommandCheck || env.ERL_EPMD_RELAXED_COMMAND_CHECK !== undefined,
      debug: flags.debug,
      systemd: flags.systemd,
      daemonize: flags.daemonize,
      maxConnections: reloadable.value.maxConnections ?? defaultMaxConnections(fdLimit),
      logFormat: (logFormat || undefined) as LogFormat | undefined,
      logLevel: reloadable.value.logLevel,
      envFile: env.EPMD_NG_ENV_FILE || undefined,
      // systemd may list several state directories, colon-separated; ours is the first.
      stateDir: env.EPMD_NG_STATE_DIR || env.STATE_DIRECTORY?.split(':')[0] || undefined,
      provisionalTtl: ttlText ? Number(ttlText) : DEFAULT_PROVISIONAL_TTL,
      fdStore: env.EPMD_NG_FDSTORE !== '0',
    },
  };
}

/** Settings a running daemon can change on SIGHUP (`systemctl reload`). */
export interface ReloadableSettings {
  logLevel: string | undefined;
  maxConnections: number | undefined;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function resolveReloadable(env: NodeJS.ProcessEnv): Resolved<ReloadableSettings> {
  const maxConnections = positiveFromEnv(env, 'EPMD_NG_MAX_CONNECTIONS');
  if (!maxConnections.ok) return maxConnections;
  const logLevel = env.EPMD_NG_LOG_LEVEL || undefined;
  if (logLevel && !LOG_LEVELS.includes(logLevel)) {
    return { ok: false, message: `EPMD_NG_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"` };
  }
  return { ok: true, value: { logLevel, maxConnections: maxConnections.value } };
}

/**
 * Reads a systemd EnvironmentFile= (KEY=value lines, # comments, optional quotes) so that a reload
 * sees the values an operator just edited; systemd itself only reads the file at start.
 */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!)) value = value.slice(1, -1);
    vars[m[1]!] = value;
  }
  return vars;
}
