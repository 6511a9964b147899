/**
 * OTP epmd's command line (spec §11.1), parsed left to right exactly as OTP does so that scripts
 * written for `epmd` behave the same with `epmd-ng`. Pure: no environment, no I/O.
 */

export interface DaemonFlags {
  debug: number;
  port?: number;
  address?: string;
  packetTimeout?: number;
  delayAccept?: number;
  delayWrite?: number;
  daemonize: boolean;
  relaxedCommandCheck: boolean;
  systemd: boolean;
}

export type ClientCommand = { name: 'names' | 'dump' | 'kill' | 'started' } | { name: 'stop'; node: string };

export type ParsedArgs =
  | { kind: 'daemon'; flags: DaemonFlags }
  | { kind: 'client'; command: ClientCommand; port?: number }
  | { kind: 'usage'; message: string };

const CLIENT_COMMANDS = new Set(['-names', '-dump', '-kill', '-started']);

/** Whole numbers 1..max; OTP's atoi accepted junk and 0 meant "invalid", here anything else is. */
function positiveInt(text: string | undefined, max: number): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= max ? n : undefined;
}

export function parseOtpArgs(argv: readonly string[]): ParsedArgs {
  const flags: DaemonFlags = { debug: 0, daemonize: false, relaxedCommandCheck: false, systemd: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    const numeric = (name: string, max: number): number | ParsedArgs => {
      const n = positiveInt(value, max);
      if (n === undefined) return { kind: 'usage', message: `${name} needs a whole number from 1 to ${max}, got ${value === undefined ? 'nothing' : `"${value}"`}` };
      i++;
      return n;
    };
    switch (arg) {
      case '-d':
      case '-debug':
        flags.debug++;
        break;
      case '-daemon':
        flags.daemonize = true;
        break;
      case '-relaxed_command_check':
        flags.relaxedCommandCheck = true;
        break;
      case '-systemd':
        flags.systemd = true;
        break;
      case '-address':
        if (value === undefined) return { kind: 'usage', message: '-address needs a list of IP addresses' };
        flags.address = value;
        i++;
        break;
      case '-port':
      case '-packet_timeout':
      case '-delay_accept':
      case '-delay_write': {
        // Ports are checked against the real range (OTP silently truncated, spec Q8).
        const n = numeric(arg, arg === '-port' ? 65535 : 2 ** 31 - 1);
        if (typeof n !== 'number') return n;
        if (arg === '-port') flags.port = n;
        else if (arg === '-packet_timeout') flags.packetTimeout = n;
        else if (arg === '-delay_accept') flags.delayAccept = n;
        else flags.delayWrite = n;
        break;
      }
      case '-stop':
        if (value === undefined) return { kind: 'usage', message: '-stop needs a node name' };
        if (i + 2 !== argv.length) return { kind: 'usage', message: '-stop NAME must come last' };
        return { kind: 'client', command: { name: 'stop', node: value }, port: flags.port };
      default:
        if (CLIENT_COMMANDS.has(arg)) {
          if (i + 1 !== argv.length) return { kind: 'usage', message: `${arg} must be the last argument` };
          return { kind: 'client', command: { name: arg.slice(1) as 'names' | 'dump' | 'kill' | 'started' }, port: flags.port };
        }
        return { kind: 'usage', message: `unknown option "${arg}"` };
    }
  }
  return { kind: 'daemon', flags };
}

export const OTP_USAGE = `usage: epmd-ng [-d|-debug] [-address List] [-port No] [-daemon] [-systemd]
               [-relaxed_command_check] [-packet_timeout Seconds]
               [-delay_accept Seconds] [-delay_write Seconds]
       epmd-ng [-port No] -names | -dump | -kill | -started | -stop Name
       epmd-ng --help   for every option and the epmd-ng extensions`;
