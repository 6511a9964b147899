import { describe, expect, it } from 'vitest';
import { prng } from '../helpers/prng.js';
import { Link, LinkedList } from '../../src/server/linked-list.js';

const members = (n: number) => Array.from({ length: n }, (_, i) => new Link(i));
const owners = (list: LinkedList<Link<number>>) => [...list].map((link) => link.owner);

describe('LinkedList', () => {
  it('keeps insertion order; pushing a member twice keeps its place, like Set.add', () => {
    const list = new LinkedList<Link<number>>();
    const [a, b, c] = members(3);
    for (const link of [a!, b!, c!, a!]) list.push(link);
    expect(owners(list)).toEqual([0, 1, 2]);
    expect(list.size).toBe(3);
    expect(list.first?.owner).toBe(0);
  });

  it('removes from the front, the middle and the back, and ignores members it does not hold', () => {
    const list = new LinkedList<Link<number>>();
    const other = new LinkedList<Link<number>>();
    const links = members(5);
    for (const link of links) list.push(link);
    const stranger = new Link(9);
    other.push(stranger);
    list.remove(links[0]!);
    list.remove(links[2]!);
    list.remove(links[4]!);
    list.remove(links[2]!);
    list.remove(stranger);
    expect(owners(list)).toEqual([1, 3]);
    expect(list.size).toBe(2);
    expect(owners(other)).toEqual([9]);
    // A removed member points at nothing any more, and can join again at the end.
    expect([links[0]!.prev, links[0]!.next, links[0]!.list]).toEqual([undefined, undefined, undefined]);
    list.push(links[0]!);
    expect(owners(list)).toEqual([1, 3, 0]);
  });

  it('lets the member being visited be removed during iteration', () => {
    const list = new LinkedList<Link<number>>();
    const links = members(6);
    for (const link of links) list.push(link);
    const seen: number[] = [];
    for (const { owner: n } of list) {
      seen.push(n);
      if (n % 2 === 0) list.remove(links[n]!);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    expect(owners(list)).toEqual([1, 3, 5]);
  });

  it('matches a Set through random pushes and removals', () => {
    const random = prng(7);
    const list = new LinkedList<Link<number>>();
    const set = new Set<number>();
    const links = members(40);
    for (let step = 0; step < 5000; step++) {
      const n = Math.floor(random() * links.length);
      if (random() < 0.55) {
        list.push(links[n]!);
        set.add(n);
      } else {
        list.remove(links[n]!);
        set.delete(n);
      }
      expect(list.size).toBe(set.size);
      expect(list.first?.owner).toBe(set.values().next().value);
    }
    expect(owners(list)).toEqual([...set]);
  });
});
