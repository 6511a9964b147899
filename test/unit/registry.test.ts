// Registry: creation numbers (spec §6, Q10), duplicates, unregistration, NAMES/DUMP order, unused list.
import { describe, expect, it } from 'vitest';
import { prng } from '../helpers/prng.js';
import { bumpCreation, creationFor, nameKey, Registry, type Registration } from '../../src/registry/registry.js';
import type { NodeInfo } from '../../src/protocol/requests.js';
import { encodeAlive2Reply, encodeDumpReply } from '../../src/protocol/replies.js';
import { UNUSED_CAP, UNUSED_CAP_DEBUG } from '../../src/protocol/constants.js';

function info(name: string | Buffer, port = 5000, highestVersion = 6): NodeInfo {
  return {
    name: typeof name === 'string' ? Buffer.from(name, 'utf8') : name,
    port,
    nodeType: 77,
    protocol: 0,
    highestVersion,
    lowestVersion: 5,
    extra: Buffer.alloc(0),
  };
}

/** A clock the test moves by hand. */
function clock(start: number): { now: () => number; set(t: number): void; tick(d?: number): void } {
  let t = start;
  return { now: () => t, set: (v) => (t = v), tick: (d = 1) => (t += d) };
}

type Owner = string;

function register(reg: Registry<Owner>, name: string | Buffer, port = 5000, fd = 5, owner = 'conn'): Registration<Owner> {
  const r = reg.register(info(name, port), owner, fd);
  if (!r.ok) throw new Error(`register ${String(name)} refused: held by ${r.holder.name.toString()}`);
  return r.registration;
}

/** Register then drop the registration (a node that comes and goes); returns the creation it got. */
function cycle(reg: Registry<Owner>, name: string, port = 5000, fd = 5): number {
  const r = register(reg, name, port, fd);
  expect(reg.unregister(r)).toBe(true);
  return r.creation;
}


const T = 1795248376; // unix time at the start of G-A

describe('creation of a new name (spec §6 "New slot")', () => {
  it('A3: a new name gets clock + 1 (time 1795248376 -> creation 1795248377)', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    expect(register(reg, 'alpha').creation).toBe(1795248377);
  });

  it('A4: two new names in the same second get equal creations (harmless, per name)', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    expect(register(reg, 'alpha').creation).toBe(T + 1);
    expect(register(reg, 'beta').creation).toBe(T + 1);
  });

  it('follows the clock: a new name registered later gets the later clock + 1', () => {
    const c = clock(T);
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: c.now });
    register(reg, 'a');
    c.tick(100);
    expect(register(reg, 'b').creation).toBe(T + 101);
  });

  it('the clock is consulted (default clock is wall time in whole seconds)', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP });
    const before = Math.floor(Date.now() / 1000);
    const c = register(reg, 'wall').creation;
    const after = Math.floor(Date.now() / 1000);
    expect(c).toBeGreaterThanOrEqual(before + 1);
    expect(c).toBeLessThanOrEqual(after + 1);
    expect(Number.isInteger(c)).toBe(true);
  });

  it('the registration carries the node info, owner and fd', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const r = reg.register({ ...info('alpha', 5001), extra: Buffer.from('xy') }, 'owner-1', 7);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.reusedSlot).toBe(false);
    expect(r.registration).toMatchObject({ port: 5001, nodeType: 77, fd: 7, owner: 'owner-1' });
    expect(r.registration.extra.toString()).toBe('xy');
    expect(r.registration.key).toBe(nameKey(Buffer.from('alpha')));
  });
});

describe('bumpCreation / creationFor (spec §6 "Bump", "Value returned")', () => {
  it('adds one', () => {
    expect(bumpCreation(T)).toBe(T + 1);
    expect(bumpCreation(4)).toBe(5);
  });

  it('wraps at 2^32 and skips values below 4', () => {
    expect(bumpCreation(0xfffffffe)).toBe(0xffffffff);
    expect(bumpCreation(0xffffffff)).toBe(4);
    expect(bumpCreation(0)).toBe(4);
    expect(bumpCreation(1)).toBe(4);
    expect(bumpCreation(2)).toBe(4);
    expect(bumpCreation(3)).toBe(4);
  });

  it('creationFor: the counter itself for high ≥ 6, (counter % 3) + 1 otherwise (A4, A36)', () => {
    expect(creationFor(1795248377, 6)).toBe(1795248377);
    expect(creationFor(1795248377, 5)).toBe(3);
    expect(creationFor(0x6b015129, 5)).toBe(3);
    expect(creationFor(0x6b01512a, 5)).toBe(1);
    expect(creationFor(0xffffffff, 0)).toBe(1);
    expect(creationFor(0xffffffff, 0xffff)).toBe(0xffffffff);
  });

  it('a new name when the clock reads 2^32 - 1 gets 4 (wrap), never 0..3', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => 0xffffffff });
    expect(register(reg, 'wrap').creation).toBe(4);
  });

  it('re-registration across the wrap: 0xffffffff -> 4 -> 5', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => 0xfffffffe });
    expect(cycle(reg, 'w')).toBe(0xffffffff);
    expect(cycle(reg, 'w')).toBe(4);
    expect(cycle(reg, 'w')).toBe(5);
  });
});

describe('re-registration of an unused name (spec §6, A36)', () => {
  it('A36: the same name registered four times in the same second: …27, …28, then 16-bit 3, 1', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => 0x6b015126 });
    const replies: string[] = [];
    for (const high of [6, 6, 5, 5]) {
      const r = reg.register(info('cre', 5016, high), 'c', 12);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      replies.push(encodeAlive2Reply(true, creationFor(r.registration.creation, high), high).toString('hex'));
      reg.unregister(r.registration);
    }
    expect(replies).toEqual(['76006b015127', '76006b015128', '79000003', '79000001']);
  });

  it('the reused slot is bumped even when the clock has moved far ahead (OTP keeps the slot counter)', () => {
    const c = clock(T);
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: c.now });
    expect(cycle(reg, 'n')).toBe(T + 1);
    c.tick(1000);
    expect(cycle(reg, 'n')).toBe(T + 2);
  });

  it('reports reusedSlot and takes the name out of the unused list', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    cycle(reg, 'n');
    expect(reg.unusedOldestFirst().map((u) => u.name.toString())).toEqual(['n']);
    const r = reg.register(info('n'), 'c', 5);
    expect(r.ok && r.reusedSlot).toBe(true);
    expect(reg.unusedOldestFirst()).toEqual([]);
  });

  it('G-C: n1 registered 10 times in one second gets time+1 .. time+10', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP_DEBUG, now: () => 1795248426 });
    const got = Array.from({ length: 10 }, () => cycle(reg, 'n1', 6001));
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => 1795248427 + i));
  });
});

describe('duplicates and unregistration (spec §5.1 step 6, §3)', () => {
  it('A5/A6: a name currently registered is refused, and the result names the holder', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const alpha = register(reg, 'alpha', 5001, 5, 'first');
    const r = reg.register(info('alpha', 6001), 'second', 9);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.holder).toBe(alpha);
    expect(r.holder.owner).toBe('first');
    // No takeover: the first registration still answers lookups, nothing else changed.
    expect(reg.lookup(Buffer.from('alpha'))).toBe(alpha);
    expect(reg.lookup(Buffer.from('alpha'))!.port).toBe(5001);
    expect(reg.size).toBe(1);
    expect(reg.unusedOldestFirst()).toEqual([]);
  });

  it('names compare byte-exactly: "é" as c3 a9 and as e9 are different names; case matters', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    register(reg, Buffer.from([0xc3, 0xa9]));
    expect(reg.register(info(Buffer.from([0xe9])), 'c', 6).ok).toBe(true);
    expect(reg.register(info('Alpha'), 'c', 7).ok).toBe(true);
    expect(reg.register(info('alpha'), 'c', 8).ok).toBe(true);
    expect(reg.lookup(Buffer.from([0xc3, 0xa9]))).toBeDefined();
    expect(reg.lookup(Buffer.from('ALPHA'))).toBeUndefined();
    expect(nameKey(Buffer.from([0xc3, 0xa9]))).not.toBe(nameKey(Buffer.from([0xe9])));
  });

  it('the empty name is an ordinary name (Q3): registrable once, then a duplicate', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    register(reg, Buffer.alloc(0), 5044);
    expect(reg.register(info(Buffer.alloc(0)), 'c', 6).ok).toBe(false);
    expect(reg.lookup(Buffer.alloc(0))?.port).toBe(5044);
  });

  it('lookup of an unknown or unused name is undefined', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    expect(reg.lookup(Buffer.from('nope'))).toBeUndefined();
    cycle(reg, 'gone');
    expect(reg.lookup(Buffer.from('gone'))).toBeUndefined();
  });

  it('unregister moves the name to the unused list and frees it', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const r = register(reg, 'gamma', 5101, 6);
    expect(r.owner).toBe('conn');
    expect(reg.unregister(r)).toBe(true);
    // An ended registration keeps nothing of its holder (a discarded hash table may still point at it).
    expect(r.owner).toBeUndefined();
    expect(reg.size).toBe(0);
    expect(reg.unusedOldestFirst()).toEqual([{ name: Buffer.from('gamma'), port: 5101, fd: 6, creation: T + 1 }]);
    expect(reg.register(info('gamma'), 'c', 7).ok).toBe(true);
  });

  it('unregister only removes the current registration: a stale one (after re-registration) is ignored', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const first = register(reg, 'n', 5000, 5, 'old');
    expect(reg.unregister(first)).toBe(true);
    const second = register(reg, 'n', 5001, 6, 'new');
    expect(reg.unregister(first)).toBe(false);
    expect(reg.lookup(Buffer.from('n'))).toBe(second);
    expect(reg.size).toBe(1);
    expect(reg.unusedOldestFirst()).toEqual([]);
  });

  it('unregistering twice is a no-op the second time (unused list not duplicated)', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const r = register(reg, 'n');
    expect(reg.unregister(r)).toBe(true);
    expect(reg.unregister(r)).toBe(false);
    expect(reg.unusedOldestFirst().length).toBe(1);
  });

  it('a refused duplicate cannot be used to unregister the holder (Q17: only undo what this request made)', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const holder = register(reg, 'victim', 5000, 5, 'legit');
    const dup = reg.register(info('victim'), 'attacker', 9);
    expect(dup.ok).toBe(false);
    // The server only ever holds a Registration for its own successful request; a forged copy with
    // the same key must not remove the holder.
    const forged: Registration<Owner> = { ...holder, owner: 'attacker', fd: 9 };
    expect(reg.unregister(forged)).toBe(false);
    expect(reg.lookup(Buffer.from('victim'))).toBe(holder);
  });
});

describe('NAMES / DUMP order (spec §5.3, §5.4)', () => {
  it('A15: newest first (beta registered after alpha comes first)', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    register(reg, 'alpha', 5001);
    register(reg, 'beta', 5002);
    expect(reg.newestFirst().map((r) => r.name.toString())).toEqual(['beta', 'alpha']);
  });

  it('a re-registered name moves to the front', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const a = register(reg, 'a');
    register(reg, 'b');
    register(reg, 'c');
    reg.unregister(a);
    register(reg, 'a');
    expect(reg.newestFirst().map((r) => r.name.toString())).toEqual(['a', 'c', 'b']);
  });

  it('unused list is oldest first, in order of unregistration (A37: <>, trail, chatty)', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const empty = register(reg, Buffer.alloc(0), 5044, 8);
    const trail = register(reg, 'trail', 5014, 9);
    const chatty = register(reg, 'chatty', 5015, 12);
    reg.unregister(empty);
    reg.unregister(trail);
    reg.unregister(chatty);
    expect(reg.unusedOldestFirst().map((u) => [u.name.toString(), u.port, u.fd])).toEqual([
      ['', 5044, 8],
      ['trail', 5014, 9],
      ['chatty', 5015, 12],
    ]);
  });

  it('B7: DUMP of active delta and unused gamma, byte-exact', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const gamma = register(reg, 'gamma', 5101, 6);
    reg.unregister(gamma);
    register(reg, 'delta', 5102, 5);
    expect(encodeDumpReply(38369, reg.newestFirst(), reg.unusedOldestFirst()).toString('latin1')).toBe(
      '\x00\x00\x95\xe1active name     <delta> at port 5102, fd = 5\n\x00old/unused name <gamma>, port = 5101, fd = 6 \n\x00',
    );
  });

  it('the unused entry keeps its last port and fd', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    cycle(reg, 'n', 1111, 5);
    cycle(reg, 'n', 2222, 9);
    expect(reg.unusedOldestFirst()).toEqual([{ name: Buffer.from('n'), port: 2222, fd: 9, creation: T + 2 }]);
  });
});

describe('G-C: unused list capped lazily at 5 (debug mode), with the Q10 fix', () => {
  const time = 1795248426;

  function gc(): { reg: Registry<Owner>; n7: number } {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP_DEBUG, now: () => time });
    for (let i = 0; i < 10; i++) cycle(reg, 'n1', 6001, 5);
    for (let i = 2; i <= 6; i++) expect(cycle(reg, `n${i}`, 6000 + i, 5)).toBe(time + 1);
    // Six unused entries now (n1..n6): OTP trims only when a new name registers.
    expect(reg.unusedOldestFirst().map((u) => u.name.toString())).toEqual(['n1', 'n2', 'n3', 'n4', 'n5', 'n6']);
    const n7 = cycle(reg, 'n7', 6007, 5);
    return { reg, n7 };
  }

  it('after n7 the unused list is n2..n7 (oldest n1 trimmed), and DUMP matches OTP byte for byte', () => {
    const { reg } = gc();
    expect(reg.size).toBe(0);
    expect(encodeDumpReply(38369, reg.newestFirst(), reg.unusedOldestFirst()).toString('latin1')).toBe(
      '\x00\x00\x95\xe1old/unused name <n2>, port = 6002, fd = 5 \n\x00old/unused name <n3>, port = 6003, fd = 5 \n\x00old/unused name <n4>, port = 6004, fd = 5 \n\x00old/unused name <n5>, port = 6005, fd = 5 \n\x00old/unused name <n6>, port = 6006, fd = 5 \n\x00old/unused name <n7>, port = 6007, fd = 5 \n\x00',
    );
  });

  it('n7 gets a creation above every forgotten counter (OTP gave it n1\'s time+10; we give more than that)', () => {
    const { n7 } = gc();
    expect(n7).toBeGreaterThan(time + 10);
  });

  it('Q10: n1 registering again is not handed any creation it held before (OTP gave it time+1 again)', () => {
    const { reg } = gc();
    const r = register(reg, 'n1', 6001, 5);
    const n1History = Array.from({ length: 10 }, (_, i) => time + 1 + i);
    expect(n1History).not.toContain(r.creation);
    expect(r.creation).toBeGreaterThan(time + 10);
    // The list trimming still follows OTP: n2 was the oldest and is gone, n1 is active.
    expect(reg.unusedOldestFirst().map((u) => u.name.toString())).toEqual(['n3', 'n4', 'n5', 'n6', 'n7']);
    expect(reg.newestFirst().map((x) => x.name.toString())).toEqual(['n1']);
  });

  it('the list is not trimmed while it holds exactly the cap (5 entries) or when a listed name re-registers', () => {
    const reg = new Registry<Owner>({ unusedCap: 5, now: () => time });
    for (let i = 1; i <= 5; i++) cycle(reg, `m${i}`);
    register(reg, 'm6'); // 5 entries: not over the cap, nothing trimmed
    expect(reg.unusedOldestFirst().length).toBe(5);
    const again = register(reg, 'm1'); // reuses its own slot, trims nothing
    expect(again.creation).toBe(time + 2);
    expect(reg.unusedOldestFirst().map((u) => u.name.toString())).toEqual(['m2', 'm3', 'm4', 'm5']);
  });

  it('the default cap is 1000 (1001 unused entries before a new name trims one)', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => time });
    for (let i = 0; i < 1001; i++) cycle(reg, `x${i}`);
    expect(reg.unusedOldestFirst().length).toBe(1001);
    register(reg, 'fresh');
    expect(reg.unusedOldestFirst().length).toBe(1000);
    expect(reg.unusedOldestFirst()[0]!.name.toString()).toBe('x1');
  });
});

describe('the unused list against a model, through many trims and re-registrations', () => {
  it('stays oldest first and capped lazily like a plain list, whatever the order of names', () => {
    for (const cap of [UNUSED_CAP_DEBUG, 50]) {
      const reg = new Registry<Owner>({ unusedCap: cap, now: () => 1795248426 });
      const model: string[] = [];
      const random = prng(cap);
      let fresh = 0;
      for (let op = 0; op < 20_000; op++) {
        const reuse = model.length > 0 && random() < 0.3;
        const name = reuse ? model[Math.floor(random() * model.length)]! : `node${fresh++}`;
        if (reuse) model.splice(model.indexOf(name), 1);
        else if (model.length > cap) model.shift();
        cycle(reg, name);
        model.push(name);
        if (op % 97 === 0) expect(reg.unusedOldestFirst().map((u) => u.name.toString())).toEqual(model);
      }
      expect(reg.unusedOldestFirst().map((u) => u.name.toString())).toEqual(model);
    }
  });
});

describe('Q10 property: no name is ever handed a creation it held before', () => {
  function run(seed: number, unusedCap: number, clockMode: 'frozen' | 'slow' | 'jittery', steps: number): void {
    const rand = prng(seed);
    // A small set of recurring names plus, now and then, a brand-new one: new names are what make
    // the unused list overflow and get trimmed, so recurring names get forgotten and come back.
    const names = Array.from({ length: unusedCap + 4 }, (_, i) => `n${i}`);
    let fresh = 0;
    let forgottenReturns = 0;
    let t = 1_000_000;
    const reg = new Registry<Owner>({ unusedCap, now: () => t });
    const history = new Map<string, Set<number>>();
    const live = new Map<string, Registration<Owner>>();
    for (let step = 0; step < steps; step++) {
      if (clockMode === 'slow' && rand() < 0.05) t += 1;
      if (clockMode === 'jittery') t += Math.floor(rand() * 3) - 1; // also goes backwards
      const name = rand() < 0.1 ? `fresh${fresh++}` : names[Math.floor(rand() * names.length)]!;
      const held = live.get(name);
      if (held && rand() < 0.6) {
        expect(reg.unregister(held)).toBe(true);
        live.delete(name);
        continue;
      }
      const r = reg.register(info(name), 'c', 5);
      if (held) {
        expect(r.ok, `${name} is registered, must be refused`).toBe(false);
        continue;
      }
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      const c = r.registration.creation;
      expect(c).toBeGreaterThanOrEqual(4);
      expect(c).toBeLessThanOrEqual(0xffffffff);
      const seen = history.get(name) ?? new Set<number>();
      if (seen.size > 0 && !r.reusedSlot) forgottenReturns++;
      expect(seen.has(c), `seed ${seed} step ${step}: ${name} got ${c} again (had ${[...seen].join(',')})`).toBe(false);
      seen.add(c);
      history.set(name, seen);
      live.set(name, r.registration);
    }
    // Sanity: the run exercised re-registrations and trimming, or it proves little.
    const total = [...history.values()].reduce((n, s) => n + s.size, 0);
    expect(total).toBeGreaterThan(steps / 5);
    expect(forgottenReturns, 'names that came back after being trimmed from the unused list').toBeGreaterThan(5);
  }

  for (const unusedCap of [0, 1, 2, 5]) {
    for (const clockMode of ['frozen', 'slow', 'jittery'] as const) {
      it(`unusedCap ${unusedCap}, ${clockMode} clock, 5 seeds × 2000 steps`, () => {
        for (let seed = 1; seed <= 5; seed++) run(seed * 7919 + unusedCap, unusedCap, clockMode, 2000);
      });
    }
  }

  it('the deterministic OTP-bug pattern: cap 1, frozen clock, names taking over each other\'s forgotten slots', () => {
    const reg = new Registry<Owner>({ unusedCap: 1, now: () => 500 });
    const seen = new Map<string, number[]>();
    const note = (n: string, c: number) => seen.set(n, [...(seen.get(n) ?? []), c]);
    for (let round = 0; round < 20; round++) {
      for (const n of ['p', 'q', 'r']) note(n, cycle(reg, n));
    }
    for (const [n, list] of seen) expect(new Set(list).size, `${n}: ${list.join(',')}`).toBe(list.length);
  });
});

describe('provisional entries restored from a snapshot (spec §18; epmd-ng only)', () => {
  const expires = Date.now() + 30_000;

  it('answer lookups (lookupProvisional) but are not live registrations: size 0 so KILL is allowed', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const p = reg.addProvisional(info('b', 43219), T + 5, expires);
    expect(p).toBeDefined();
    expect(reg.size).toBe(0);
    expect(reg.lookup(Buffer.from('b'))).toBeUndefined();
    expect(reg.lookupProvisional(Buffer.from('b'))?.port).toBe(43219);
    expect(reg.newestFirst()).toEqual([]);
    expect(reg.provisionalNewestFirst().map((e) => e.name.toString())).toEqual(['b']);
  });

  it('an ALIVE2 for the same name replaces the provisional entry (no duplicate refusal) and continues its counter', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    reg.addProvisional(info('b', 43219), T + 5, expires);
    const r = reg.register(info('b', 43219), 'node', 5);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.registration.creation).toBe(T + 6);
    expect(reg.lookupProvisional(Buffer.from('b'))).toBeUndefined();
    expect(reg.lookup(Buffer.from('b'))).toBe(r.registration);
    expect(reg.size).toBe(1);
  });

  it('cannot shadow a live registration', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    register(reg, 'b');
    expect(reg.addProvisional(info('b', 1), T + 100, expires)).toBeUndefined();
    expect(reg.provisionalNewestFirst()).toEqual([]);
  });

  it('dropping one moves the name to the unused list (fd -1) so its counter is kept; a stale drop is ignored', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    const p = reg.addProvisional(info('b', 7), T + 5, expires)!;
    expect(reg.dropProvisional(p)).toBe(true);
    expect(reg.dropProvisional(p)).toBe(false);
    expect(reg.lookup(Buffer.from('b'))).toBeUndefined();
    expect(reg.lookupProvisional(Buffer.from('b'))).toBeUndefined();
    expect(reg.unusedOldestFirst()).toEqual([{ name: Buffer.from('b'), port: 7, fd: -1, creation: T + 5 }]);
    expect(cycle(reg, 'b')).toBe(T + 6);
  });
});

describe('restoreCounters: creations keep increasing across restarts (spec §18 "always safe to persist", Q10)', () => {
  it('a restored unused name continues from its last counter, even when the clock is behind', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    reg.restoreCounters([{ name: Buffer.from('n'), port: 1, creation: T + 500 }], 0);
    expect(cycle(reg, 'n')).toBe(T + 501);
  });

  it('a new name starts above the restored ceiling of forgotten counters', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    reg.restoreCounters([], T + 1000);
    expect(reg.creationCeiling).toBe(T + 1000);
    expect(register(reg, 'fresh').creation).toBe(T + 1001);
  });

  it('the ceiling never goes down, and the exported ceiling reflects what trimming forgot', () => {
    const reg = new Registry<Owner>({ unusedCap: 0, now: () => T });
    cycle(reg, 'a'); // unused: a
    register(reg, 'b'); // trims a (counter T+1)
    expect(reg.creationCeiling).toBe(T + 1);
    reg.restoreCounters([], 5);
    expect(reg.creationCeiling).toBe(T + 1);
  });

  it('restoring does not override a live or provisional entry of the same name', () => {
    const reg = new Registry<Owner>({ unusedCap: UNUSED_CAP, now: () => T });
    register(reg, 'live');
    reg.addProvisional(info('prov'), T + 3, Date.now() + 30_000);
    reg.restoreCounters(
      [
        { name: Buffer.from('live'), port: 1, creation: 9 },
        { name: Buffer.from('prov'), port: 1, creation: 9 },
      ],
      0,
    );
    expect(reg.unusedOldestFirst()).toEqual([]);
  });
});
