import fs from 'node:fs';
import pino, { type Logger } from 'pino';

export type { Logger };
export type Level = pino.Level;
export type LogFormat = 'json' | 'pretty' | 'journal';

/** OTP's -d count maps onto log levels: none → info, one → debug (per request), more → trace. */
export function levelForDebug(debug: number): pino.Level {
  return debug <= 0 ? 'info' : debug === 1 ? 'debug' : 'trace';
}

/** pino level number → syslog priority, so `journalctl -p warning` filters correctly. */
const SYSLOG_PRIORITY: Record<string, number> = { '10': 7, '20': 7, '30': 6, '40': 4, '50': 3, '60': 2 };

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

/**
 * Logs go to stderr like OTP's epmd. JSON lines for machines; one readable line per event on a
 * terminal; under journald, JSON with a `<priority>` prefix and without the fields the journal
 * records itself (time, pid, hostname).
 */
export async function createLogger(level: pino.Level | 'silent', format: LogFormat = defaultLogFormat()): Promise<Logger> {
  if (format === 'pretty') {
    // Loaded only for a terminal: it is most of the start-up time of the other formats.
    const { default: pretty } = await import('pino-pretty');
    return pino(
      { level },
      pretty({ destination: 2, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }),
    );
  }
  const destination = pino.destination({ fd: 2, sync: true });
  if (format === 'journal') {
    return pino(
      {
        level,
        base: undefined,
        timestamp: false,
        hooks: { streamWrite: (line: string) => `<${SYSLOG_PRIORITY[line.slice(9, 11)] ?? 6}>${line}` },
      },
      destination,
    );
  }
  return pino({ level }, destination);
}
