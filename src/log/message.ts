// One readable line per log event, for the journal's MESSAGE and syslog: what an operator reads in
// `journalctl -u epmd`. The same fields also go to the journal one by one (journal.ts), so nothing
// has to be parsed back out of this text.

/** Why a registration ended, as a person would say it. */
const UNREGISTER_REASONS: Record<string, string> = {
  closed: 'connection closed',
  data: 'unexpected data on its registration connection',
  stopped: 'STOP_REQ',
  'reply-failed': 'its reply could not be written',
  provisional: 'provisional entry removed',
};

/** Fields that the sentence itself already says, or that only label the event for filters. */
const IN_SENTENCE = new Set(['event', 'kind', 'node', 'port', 'creation', 'peer', 'reason', 'why']);

/** A field value as text: strings as they are, lists comma-separated, errors by their message. */
export function valueText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.message;
  if (Array.isArray(value)) return value.map(valueText).join(', ');
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** A value longer than this is cut in the message (the journal field keeps all of it). */
const MAX_VALUE_IN_MESSAGE = 200;

/** Values with spaces or separators are quoted, so `key=value` pairs stay unambiguous. */
function quoted(value: unknown): string {
  const full = valueText(value);
  const text = full.length > MAX_VALUE_IN_MESSAGE ? `${full.slice(0, MAX_VALUE_IN_MESSAGE)}…` : full;
  return text === '' || /[\s,()="]/.test(text) ? JSON.stringify(text) : text;
}

function registration(obj: Record<string, unknown>): string {
  const from = obj.peer !== undefined ? `, from ${valueText(obj.peer)}` : '';
  return `port ${valueText(obj.port)}, creation ${valueText(obj.creation)}${from}`;
}

function unregisterReason(obj: Record<string, unknown>): string {
  const reason = UNREGISTER_REASONS[valueText(obj.reason)] ?? valueText(obj.reason);
  return obj.why !== undefined ? `${reason}: ${valueText(obj.why)}` : reason;
}

/** The other fields, `(key=value, ...)`; empty when there are none. */
function extraFields(obj: Record<string, unknown>, skip: ReadonlySet<string>): string {
  const pairs = Object.entries(obj)
    .filter(([k, v]) => v !== undefined && !skip.has(k))
    .map(([k, v]) => `${k}=${quoted(v)}`);
  return pairs.length > 0 ? ` (${pairs.join(', ')})` : '';
}

/**
 * The MESSAGE line for a pino call `log.level(obj, msg)`. Registration events read as sentences
 * (`node rabbit registered: port 25672, creation 1796116567, from 127.0.0.1:45958`); any other
 * event is its message, `from <peer>` when there is one, and its remaining fields.
 */
export function formatMessage(msg: string | undefined, obj: Record<string, unknown>): string {
  const node = valueText(obj.node);
  switch (obj.event) {
    case 'register':
      return `node ${node} registered: ${registration(obj)}${extraFields(obj, IN_SENTENCE)}`;
    case 'adopt':
      return `node ${node} taken over from the previous process: ${registration(obj)}${extraFields(obj, IN_SENTENCE)}`;
    case 'unregister':
      return `node ${node} unregistered (${unregisterReason(obj)}): ${registration(obj)}${extraFields(obj, IN_SENTENCE)}`;
  }
  const text = msg ?? (obj.err instanceof Error ? obj.err.message : '');
  const from = obj.peer !== undefined ? ` from ${valueText(obj.peer)}` : '';
  return `${text}${from}${extraFields(obj, new Set(['event', 'kind', 'peer']))}`;
}

/** pino level → syslog severity (what journald's PRIORITY= and `journalctl -p` mean). */
export function syslogSeverity(level: number): number {
  if (level >= 60) return 2; // fatal → crit
  if (level >= 50) return 3; // error → err
  if (level >= 40) return 4; // warn → warning
  if (level >= 30) return 6; // info
  return 7; // debug, trace
}
