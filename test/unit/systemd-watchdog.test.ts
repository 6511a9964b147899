// Watchdog: WATCHDOG_USEC/WATCHDOG_PID parsing, the per-tick health decision, and the timer itself
// (with a fake notifier; the real datagrams are covered in systemd-notify.test.ts).
import { describe, expect, it } from 'vitest';
import { parseWatchdogEnv, startWatchdog, watchdogTick } from '../../src/systemd/notify.js';

describe('parseWatchdogEnv', () => {
  it('is disabled without WATCHDOG_USEC', () => {
    expect(parseWatchdogEnv({}, 42)).toEqual({ enabled: false, reason: 'WATCHDOG_USEC is not set' });
    expect(parseWatchdogEnv({ WATCHDOG_USEC: '' }, 42).enabled).toBe(false);
  });

  it('reads the interval, with or without WATCHDOG_PID', () => {
    expect(parseWatchdogEnv({ WATCHDOG_USEC: '30000000' }, 42)).toEqual({ enabled: true, usec: 30_000_000 });
    expect(parseWatchdogEnv({ WATCHDOG_USEC: '500000', WATCHDOG_PID: '42' }, 42)).toEqual({ enabled: true, usec: 500_000 });
  });

  it('ignores a watchdog meant for another process', () => {
    const r = parseWatchdogEnv({ WATCHDOG_USEC: '500000', WATCHDOG_PID: '41' }, 42);
    expect(r).toEqual({ enabled: false, reason: 'WATCHDOG_PID=41 is not this process' });
  });

  it.each([['0'], ['-5'], ['1.5'], ['abc'], ['10s'], [' 100'], ['99999999999999999999']])(
    'rejects WATCHDOG_USEC=%j',
    (v) => {
      const r = parseWatchdogEnv({ WATCHDOG_USEC: v }, 42);
      expect(r.enabled).toBe(false);
      expect(!r.enabled && r.reason).toMatch(/invalid WATCHDOG_USEC/);
    },
  );

  it.each([['0'], ['x'], ['-42']])('rejects WATCHDOG_PID=%j', (v) => {
    const r = parseWatchdogEnv({ WATCHDOG_USEC: '1000000', WATCHDOG_PID: v }, 42);
    expect(!r.enabled && r.reason).toMatch(/invalid WATCHDOG_PID/);
  });
});

describe('watchdogTick', () => {
  it('pings when the timer ran on time or a little late', () => {
    expect(watchdogTick(1000, 1000, 100)).toEqual({ ping: true, lagMs: 0 });
    expect(watchdogTick(1000, 1100, 100)).toEqual({ ping: true, lagMs: 100 });
    expect(watchdogTick(1000, 999, 100)).toEqual({ ping: true, lagMs: 0 });
  });

  it('skips when the loop was blocked longer than the interval', () => {
    expect(watchdogTick(1000, 1100.5, 100)).toEqual({ ping: false, lagMs: 100.5 });
  });
});

describe('startWatchdog', () => {
  it('returns null when the watchdog is off or not ours', () => {
    const n = { watchdog: () => true };
    expect(startWatchdog(n, { env: {} })).toBeNull();
    expect(startWatchdog(n, { env: { WATCHDOG_USEC: '100000', WATCHDOG_PID: '1' }, pid: 2 })).toBeNull();
  });

  it('pings every half interval, skips a tick after a blocked loop, then resumes', async () => {
    let pings = 0;
    const skips: number[] = [];
    const wd = startWatchdog(
      { watchdog: () => (pings++, true) },
      { env: { WATCHDOG_USEC: '100000' }, onSkip: (lag) => skips.push(lag) },
    );
    expect(wd).toMatchObject({ usec: 100_000, periodMs: 50 });
    try {
      await new Promise((r) => setTimeout(r, 400));
      expect(pings).toBeGreaterThanOrEqual(3); // ~8 on an idle machine

      const before = pings;
      const end = performance.now() + 250; // block the event loop for longer than the 100 ms interval
      while (performance.now() < end);
      await new Promise((r) => setTimeout(r, 20));
      expect(skips.length).toBeGreaterThanOrEqual(1);
      expect(skips[0]).toBeGreaterThan(100);
      expect(pings).toBe(before);

      await new Promise((r) => setTimeout(r, 300));
      expect(pings).toBeGreaterThan(before);
    } finally {
      wd?.stop();
    }
    const after = pings;
    await new Promise((r) => setTimeout(r, 150));
    expect(pings).toBe(after);
  });

  it('reports send failures instead of throwing from the timer', async () => {
    const errors: unknown[] = [];
    const wd = startWatchdog(
      {
        watchdog: () => {
          throw Object.assign(new Error('sendmsg ECONNREFUSED'), { code: 'ECONNREFUSED' });
        },
      },
      { env: { WATCHDOG_USEC: '20000' }, onError: (e) => errors.push(e) },
    );
    await new Promise((r) => setTimeout(r, 100));
    wd?.stop();
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors[0]).toMatchObject({ code: 'ECONNREFUSED' });
  });
});
