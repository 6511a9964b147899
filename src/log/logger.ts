import fs from 'node:fs';
import pino, { type Logger } from 'pino';
import { loadNative } from '../systemd/native.js';
import { encodeJournalEntry, JOURNAL_SOCKET, journalFields, SYSLOG_IDENTIFIER } from './journal.js';
import { formatMessage, syslogSeverity } from './message.js';
import { formatSyslogLine, SYSLOG_SOCKET } from './syslog.js';

export type { Logger };
export type Level = pino.Level;
export type LogFormat = 'json' | 'pretty' | 'journal' | 'syslog';

/** OTP's -d count maps onto log levels: none → info, one → debug (per request), more → trace. */
export function levelForDebug(debug: number): pino.Level {
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

const NEEDS_METADATA: unique symbol = Symbol.for('pino.metadata');

/**
 * A pino destination that receives each event's level, message and fields as pino holds them
 * (pino's metadata protocol sets them before each write), so the journal and syslog outputs
 * never parse the JSON line back. It runs in-process and synchronously: one datagram per event.
 */
class EventSink {
  readonly [NEEDS_METADATA] = true;
  lastLevel = 30;
  lastMsg: string | undefined;
  lastObj: Record<string, unknown> = {};

  constructor(private readonly deliver: (level: number, msg: string | undefined, obj: Record<string, unknown>) => void) {}

  write(): void {
    this.deliver(this.lastLevel, this.lastMsg, this.lastObj);
  }
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

/**
 * Logs go to stderr like OTP's epmd: JSON lines for machines, one readable line per event on a
 * terminal. `journal`: each event as a journal entry of its own through journald's native socket,
 * a readable MESSAGE plus EPMD_* fields and PRIORITY; `syslog`: RFC 3164 lines to /dev/log. An
 * entry the socket does not take (no journald, its queue full) is written to stderr instead, as
 * `<priority>message`, which a journal stream still files at the right priority.
 */
export async function createLogger(
  level: pino.Level | 'silent',
  format: LogFormat = defaultLogFormat(),
  sockets: LogSockets = SOCKETS,
): Promise<Logger> {
  if (format === 'pretty') {
    // Loaded only for a terminal: it is most of the start-up time of the other formats.
    const { default: pretty } = await import('pino-pretty');
    return pino(
      { level },
      pretty({ destination: 2, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }),
    );
  }
  const stderr = pino.destination({ fd: 2, sync: true });
  if (format === 'json') return pino({ level }, stderr);
  const fallback = (level: number, msg: string | undefined, obj: Record<string, unknown>): void => {
    stderr.write(`<${syslogSeverity(level)}>${formatMessage(msg, obj).replace(/\n/g, ' ')}\n`);
  };
  const deliver =
    format === 'journal'
      ? (level: number, msg: string | undefined, obj: Record<string, unknown>): void => {
          if (!trySend(sockets.journal, encodeJournalEntry(journalFields(level, msg, obj)), true)) fallback(level, msg, obj);
        }
      : (level: number, msg: string | undefined, obj: Record<string, unknown>): void => {
          const line = formatSyslogLine(syslogSeverity(level), formatMessage(msg, obj), SYSLOG_IDENTIFIER, process.pid, new Date());
          if (!trySend(sockets.syslog, Buffer.from(line), false)) fallback(level, msg, obj);
        };
  // No base fields and no time: the journal and syslog record pid, host and time themselves.
  return pino({ level, base: undefined, timestamp: false }, new EventSink(deliver));
}
