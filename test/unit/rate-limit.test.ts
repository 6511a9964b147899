// RateLimiter: bounded logging of protocol violations (spec §14: OTP logs every one; we cap them).
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/log/rate-limit.js';

function manualClock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('RateLimiter', () => {
  it('lets the first `limit` events of a kind through with dropped 0, then drops', () => {
    const c = manualClock();
    const rl = new RateLimiter<'bad'>(3, 10_000, c.now);
    expect(rl.admit('bad')).toEqual({ dropped: 0 });
    expect(rl.admit('bad')).toEqual({ dropped: 0 });
    expect(rl.admit('bad')).toEqual({ dropped: 0 });
    expect(rl.admit('bad')).toBeNull();
    expect(rl.admit('bad')).toBeNull();
  });

  it('the first event of a new window reports how many were dropped in the previous one', () => {
    const c = manualClock();
    const rl = new RateLimiter(2, 1000, c.now);
    rl.admit('x');
    rl.admit('x');
    for (let i = 0; i < 7; i++) expect(rl.admit('x')).toBeNull();
    c.advance(1000);
    expect(rl.admit('x')).toEqual({ dropped: 7 });
    // The count is reported once, then starts over.
    expect(rl.admit('x')).toEqual({ dropped: 0 });
    expect(rl.admit('x')).toBeNull();
    c.advance(1000);
    expect(rl.admit('x')).toEqual({ dropped: 1 });
  });

  it('the window is [start, start + windowMs): one ms before the end still drops, at the end a new window opens', () => {
    const c = manualClock();
    const rl = new RateLimiter(1, 500, c.now);
    expect(rl.admit('k')).toEqual({ dropped: 0 });
    c.advance(499);
    expect(rl.admit('k')).toBeNull();
    c.advance(1);
    expect(rl.admit('k')).toEqual({ dropped: 1 });
  });

  it('the window starts at the first event of the window, not on a fixed grid', () => {
    const c = manualClock(0);
    const rl = new RateLimiter(1, 1000, c.now);
    c.advance(900);
    expect(rl.admit('k')).toEqual({ dropped: 0 }); // window [900, 1900)
    c.advance(200); // t = 1100
    expect(rl.admit('k')).toBeNull();
    c.advance(800); // t = 1900
    expect(rl.admit('k')).toEqual({ dropped: 1 });
  });

  it('kinds are limited independently', () => {
    const c = manualClock();
    const rl = new RateLimiter<'a' | 'b'>(1, 1000, c.now);
    expect(rl.admit('a')).toEqual({ dropped: 0 });
    expect(rl.admit('a')).toBeNull();
    expect(rl.admit('b')).toEqual({ dropped: 0 });
    expect(rl.admit('b')).toBeNull();
    expect(rl.admit('b')).toBeNull();
    c.advance(1000);
    expect(rl.admit('a')).toEqual({ dropped: 1 });
    expect(rl.admit('b')).toEqual({ dropped: 2 });
  });

  it('a long quiet gap reports the drops of the last busy window, not zero', () => {
    const c = manualClock();
    const rl = new RateLimiter(1, 1000, c.now);
    rl.admit('k');
    rl.admit('k');
    rl.admit('k');
    c.advance(3_600_000);
    expect(rl.admit('k')).toEqual({ dropped: 2 });
  });

  it('a flood of 10,000 events in one window lets exactly `limit` through', () => {
    const c = manualClock();
    const rl = new RateLimiter(20, 10_000, c.now);
    let passed = 0;
    for (let i = 0; i < 10_000; i++) if (rl.admit('garbage')) passed++;
    expect(passed).toBe(20);
    c.advance(10_000);
    expect(rl.admit('garbage')).toEqual({ dropped: 9_980 });
  });

  it('uses Date.now by default', () => {
    const rl = new RateLimiter(1, 60_000);
    expect(rl.admit('k')).toEqual({ dropped: 0 });
    expect(rl.admit('k')).toBeNull();
  });
});
