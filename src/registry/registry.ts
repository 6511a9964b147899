import type { NodeInfo } from '../protocol/requests.js';

/**
 * The creation of an entry taken over from another epmd, which does not tell creations (NAMES and
 * PORT2_RESP carry none). Never a real one: OTP 23+ nodes get 32-bit creations above 3, older
 * ones 1 to 3.
 */
export const UNKNOWN_CREATION = 0;

/** Registry key for a node name: its bytes one-to-one as a string, so comparison is byte-exact. */
export function nameKey(name: Buffer): string {
  return name.toString('latin1');
}

export interface Registration<Owner> extends NodeInfo {
  key: string;
  /** The slot's 32-bit creation counter; replies derive the creation from it (see creationFor). */
  creation: number;
  /** Connection number shown by DUMP. */
  fd: number;
  /**
   * Whoever holds the registration (the server's connection); opaque here. Cleared when the
   * registration ends: an ended registration can stay referenced for a while from a hash table
   * V8 has replaced but not yet collected, and must not keep its connection alive with it.
   */
  owner: Owner;
}

/** What is remembered of a name that was registered before, so its next creation differs (spec §6). */
interface UnusedSlot {
  port: number;
  fd: number;
  creation: number;
}

/** A name that was registered before, with what is remembered of it. */
export interface UnusedName extends UnusedSlot {
  name: Buffer;
}

/**
 * A registration restored from a snapshot without its connection (spec §18): it answers lookups
 * and NAMES until its node registers again (which replaces it at once), a probe finds the node
 * gone, or it expires. It never blocks a live registration and does not count for KILL.
 */
export interface ProvisionalEntry extends NodeInfo {
  key: string;
  creation: number;
  /** Wall-clock milliseconds after which the entry is dropped unless its node registered again. */
  expiresAt: number;
}

export type RegisterResult<Owner> =
  | { ok: true; registration: Registration<Owner>; reusedSlot: boolean }
  | { ok: false; holder: Registration<Owner> };

export interface RegistryOptions {
  /** How many old/unused names to remember before recycling the oldest (OTP: 1000, 5 in debug mode). */
  unusedCap: number;
  /** Wall clock in whole seconds; new names start their creation counter from it. */
  now?: () => number;
}

/** Creation counter step: 32-bit wrap-around, and values below 4 are skipped (OTP's rule). */
export function bumpCreation(counter: number): number {
  const next = (counter + 1) >>> 0;
  return next < 4 ? 4 : next;
}

/** The creation a reply carries: the counter itself, or 1..3 for nodes older than version 6. */
export function creationFor(counter: number, highestVersion: number): number {
  return highestVersion >= 6 ? counter : (counter % 3) + 1;
}

/**
 * Who is registered, and the creation numbers each name was handed. No I/O.
 *
 * Creation numbering follows OTP except for its recycling defect (spec Q10): OTP gives a new name
 * the counter of the oldest forgotten one, so a name can get a creation it held before. Here a
 * new name starts above every counter ever forgotten, and above the clock, so no name is ever
 * handed a creation it held before while the unused list stays bounded.
 */
export class Registry<Owner> {
  private readonly active = new Map<string, Registration<Owner>>();
  /** Old names by key (the name's bytes): only numbers are kept, since a name may wait here long. */
  private readonly unused = new Map<string, UnusedSlot>();
  /**
   * Walks the unused list oldest first, across trims: a Map keeps the entries deleted from its
   * front as holes until it is rebuilt, so finding the oldest anew on every trim would step over
   * hundreds of them (a live iterator skips each once, and sees entries added later).
   */
  private oldestUnused = this.unused.entries();
  private readonly provisional = new Map<string, ProvisionalEntry>();
  private forgottenCeiling = 0;
  private changes = 0;
  private readonly unusedCap: number;
  private readonly now: () => number;

  constructor(options: RegistryOptions) {
    this.unusedCap = options.unusedCap;
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Live registrations (provisional entries are not counted: KILL treats them as absent). */
  get size(): number {
    return this.active.size;
  }

  /**
   * Counts every change of what NAMES or DUMP would show, so that encoded replies can be kept
   * until the next change.
   */
  get generation(): number {
    return this.changes;
  }

  get provisionalCount(): number {
    return this.provisional.size;
  }

  get unusedCount(): number {
    return this.unused.size;
  }

  lookup(name: Buffer): Registration<Owner> | undefined {
    return this.active.get(nameKey(name));
  }

  register(info: NodeInfo, owner: Owner, fd: number): RegisterResult<Owner> {
    const key = nameKey(info.name);
    const holder = this.active.get(key);
    if (holder) return { ok: false, holder };
    const previous = this.provisional.get(key) ?? this.unused.get(key);
    let creation: number;
    if (previous) {
      // The node is back (or its name reused): its slot continues with the next creation.
      this.provisional.delete(key);
      this.unused.delete(key);
      creation = bumpCreation(previous.creation);
    } else {
      this.trimUnused();
      creation = bumpCreation(Math.max(this.now(), this.forgottenCeiling));
    }
    const registration = makeRegistration(info, key, creation, fd, owner);
    this.active.set(key, registration);
    this.changes++;
    return { ok: true, registration, reusedSlot: previous !== undefined };
  }

  /**
   * Removes a registration if it is still the current one; the name joins the unused list and
   * the registration lets go of its owner (read it before, if needed).
   */
  unregister(registration: Registration<Owner>): boolean {
    if (this.active.get(registration.key) !== registration) return false;
    this.active.delete(registration.key);
    (registration as { owner?: Owner }).owner = undefined;
    this.changes++;
    this.unused.set(registration.key, { port: registration.port, fd: registration.fd, creation: registration.creation });
    return true;
  }

  /**
   * Takes over a registration that outlived a restart together with its connection (fd store):
   * same creation, no new counter.
   */
  adopt(info: NodeInfo, creation: number, owner: Owner, fd: number): Registration<Owner> | undefined {
    const key = nameKey(info.name);
    if (this.active.has(key)) return undefined;
    this.provisional.delete(key);
    this.unused.delete(key);
    const registration = makeRegistration(info, key, creation, fd, owner);
    this.active.set(key, registration);
    this.changes++;
    return registration;
  }

  /** Restores a registration whose connection is gone as provisional, unless its name is live. */
  addProvisional(info: NodeInfo, creation: number, expiresAt: number): ProvisionalEntry | undefined {
    const key = nameKey(info.name);
    if (this.active.has(key)) return undefined;
    this.unused.delete(key);
    const entry: ProvisionalEntry = { ...info, key, creation, expiresAt };
    this.provisional.set(key, entry);
    this.changes++;
    return entry;
  }

  /** Drops a provisional entry (probe failed, expired, STOP); it is remembered like any old name. */
  dropProvisional(entry: ProvisionalEntry): boolean {
    if (this.provisional.get(entry.key) !== entry) return false;
    this.provisional.delete(entry.key);
    this.unused.set(entry.key, { port: entry.port, fd: -1, creation: entry.creation });
    this.changes++;
    return true;
  }

  lookupProvisional(name: Buffer): ProvisionalEntry | undefined {
    return this.provisional.get(nameKey(name));
  }

  /** Current registrations, most recently registered first (the order NAMES and DUMP use). */
  newestFirst(): Registration<Owner>[] {
    return Array.from(this.active.values()).reverse();
  }

  /** Provisional entries, most recently registered first; they are older than any live one. */
  provisionalNewestFirst(): ProvisionalEntry[] {
    return Array.from(this.provisional.values()).reverse();
  }

  /** Old/unused names, oldest first. */
  unusedOldestFirst(): UnusedName[] {
    return Array.from(this.unused, ([key, slot]) => ({ name: Buffer.from(key, 'latin1'), ...slot }));
  }

  /** The highest creation counter the unused list has forgotten (persisted with the snapshot). */
  get creationCeiling(): number {
    return this.forgottenCeiling;
  }

  /**
   * Brings back what a snapshot remembers of names that are not registered: their last counters
   * (so creations keep increasing across restarts) and the ceiling of forgotten ones.
   */
  restoreCounters(unused: readonly { name: Buffer; port: number; creation: number }[], ceiling: number): void {
    this.forgottenCeiling = Math.max(this.forgottenCeiling, ceiling);
    this.changes++;
    for (const u of unused) {
      const key = nameKey(u.name);
      if (this.active.has(key) || this.provisional.has(key)) continue;
      this.unused.set(key, { port: u.port, fd: -1, creation: u.creation });
    }
  }

  /**
   * OTP trims the unused list lazily, one entry per registration of a new name while the list is
   * over its cap, so DUMP shows the same list as OTP's. The forgotten counter is remembered.
   */
  private trimUnused(): void {
    if (this.unused.size <= this.unusedCap) return;
    let next = this.oldestUnused.next();
    // Only once exhausted does an iterator miss later entries; start a new one then.
    if (next.done) next = (this.oldestUnused = this.unused.entries()).next();
    const [oldestKey, oldest] = next.value as [string, UnusedSlot];
    this.unused.delete(oldestKey);
    this.forgottenCeiling = Math.max(this.forgottenCeiling, oldest.creation);
  }
}

/**
 * One object of a fixed shape per registration, copying only the fields it needs (the request
 * object it came from, and its type tag, are not kept alive).
 */
function makeRegistration<Owner>(info: NodeInfo, key: string, creation: number, fd: number, owner: Owner): Registration<Owner> {
  return {
    name: info.name,
    port: info.port,
    nodeType: info.nodeType,
    protocol: info.protocol,
    highestVersion: info.highestVersion,
    lowestVersion: info.lowestVersion,
    extra: info.extra,
    key,
    creation,
    fd,
    owner,
  };
}
