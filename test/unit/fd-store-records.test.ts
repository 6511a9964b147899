import { describe, expect, it } from 'vitest';
import { decodeRecords, encodeRecord } from '../../src/systemd/fd-store.js';

const node = (name: string, extra = Buffer.alloc(0)) => ({
  name: Buffer.from(name),
  port: 41234,
  nodeType: 72,
  protocol: 0,
  highestVersion: 6,
  lowestVersion: 5,
  extra,
  creation: 0xfedcba98,
});

describe('fd store state records', () => {
  it('round-trip every field, arbitrary bytes in name and extra, keyed by sequence number', () => {
    const a = node('a');
    const b = { ...node('', Buffer.from([0, 255, 10, 32])), name: Buffer.from([0xf0, 0x9f, 0x98, 0x80]) };
    const text = encodeRecord(1, a) + encodeRecord(36 ** 3, b);
    const back = decodeRecords(text);
    expect([...back.keys()]).toEqual([1, 36 ** 3]);
    expect(back.get(1)).toEqual(a);
    expect(back.get(36 ** 3)).toEqual(b);
  });

  it('a later record for the same sequence number wins; a torn last line is ignored', () => {
    const text = encodeRecord(7, node('old')) + encodeRecord(7, node('new')) + encodeRecord(8, node('torn')).slice(0, 10);
    const back = decodeRecords(text);
    expect(back.size).toBe(1);
    expect(back.get(7)!.name.toString()).toBe('new');
  });

  it('malformed lines are skipped, not fatal', () => {
    const good = encodeRecord(3, node('ok'));
    const back = decodeRecords(`garbage\n1 !!!\n2 AAAA\n${good}`);
    expect([...back.keys()]).toEqual([3]);
  });

  it('records stay one line and printable whatever the bytes', () => {
    const line = encodeRecord(12345, node('x', Buffer.from('\n\0:\u00ff', 'latin1')));
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).toMatch(/^[0-9a-z]+ [A-Za-z0-9_-]+$/);
  });
});
