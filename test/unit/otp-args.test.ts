// parseOtpArgs: OTP's left-to-right command line (spec §11.1, G-E, Q8).
import { describe, expect, it } from 'vitest';
import { OTP_USAGE, parseOtpArgs, type DaemonFlags, type ParsedArgs } from '../../src/cli/otp-args.js';

function daemon(argv: string[]): DaemonFlags {
  const r = parseOtpArgs(argv);
  expect(r.kind, r.kind === 'usage' ? r.message : '').toBe('daemon');
  if (r.kind !== 'daemon') throw new Error('not daemon');
  return r.flags;
}

function expectUsage(argv: string[]): void {
  const r = parseOtpArgs(argv);
  expect(r.kind, `argv ${JSON.stringify(argv)} -> ${JSON.stringify(r)}`).toBe('usage');
  if (r.kind === 'usage') expect(r.message.length).toBeGreaterThan(0);
}

function client(argv: string[]): Extract<ParsedArgs, { kind: 'client' }> {
  const r = parseOtpArgs(argv);
  expect(r.kind, r.kind === 'usage' ? r.message : '').toBe('client');
  if (r.kind !== 'client') throw new Error('not client');
  return r;
}

describe('daemon flags (spec §11.1)', () => {
  it('no arguments: a foreground daemon with defaults', () => {
    expect(daemon([])).toEqual({ debug: 0, daemonize: false, relaxedCommandCheck: false, systemd: false });
  });

  it('G-N: the suite\'s "-packet_timeout 1 -port 38443"', () => {
    expect(daemon(['-packet_timeout', '1', '-port', '38443'])).toMatchObject({ packetTimeout: 1, port: 38443 });
  });

  it('G-N: "-packet_timeout 1 -port 38443 -delay_write 1 -relaxed_command_check"', () => {
    expect(daemon(['-packet_timeout', '1', '-port', '38443', '-delay_write', '1', '-relaxed_command_check'])).toMatchObject({
      packetTimeout: 1,
      port: 38443,
      delayWrite: 1,
      relaxedCommandCheck: true,
    });
  });

  it('-d and -debug are repeatable, each adds one level', () => {
    expect(daemon(['-d']).debug).toBe(1);
    expect(daemon(['-d', '-d', '-debug']).debug).toBe(3);
    expect(daemon(['-d', '-port', '5', '-d', '-d', '-d']).debug).toBe(4);
  });

  it('-daemon, -systemd, -relaxed_command_check set their flags', () => {
    expect(daemon(['-daemon'])).toMatchObject({ daemonize: true, systemd: false, relaxedCommandCheck: false });
    expect(daemon(['-systemd'])).toMatchObject({ systemd: true, daemonize: false });
    expect(daemon(['-relaxed_command_check'])).toMatchObject({ relaxedCommandCheck: true });
  });

  it('-address takes the next argument verbatim, separators and all', () => {
    expect(daemon(['-address', '127.0.0.2, ::1 10.0.0.1']).address).toBe('127.0.0.2, ::1 10.0.0.1');
  });

  it('-delay_accept N', () => {
    expect(daemon(['-delay_accept', '2']).delayAccept).toBe(2);
  });

  it('a later -port overrides an earlier one', () => {
    expect(daemon(['-port', '5000', '-port', '6000']).port).toBe(6000);
  });

  it('port 1 and 65535 are the bounds that are accepted', () => {
    expect(daemon(['-port', '1']).port).toBe(1);
    expect(daemon(['-port', '65535']).port).toBe(65535);
  });

  it('a value is consumed even if it looks like an option: "-address -names" is an address, not a command', () => {
    expect(daemon(['-address', '-names']).address).toBe('-names');
  });
});

describe('numeric values that OTP rejects (atoi() == 0) and Q8 range check', () => {
  it('G-E F5: -port 0', () => expectUsage(['-port', '0']));
  it('G-E F5: -port abc', () => expectUsage(['-port', 'abc']));
  it('G-E F5: -port with no value', () => expectUsage(['-port']));
  it('Q8: -port 70000 (OTP bound 4464 and reported 70000)', () => expectUsage(['-port', '70000']));
  it('Q8: -port 65536', () => expectUsage(['-port', '65536']));
  it('-port -1', () => expectUsage(['-port', '-1']));
  it('-port "" (empty)', () => expectUsage(['-port', '']));
  it('-port followed by a command: "-port -names" (atoi("-names") = 0)', () => expectUsage(['-port', '-names']));
  it('G-E F5: -packet_timeout 0', () => expectUsage(['-packet_timeout', '0']));
  it('-packet_timeout abc', () => expectUsage(['-packet_timeout', 'abc']));
  it('-packet_timeout with no value', () => expectUsage(['-packet_timeout']));
  it('-delay_accept 0', () => expectUsage(['-delay_accept', '0']));
  it('-delay_write 0', () => expectUsage(['-delay_write', '0']));
  it('-delay_write with no value', () => expectUsage(['-delay_write']));
  it('-address with no value', () => expectUsage(['-address']));
});

describe('unknown options are usage errors (spec §11.1, G-E F5)', () => {
  for (const arg of ['-bogus', '-h', '--help', '-help', '--port', 'names', 'foo', '', '-D', '-Names', '-port=4369']) {
    it(`${JSON.stringify(arg)}`, () => expectUsage([arg]));
  }

  it('an unknown option after valid ones still fails', () => expectUsage(['-d', '-port', '5', '-x']));
});

describe('client commands (spec §11.1, §11.3)', () => {
  it('-names alone: no port (the caller falls back to ERL_EPMD_PORT / 4369)', () => {
    const r = client(['-names']);
    expect(r.command).toEqual({ name: 'names' });
    expect(r.port).toBeUndefined();
  });

  it('-dump, -kill, -started', () => {
    expect(client(['-dump']).command).toEqual({ name: 'dump' });
    expect(client(['-kill']).command).toEqual({ name: 'kill' });
    expect(client(['-started']).command).toEqual({ name: 'started' });
  });

  it('G-E F1: "-port 38369 -names" uses the port given before it', () => {
    const r = client(['-port', '38369', '-names']);
    expect(r.command).toEqual({ name: 'names' });
    expect(r.port).toBe(38369);
  });

  it('G-E F1: "-port 38369 -stop foo"', () => {
    const r = client(['-port', '38369', '-stop', 'foo']);
    expect(r.command).toEqual({ name: 'stop', node: 'foo' });
    expect(r.port).toBe(38369);
  });

  it('G-E F7: "-port 38369 -address \'  ,  \' -kill" is a kill command (the address is irrelevant)', () => {
    const r = client(['-port', '38369', '-address', '  ,  ', '-kill']);
    expect(r.command).toEqual({ name: 'kill' });
    expect(r.port).toBe(38369);
  });

  it('daemon-only flags before a command are accepted and ignored (spec §8: relaxed does nothing in client mode)', () => {
    expect(client(['-d', '-relaxed_command_check', '-names']).command).toEqual({ name: 'names' });
  });

  it('-stop takes any name, even one that looks like an option', () => {
    expect(client(['-stop', '-names']).command).toEqual({ name: 'stop', node: '-names' });
    expect(client(['-stop', 'nöde']).command).toEqual({ name: 'stop', node: 'nöde' });
  });

  it('an invalid port before a command is a usage error, not a client run', () => {
    expectUsage(['-port', '0', '-names']);
  });
});

describe('commands must come last (spec §11.1 "must be the last argument")', () => {
  it('"-names -port 5" is a usage error', () => expectUsage(['-names', '-port', '5']));
  it('G-E F5: "-names extra" is a usage error', () => expectUsage(['-names', 'extra']));
  it('"-kill -d"', () => expectUsage(['-kill', '-d']));
  it('"-dump -dump"', () => expectUsage(['-dump', '-dump']));
  it('"-started -names"', () => expectUsage(['-started', '-names']));
  it('G-E F5: "-stop" without a name', () => expectUsage(['-stop']));
  it('"-stop a b": NAME must be the last argument', () => expectUsage(['-stop', 'a', 'b']));
  it('"-stop a -port 5"', () => expectUsage(['-stop', 'a', '-port', '5']));
});

describe('usage text', () => {
  it('starts with "usage:" and mentions every OTP option', () => {
    expect(OTP_USAGE.startsWith('usage:')).toBe(true);
    for (const opt of ['-d', '-debug', '-address', '-port', '-daemon', '-systemd', '-relaxed_command_check', '-packet_timeout', '-delay_accept', '-delay_write', '-names', '-dump', '-kill', '-started', '-stop']) {
      expect(OTP_USAGE, opt).toContain(opt);
    }
  });
});
