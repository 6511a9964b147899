import type net from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection, ConnectionTable, queryReserve, type DropReason } from '../../src/server/connections.js';

// The table's bookkeeping only calls destroy() on a socket: a stand-in that records the call is
// enough here (the end-to-end behaviour is in test/abuse/unread-replies.test.ts).
function fakeConnection(phase: 'reading' | 'registered' = 'reading'): Connection & { destroyed: () => boolean } {
  let destroyed = false;
  const socket = { destroy: () => void (destroyed = true) } as unknown as net.Socket;
  return Object.assign(new Connection(socket, phase), { destroyed: () => destroyed });
}

describe('ConnectionTable', () => {
  let drops: [Connection, DropReason][];
  const record = (conn: Connection, reason: DropReason) => void drops.push([conn, reason]);

  beforeEach(() => {
    drops = [];
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it('evicts the oldest reading connection, then the oldest replying one, never a registration', () => {
    // The callback sees each victim before it is closed (the server logs its phase and its peer,
    // which a destroyed socket no longer tells).
    const seen: [Connection, string, string, boolean][] = [];
    const table = new ConnectionTable(60_000, (conn, reason) => void seen.push([conn, reason, conn.phase, (conn as ReturnType<typeof fakeConnection>).destroyed()]));
    const reg = fakeConnection('registered');
    table.addRegistered(reg);
    const [r1, r2, q1, q2] = [fakeConnection(), fakeConnection(), fakeConnection(), fakeConnection()];
    for (const c of [q1, r1, q2, r2]) table.addReading(c);
    for (const q of [q1, q2]) table.startReply(q);
    expect([table.evictOne(), table.evictOne(), table.evictOne(), table.evictOne(), table.evictOne()]).toEqual([true, true, true, true, false]);
    expect(seen).toEqual([
      [r1, 'evicted', 'reading', false],
      [r2, 'evicted', 'reading', false],
      [q1, 'evicted', 'replying', false],
      [q2, 'evicted', 'replying', false],
    ]);
    expect([r1, r2, q1, q2].every((c) => c.destroyed() && c.phase === 'closed')).toBe(true);
    expect(reg.destroyed()).toBe(false);
    expect(table.size).toBe(1);
    table.stop();
  });

  it('keeps a 64th of the cap, 1 to 64 connections, for queries; a cap of 1 keeps none', () => {
    expect([1, 2, 20, 127, 128, 1024, 4096, 16384, 100_000].map(queryReserve)).toEqual([0, 1, 1, 1, 2, 16, 64, 64, 64]);
  });

  it('counts and lists every open connection once, whatever its phase', () => {
    const table = new ConnectionTable(60_000, record);
    const [reading, replying, registered, adopted, gone] = [fakeConnection(), fakeConnection(), fakeConnection(), fakeConnection('registered'), fakeConnection()];
    for (const c of [reading, replying, registered, gone]) table.addReading(c);
    table.addRegistered(adopted);
    table.startReply(replying);
    table.startReply(registered);
    table.becomeRegistered(registered);
    table.startReply(gone);
    table.remove(gone);
    expect(table.size).toBe(4);
    expect(table.queries).toBe(2);
    expect(table.registeredCount).toBe(2);
    expect(new Set(table.all())).toEqual(new Set([reading, replying, registered, adopted]));
    expect([...table.all()].length).toBe(4);
    // Removing twice changes nothing; a registration keeps no deadline.
    table.remove(gone);
    expect(table.size).toBe(4);
    expect(registered.inTimed).toBeUndefined();
    for (const c of [reading, replying, registered, adopted]) table.remove(c);
    expect([table.size, table.queries, [...table.all()].length]).toEqual([0, 0, 0]);
    table.stop();
  });

  it('closes a silent reading connection after the timeout; data starts it again', () => {
    const table = new ConnectionTable(3000, record);
    const quiet = fakeConnection();
    const talking = fakeConnection();
    table.addReading(quiet);
    table.addReading(talking);
    vi.advanceTimersByTime(2000);
    table.touch(talking);
    vi.advanceTimersByTime(1250);
    expect(drops).toEqual([[quiet, 'idle']]);
    expect(talking.destroyed()).toBe(false);
    vi.advanceTimersByTime(2000);
    expect(drops).toEqual([
      [quiet, 'idle'],
      [talking, 'idle'],
    ]);
    expect(table.size).toBe(0);
  });

  it('closes a connection that has not taken its reply by the write deadline', () => {
    const table = new ConnectionTable(3000, record);
    const slow = fakeConnection();
    table.addReading(slow);
    table.startReply(slow);
    vi.advanceTimersByTime(10_000);
    expect(drops).toEqual([]);
    table.writePending(slow, Buffer.alloc(10));
    expect(table.pendingBytes).toBe(10);
    vi.advanceTimersByTime(3250);
    expect(drops).toEqual([[slow, 'write-deadline']]);
    expect(table.pendingBytes).toBe(0);
  });

  it('counts a shared reply once and drops the longest-replying connection over the budget', () => {
    const table = new ConnectionTable(60_000, record, 100);
    const shared = Buffer.alloc(80);
    const [a, b, c, d] = [fakeConnection(), fakeConnection(), fakeConnection(), fakeConnection()];
    for (const conn of [a, b, c, d]) {
      table.addReading(conn);
      table.startReply(conn);
    }
    table.writePending(a, shared);
    table.writePending(b, shared);
    expect(table.pendingBytes).toBe(80);
    expect(drops).toEqual([]);
    // A second, different 80-byte reply takes the total over 100: the connections replying
    // longest go until the rest fits (a alone would not do: b still holds the shared buffer).
    table.writePending(c, Buffer.alloc(80));
    expect(drops).toEqual([
      [a, 'reply-budget'],
      [b, 'reply-budget'],
    ]);
    expect(table.pendingBytes).toBe(80);
    // The newest reply is admitted whatever its size.
    table.writePending(d, Buffer.alloc(500));
    expect(drops.map(([conn]) => conn)).toEqual([a, b, c]);
    expect(table.pendingBytes).toBe(500);
    expect(d.destroyed()).toBe(false);
    table.stop();
  });
});
