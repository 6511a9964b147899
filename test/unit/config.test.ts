// config.ts: flags + environment -> daemon settings (spec §8, §11.1, Q5, Q9, Q11).
import { describe, expect, it } from 'vitest';
import {
  defaultMaxConnections,
  openFileLimit,
  parseEnvironmentFile,
  resolveDaemonConfig,
  resolvePort,
  resolveReloadable,
  type DaemonConfig,
} from '../../src/config.js';
import type { DaemonFlags } from '../../src/cli/otp-args.js';

const NO_FLAGS: DaemonFlags = { debug: 0, daemonize: false, relaxedCommandCheck: false, systemd: false };

function resolved(flags: Partial<DaemonFlags>, env: Record<string, string>, fdLimit?: number): DaemonConfig {
  const r = resolveDaemonConfig({ ...NO_FLAGS, ...flags }, env, fdLimit);
  expect(r.ok, r.ok ? '' : r.message).toBe(true);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

function rejected(flags: Partial<DaemonFlags>, env: Record<string, string>): string {
  const r = resolveDaemonConfig({ ...NO_FLAGS, ...flags }, env, 4096);
  expect(r.ok).toBe(false);
  return r.ok ? '' : r.message;
}

describe('resolvePort (spec §11.1 environment, Q9)', () => {
  it('default 4369, not "configured" (Q11: under socket activation the real port may be reported)', () => {
    expect(resolvePort(undefined, {})).toEqual({ ok: true, value: { port: 4369, configured: false } });
  });

  it('ERL_EPMD_PORT sets the port and counts as configured', () => {
    expect(resolvePort(undefined, { ERL_EPMD_PORT: '38373' })).toEqual({ ok: true, value: { port: 38373, configured: true } });
  });

  it('the -port flag wins over ERL_EPMD_PORT', () => {
    expect(resolvePort(5000, { ERL_EPMD_PORT: '6000' })).toEqual({ ok: true, value: { port: 5000, configured: true } });
  });

  it('the -port flag wins even when ERL_EPMD_PORT is junk (the variable is never consulted)', () => {
    expect(resolvePort(5000, { ERL_EPMD_PORT: 'abc' })).toEqual({ ok: true, value: { port: 5000, configured: true } });
  });

  for (const bad of ['abc', '12abc', '0', '65536', '70000', '-1', '4369.5', '0x1111', ' ']) {
    it(`Q9: ERL_EPMD_PORT=${JSON.stringify(bad)} is an error naming the variable (OTP used atoi -> port 0 / truncation)`, () => {
      const r = resolvePort(undefined, { ERL_EPMD_PORT: bad });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.message).toContain('ERL_EPMD_PORT');
    });
  }

  it('the bounds 1 and 65535 are accepted', () => {
    expect(resolvePort(undefined, { ERL_EPMD_PORT: '1' })).toEqual({ ok: true, value: { port: 1, configured: true } });
    expect(resolvePort(undefined, { ERL_EPMD_PORT: '65535' })).toEqual({ ok: true, value: { port: 65535, configured: true } });
  });

  it('surrounding whitespace is tolerated (as atoi does)', () => {
    expect(resolvePort(undefined, { ERL_EPMD_PORT: ' 4370\n' })).toEqual({ ok: true, value: { port: 4370, configured: true } });
  });

  it('an empty ERL_EPMD_PORT is treated as unset (implementation choice; OTP would atoi("") = 0)', () => {
    expect(resolvePort(undefined, { ERL_EPMD_PORT: '' })).toEqual({ ok: true, value: { port: 4369, configured: false } });
  });
});

describe('defaultMaxConnections (spec §10, Q5: never below 1024)', () => {
  it('unknown fd limit: assumes 4096 minus the reserve', () => {
    expect(defaultMaxConnections(undefined)).toBe(4096 - 64);
  });

  it('systemd\'s default soft limit 1024 still gives 1024 (OTP\'s suite needs 1001)', () => {
    expect(defaultMaxConnections(1024)).toBe(1024);
  });

  it('small limits never go below 1024', () => {
    expect(defaultMaxConnections(64)).toBe(1024);
    expect(defaultMaxConnections(1)).toBe(1024);
    expect(defaultMaxConnections(1088)).toBe(1024);
  });

  it('large limits: the limit minus a reserve of 64 fds', () => {
    expect(defaultMaxConnections(1089)).toBe(1025);
    expect(defaultMaxConnections(20000)).toBe(19936);
    expect(defaultMaxConnections(1 << 20)).toBe((1 << 20) - 64);
  });

  it('openFileLimit reads a positive soft limit on Linux', () => {
    const n = openFileLimit();
    expect(n === undefined || (Number.isInteger(n) && n > 0)).toBe(true);
    if (process.platform === 'linux') expect(n).toBeGreaterThan(0);
  });
});

describe('resolveDaemonConfig', () => {
  it('defaults: port 4369, packet timeout 60 s, no delays, strict commands, cap from the fd limit', () => {
    const c = resolved({}, {}, 1024);
    expect(c).toMatchObject({
      port: 4369,
      portConfigured: false,
      address: undefined,
      packetTimeout: 60,
      delayAccept: 0,
      delayWrite: 0,
      relaxedCommandCheck: false,
      debug: 0,
      systemd: false,
      daemonize: false,
      maxConnections: 1024,
      logFormat: undefined,
    });
  });

  it('flags are carried over', () => {
    const c = resolved({ port: 38443, packetTimeout: 1, delayAccept: 2, delayWrite: 3, debug: 2, systemd: true, daemonize: true }, {});
    expect(c).toMatchObject({ port: 38443, portConfigured: true, packetTimeout: 1, delayAccept: 2, delayWrite: 3, debug: 2, systemd: true, daemonize: true });
  });

  it('an invalid ERL_EPMD_PORT makes the whole config fail (exit 1, Q9)', () => {
    expect(rejected({}, { ERL_EPMD_PORT: 'abc' })).toContain('ERL_EPMD_PORT');
  });

  describe('ERL_EPMD_RELAXED_COMMAND_CHECK: presence is what counts (spec §8, B9)', () => {
    it('unset -> strict', () => expect(resolved({}, {}).relaxedCommandCheck).toBe(false));
    it('B9: set to the empty string -> relaxed', () => expect(resolved({}, { ERL_EPMD_RELAXED_COMMAND_CHECK: '' }).relaxedCommandCheck).toBe(true));
    it('set to "0" or "false" -> still relaxed (any value)', () => {
      expect(resolved({}, { ERL_EPMD_RELAXED_COMMAND_CHECK: '0' }).relaxedCommandCheck).toBe(true);
      expect(resolved({}, { ERL_EPMD_RELAXED_COMMAND_CHECK: 'false' }).relaxedCommandCheck).toBe(true);
    });
    it('the -relaxed_command_check flag alone -> relaxed', () => expect(resolved({ relaxedCommandCheck: true }, {}).relaxedCommandCheck).toBe(true));
  });

  describe('ERL_EPMD_ADDRESS (spec §11.1, §12)', () => {
    it('used when no -address flag', () => expect(resolved({}, { ERL_EPMD_ADDRESS: '127.0.0.3' }).address).toBe('127.0.0.3'));
    it('the -address flag overrides it', () => expect(resolved({ address: '10.0.0.1' }, { ERL_EPMD_ADDRESS: '127.0.0.3' }).address).toBe('10.0.0.1'));
    it('an explicit empty -address is kept (it means "default", not "use the variable")', () => {
      expect(resolved({ address: '' }, { ERL_EPMD_ADDRESS: '127.0.0.3' }).address).toBe('');
    });
  });

  describe('EPMD_NG_MAX_CONNECTIONS (Q5: configurable cap)', () => {
    it('a positive number sets the cap, below or above the default', () => {
      expect(resolved({}, { EPMD_NG_MAX_CONNECTIONS: '5000' }, 1024).maxConnections).toBe(5000);
      expect(resolved({}, { EPMD_NG_MAX_CONNECTIONS: '10' }, 1024).maxConnections).toBe(10);
    });
    it('unset or empty -> derived from the fd limit', () => {
      expect(resolved({}, {}, 100000).maxConnections).toBe(100000 - 64);
      expect(resolved({}, { EPMD_NG_MAX_CONNECTIONS: '' }, 100000).maxConnections).toBe(100000 - 64);
    });
    for (const bad of ['0', '-5', 'abc', '10k', '1.5']) {
      it(`${JSON.stringify(bad)} is an error naming the variable`, () => {
        expect(rejected({}, { EPMD_NG_MAX_CONNECTIONS: bad })).toContain('EPMD_NG_MAX_CONNECTIONS');
      });
    }
  });

  describe('EPMD_NG_LOG_FORMAT / EPMD_NG_LOG_LEVEL / EPMD_NG_ENV_FILE', () => {
    it('valid log formats pass through', () => {
      for (const f of ['json', 'pretty', 'journal', 'syslog']) expect(resolved({}, { EPMD_NG_LOG_FORMAT: f }).logFormat).toBe(f);
    });
    it('an unknown log format is an error', () => expect(rejected({}, { EPMD_NG_LOG_FORMAT: 'xml' })).toContain('EPMD_NG_LOG_FORMAT'));
    it('an empty log format means the default', () => expect(resolved({}, { EPMD_NG_LOG_FORMAT: '' }).logFormat).toBeUndefined());
    it('a valid log level passes through; unknown is an error; empty means none', () => {
      expect(resolved({}, { EPMD_NG_LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
      expect(rejected({}, { EPMD_NG_LOG_LEVEL: 'loud' })).toContain('EPMD_NG_LOG_LEVEL');
      expect(resolved({}, { EPMD_NG_LOG_LEVEL: '' }).logLevel).toBeUndefined();
    });
    it('EPMD_NG_ENV_FILE is carried, empty means none', () => {
      expect(resolved({}, { EPMD_NG_ENV_FILE: '/etc/default/epmd-ng' }).envFile).toBe('/etc/default/epmd-ng');
      expect(resolved({}, { EPMD_NG_ENV_FILE: '' }).envFile).toBeUndefined();
    });
  });
});

describe('resolveReloadable (SIGHUP settings)', () => {
  it('reads the cap and the level; nothing set -> both undefined', () => {
    expect(resolveReloadable({})).toEqual({ ok: true, value: { logLevel: undefined, maxConnections: undefined } });
    expect(resolveReloadable({ EPMD_NG_MAX_CONNECTIONS: '2048', EPMD_NG_LOG_LEVEL: 'warn' })).toEqual({
      ok: true,
      value: { logLevel: 'warn', maxConnections: 2048 },
    });
  });

  it('rejects a bad cap or level', () => {
    expect(resolveReloadable({ EPMD_NG_MAX_CONNECTIONS: '0' }).ok).toBe(false);
    expect(resolveReloadable({ EPMD_NG_LOG_LEVEL: 'verbose' }).ok).toBe(false);
  });
});

describe('parseEnvironmentFile (systemd EnvironmentFile= syntax)', () => {
  it('KEY=value lines, comments (# and ;) and blank lines', () => {
    expect(parseEnvironmentFile('# comment\n; other comment\n\nA=1\nB=two words\n')).toEqual({ A: '1', B: 'two words' });
  });

  it('strips one pair of matching quotes, keeps mismatched ones', () => {
    expect(parseEnvironmentFile(`A="x y"\nB='z'\nC="unterminated\nD='mixed"`)).toEqual({ A: 'x y', B: 'z', C: '"unterminated', D: `'mixed"` });
  });

  it('an empty value is kept as "" (so ERL_EPMD_RELAXED_COMMAND_CHECK= enables relaxed mode)', () => {
    const vars = parseEnvironmentFile('ERL_EPMD_RELAXED_COMMAND_CHECK=\n');
    expect(vars).toEqual({ ERL_EPMD_RELAXED_COMMAND_CHECK: '' });
    expect(resolved({}, vars).relaxedCommandCheck).toBe(true);
  });

  it('"export", spaces around "=", CRLF and the last assignment winning', () => {
    expect(parseEnvironmentFile('export A=1\r\nB = 2\nA=3\n')).toEqual({ A: '3', B: '2' });
  });

  it('skips lines that are not assignments', () => {
    expect(parseEnvironmentFile('not an assignment\n1BAD=x\n=x\nGOOD=y')).toEqual({ GOOD: 'y' });
  });
});
