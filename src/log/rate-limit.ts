/**
 * Lets at most `limit` events of each kind through per window, and counts the rest, so a flood of
 * bad packets cannot flood the log (OTP logs every one). The first event let through after a
 * suppressed stretch carries the number of events that were dropped.
 */
export class RateLimiter<Kind extends string = string> {
  private readonly windows = new Map<Kind, { start: number; passed: number; dropped: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Returns null to drop the event, or how many events of this kind were dropped before it. */
  admit(kind: Kind): { dropped: number } | null {
    const t = this.now();
    let w = this.windows.get(kind);
    if (!w || t - w.start >= this.windowMs) {
      const dropped = w?.dropped ?? 0;
      w = { start: t, passed: 0, dropped: 0 };
      this.windows.set(kind, w);
      w.passed++;
      return { dropped };
    }
    if (w.passed < this.limit) {
      w.passed++;
      return { dropped: 0 };
    }
    w.dropped++;
    return null;
  }
}
