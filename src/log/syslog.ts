// The classic local syslog line (RFC 3164 as syslog(3) sends it to /dev/log), for `-daemon` mode
// on hosts without journald, as OTP's epmd logs there.

export const SYSLOG_SOCKET = '/dev/log';
/** LOG_DAEMON, as OTP's epmd opens its log. */
const FACILITY_DAEMON = 3;
/** Longer lines are cut: syslog daemons drop or split datagrams above a few KiB (rsyslog: 8 KiB). */
export const MAX_SYSLOG_LINE = 8000;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const two = (n: number): string => String(n).padStart(2, '0');

/** `<PRI>Mmm dd hh:mm:ss ident[pid]: message`, local time, the day padded with a space. */
export function formatSyslogLine(severity: number, message: string, ident: string, pid: number, date: Date): string {
  const stamp = `${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  const line = `<${FACILITY_DAEMON * 8 + severity}>${stamp} ${ident}[${pid}]: ${message.replace(/\n/g, ' ')}`;
  return line.length > MAX_SYSLOG_LINE ? line.slice(0, MAX_SYSLOG_LINE) : line;
}
