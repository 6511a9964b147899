// Golden section G-C: the old/unused-names list (capped at 5 under -d, 1000 otherwise), slot
// reuse and creation numbers (spec §6), DUMP ordering (spec §5.4). Creation values depend on the
// clock, so they are checked as relations. Where OTP hands a recycled slot's counter over without
// bumping it (quirk Q10), epmd-ng deliberately bumps it instead; the two branches assert each.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../helpers/daemon.js';
import { impl } from '../helpers/daemon.js';
import type { Registration } from '../helpers/wire.js';
import { DUMP_REQ, Resources, creationOf, dumpReply, exchange, listedNames, maskFd, waitGone, waitUntil } from './util.js';

async function regAndClose(res: Resources, d: Daemon, name: string, port: number): Promise<number> {
  const r = await res.register(d.port, { port, name });
  expect(r.reply.subarray(0, 2).toString('hex')).toBe('7600');
  await r.close();
  expect(await waitGone(d.port, name)).toBe(true);
  return creationOf(r.reply);
}

describe('G-C unused-name list under -d (cap 5) and slot recycling', () => {
  const res = new Resources();
  let d: Daemon;
  const n1: number[] = [];
  const others: Record<string, number> = {};
  let t0 = 0;
  let t1 = 0;

  beforeAll(async () => {
    d = await res.daemon(['-d']);
  });
  afterAll(() => res.cleanup());

  it('n1 registered and unregistered 10 times: each re-registration reuses its slot with creation + 1', async () => {
    t0 = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 10; i++) n1.push(await regAndClose(res, d, 'n1', 6001));
    for (let i = 1; i < 10; i++) expect(n1[i]).toBe(n1[0]! + i);
    expect(n1[0]).toBeGreaterThanOrEqual(t0);
  });

  it('n2..n6 get fresh slots (creation = clock + 1)', async () => {
    for (let i = 2; i <= 6; i++) others[`n${i}`] = await regAndClose(res, d, `n${i}`, 6000 + i);
    t1 = Math.floor(Date.now() / 1000);
    for (let i = 2; i <= 6; i++) {
      expect(others[`n${i}`]).toBeGreaterThanOrEqual(t0);
      expect(others[`n${i}`]).toBeLessThanOrEqual(t1 + 2);
    }
  });

  it('n7 takes over the oldest unused slot (n1\'s); creation: OTP hands over n1\'s last value, epmd-ng bumps it (Q10)', async () => {
    others.n7 = await regAndClose(res, d, 'n7', 6007);
    if (impl === 'otp') {
      expect(others.n7).toBe(n1[9]);
    } else {
      expect(others.n7).toBeGreaterThan(n1[9]!);
      expect(others.n7).toBeGreaterThanOrEqual(4);
      expect(others.n7).toBeLessThan(2 ** 32);
    }
  });

  it('DUMP lists only old/unused names n2..n7, oldest first (n1\'s entry was recycled)', async () => {
    const r = await exchange(d.port, DUMP_REQ);
    expect(maskFd(r.recv)).toEqual(
      dumpReply(
        d.port,
        [],
        [2, 3, 4, 5, 6, 7].map((i) => [`n${i}`, 6000 + i] as [string, number]),
      ),
    );
    // The captured bytes, fd masked: b'\x00\x00\x95\xe1old/unused name <n2>, port = 6002, fd = 5 \n\x00...'
    expect(r.recv.toString('latin1')).toContain('old/unused name <n2>, port = 6002, fd = ');
    expect(r.end).toBe('FIN');
  });

  it('n1 again takes over n2\'s slot; creation: OTP reuses n2\'s value (one n1 already had), epmd-ng bumps it (Q10)', async () => {
    const r = await res.register(d.port, { port: 6001, name: 'n1' });
    const c = creationOf(r.reply);
    if (impl === 'otp') {
      expect(c).toBe(others.n2);
    } else {
      expect(c).toBeGreaterThan(others.n2!);
      expect(c).toBeGreaterThanOrEqual(4);
    }
    const dump = await exchange(d.port, DUMP_REQ);
    expect(maskFd(dump.recv)).toEqual(
      dumpReply(
        d.port,
        [['n1', 6001]],
        [3, 4, 5, 6, 7].map((i) => [`n${i}`, 6000 + i] as [string, number]),
      ),
    );
  });
});

describe('unused-name list without -d (cap 1000)', () => {
  const res = new Resources();
  afterEach(() => res.cleanup());

  it('1001 unregistered names stay listed; the next new name recycles exactly one entry', async () => {
    const d = await res.daemon();
    const regs: Registration[] = [];
    for (let b = 0; b < 1001; b += 100) {
      const batch = [];
      for (let i = b; i < Math.min(b + 100, 1001); i++) batch.push(res.register(d.port, { port: 20000 + i, name: `u${i}` }));
      regs.push(...(await Promise.all(batch)));
    }
    const creations = new Map(regs.map((r, i) => [`u${i}`, creationOf(r.reply)]));
    // Unregister all; the daemon appends each to the unused list in the order it processes them.
    for (const r of regs) {
      await r.close();
    }
    expect(await waitUntil(async () => (await listedNames(d.port)).length === 0, 10_000)).toBe(true);
    const unusedCount = async (): Promise<string[]> => {
      const dump = (await exchange(d.port, DUMP_REQ)).recv.subarray(4).toString('latin1');
      return [...dump.matchAll(/old\/unused name <([^>]*)>/g)].map((m) => m[1]!);
    };
    const before = await unusedCount();
    expect(before.length).toBe(1001);
    expect(new Set(before).size).toBe(1001);
    const fresh = await res.register(d.port, { port: 21999, name: 'fresh' });
    const after = await unusedCount();
    expect(after.length).toBe(1000);
    // Exactly the oldest entry was taken over.
    expect(after).toEqual(before.slice(1));
    const recycled = creations.get(before[0]!)!;
    if (impl === 'otp') expect(creationOf(fresh.reply)).toBe(recycled);
    else expect(creationOf(fresh.reply)).toBeGreaterThan(recycled);
  });
});
