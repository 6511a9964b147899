// journald's native protocol (systemd's JOURNAL_NATIVE_PROTOCOL.md): one datagram per entry to
// /run/systemd/journal/socket, each field `NAME=value\n`, or for a value that contains a newline
// `NAME\n`, its length as 64-bit little-endian, the bytes and `\n`. An entry too large for a
// datagram goes as a sealed memfd (the native addon does that part).
import { formatMessage, syslogSeverity, valueText } from './message.js';

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';
export const SYSLOG_IDENTIFIER = 'epmd-ng';

/**
 * `maxConnections` → `EPMD_MAX_CONNECTIONS`. Journal field names are upper-case letters, digits
 * and underscores, must not start with an underscore (those are journald's own) and have at most
 * 64 characters.
 */
export function journalFieldName(key: string): string {
  const snake = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return `EPMD_${snake}`.slice(0, 64);
}

export type JournalField = readonly [name: string, value: string | Buffer];

/** Encodes fields as one native-protocol entry; values may hold any bytes, newlines included. */
export function encodeJournalEntry(fields: readonly JournalField[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (!bytes.includes(0x0a)) {
      parts.push(Buffer.from(`${name}=`), bytes, NEWLINE);
      continue;
    }
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(bytes.length));
    parts.push(Buffer.from(`${name}\n`), length, bytes, NEWLINE);
  }
  return Buffer.concat(parts);
}

const NEWLINE = Buffer.from('\n');

/**
 * The fields of one log event: the readable MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, and every field
 * of the event as EPMD_<NAME> (EPMD_EVENT, EPMD_NODE, EPMD_PORT, EPMD_CREATION, EPMD_PEER,
 * EPMD_REASON, ...), so `journalctl EPMD_NODE=rabbit` finds one node's history.
 */
export function journalFields(level: number, msg: string | undefined, obj: Record<string, unknown>): JournalField[] {
  const fields: JournalField[] = [
    ['MESSAGE', formatMessage(msg, obj)],
    ['PRIORITY', String(syslogSeverity(level))],
    ['SYSLOG_IDENTIFIER', SYSLOG_IDENTIFIER],
  ];
  for (const [key, value] of Object.entries(obj)) {
    if (value !== undefined) fields.push([journalFieldName(key), valueText(value)]);
  }
  return fields;
}
