import fs from 'node:fs';
import { loadNative } from '../systemd/native.js';
import { encodeJournalEntry, JOURNAL_SOCKET, journalFields, SYSLOG_IDENTIFIER } from './journal.js';
import { formatMessage, syslogSeverity } from './message.js';
import { formatSyslogLine, SYSLOG_SOCKET } from './syslog.js';

export type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type LogFormat = 'json' | 'pretty' | 'journal' | 'syslog';

/** pino's numeric levels, which the JSON lines carry and syslogSeverity() maps. */
export const LEVEL_VALUES: Readonly<Record<Level | 'silent', number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/**
 * What the daemon logs through: pino's calling convention (`log.info(fields, message)`), a level
 * that a reload may change, and its numeric value for cheap checks on the hot path. The JSON and
 * terminal formats are pino itself; the journal and syslog formats are the small EventLogger
 * below, so a daemon under systemd never loads pino's module graph (memory and a good
 * part of the start-up time: README, Performance).
 */
export interface Logger {
  level: string;
  readonly levelVal: number;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
}

/** OTP's -d count maps onto log levels: none → info, one → debug (per request), more → trace. */
export function levelForDebug(debug: number): Level {
  return debug <= 0 ? 'info' : debug === 1 ? 'debug' : 'trace';
}

/**
 * True when stderr is connected to journald: systemd then sets JOURNAL_STREAM to the device and
 * inode of that stream (systemd.exec(5)); a redirect to a file or terminal does not match.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const stream = env.JOURNAL_STREAM;
  if (!stream) return false;
  try {
    const st = fs.fstatSync(2);
    return stream === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

export function defaultLogFormat(): LogFormat {
  if (stderrIsJournal()) return 'journal';
  return process.stderr.isTTY ? 'pretty' : 'json';
}

/** `-daemon` has no stderr to log to: the journal when this process may write to it, else syslog. */
export function detachedLogFormat(journalSocket = JOURNAL_SOCKET): LogFormat {
  try {
    fs.accessSync(journalSocket, fs.constants.W_OK);
    return 'journal';
  } catch {
    return 'syslog';
  }
}

type Deliver = (level: number, msg: string | undefined, obj: Record<string, unknown>) => void;

const NO_FIELDS: Record<string, unknown> = {};

/** Hands each event at or above the level to `deliver`, synchronously: one datagram per event. */
class EventLogger implements Logger {
  levelVal: number;
  private name: Level | 'silent';

  constructor(
    level: Level | 'silent',
    private readonly deliver: Deliver,
  ) {
    this.name = level;
    this.levelVal = LEVEL_VALUES[level];
  }

  get level(): string {
    return this.name;
  }

  set level(level: string) {
    if (!Object.hasOwn(LEVEL_VALUES, level)) throw new Error(`unknown log level "${level}"`);
    this.name = level as Level | 'silent';
    this.levelVal = LEVEL_VALUES[this.name];
  }

  private emit(value: number, first: object | string, msg?: string): void {
    if (value < this.levelVal) return;
    if (typeof first === 'string') this.deliver(value, first, NO_FIELDS);
    else this.deliver(value, msg, first as Record<string, unknown>);
  }

  readonly fatal: LogFn = (first: object | string, msg?: string) => this.emit(60, first, msg);
  readonly error: LogFn = (first: object | string, msg?: string) => this.emit(50, first, msg);
  readonly warn: LogFn = (first: object | string, msg?: string) => this.emit(40, first, msg);
  readonly info: LogFn = (first: object | string, msg?: string) => this.emit(30, first, msg);
  readonly debug: LogFn = (first: object | string, msg?: string) => this.emit(20, first, msg);
  readonly trace: LogFn = (first: object | string, msg?: string) => this.emit(10, first, msg);
}

export interface LogSockets {
  journal: string;
  syslog: string;
}

const SOCKETS: LogSockets = { journal: JOURNAL_SOCKET, syslog: SYSLOG_SOCKET };

/** Sends one datagram; false (never a throw) when it could not be delivered. */
function trySend(address: string, payload: Buffer, largeAsMemfd: boolean): boolean {
  try {
    return loadNative().sendDatagram(address, payload, largeAsMemfd);
  } catch {
    return false;
  }
}

/** Writes to stderr, synchronously as pino's sync destination does (a log line is never lost on exit). */
function writeStderr(text: string): void {
  try {
    fs.writeSync(2, text);
  } catch {
    // stderr closed or full: nowhere left to report it.
  }
}

/**
 * Logs go to stderr like OTP's epmd: JSON lines for machines (pino), one readable line per event
 * on a terminal (pino-pretty). `journal`: each event as a journal entry of its own through
 * journald's native socket, a readable MESSAGE plus EPMD_* fields and PRIORITY; `syslog`: RFC 3164
 * lines to /dev/log. An entry the socket does not take (no journald, its queue full) is written
 * to stderr instead, as `<priority>message`, which a journal stream still files at the right
 * priority. pino and pino-pretty are loaded only for the formats that use them.
 */
export async function createLogger(
  level: Level | 'silent',
  format: LogFormat = defaultLogFormat(),
  sockets: LogSockets = SOCKETS,
): Promise<Logger> {
  if (format === 'pretty') {
    const [{ default: pino }, { default: pretty }] = await Promise.all([import('pino'), import('pino-pretty')]);
    const log: Logger = pino(
      { level },
      pretty({ destination: 2, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }),
    );
    return log;
  }
  if (format === 'json') {
    const { default: pino } = await import('pino');
    const log: Logger = pino({ level }, pino.destination({ fd: 2, sync: true }));
    return log;
  }
  const fallback: Deliver = (level, msg, obj) => writeStderr(`<${syslogSeverity(level)}>${formatMessage(msg, obj).replace(/\n/g, ' ')}\n`);
  // No pid, host or time fields: the journal and syslog record them themselves.
  const deliver: Deliver =
    format === 'journal'
      ? (level, msg, obj) => {
          if (!trySend(sockets.journal, encodeJournalEntry(journalFields(level, msg, obj)), true)) fallback(level, msg, obj);
        }
      : (level, msg, obj) => {
          const line = formatSyslogLine(syslogSeverity(level), formatMessage(msg, obj), SYSLOG_IDENTIFIER, process.pid, new Date());
          if (!trySend(sockets.syslog, Buffer.from(line), false)) fallback(level, msg, obj);
        };
  return new EventLogger(level, deliver);
}
