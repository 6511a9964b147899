import type { NodeInfo } from '../protocol/requests.js';

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
  /** Whoever holds the registration (the server's connection); opaque here. */
  owner: Owner;
}

/** A name that was registered before: remembered so its next creation differs (spec §6). */
export interface UnusedName {
  name: Buffer;
  port: number;
  fd: number;
  creation: number;
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
  private readonly unused = new Map<string, UnusedName>();
  private forgottenCeiling = 0;
  private readonly unusedCap: number;
  private readonly now: () => number;

  constructor(options: RegistryOptions) {
    this.unusedCap = options.unusedCap;
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  get size(): number {
    return this.active.size;
  }

  lookup(name: Buffer): Registration<Owner> | undefined {
    return this.active.get(nameKey(name));
  }

  register(info: NodeInfo, owner: Owner, fd: number): RegisterResult<Owner> {
    const key = nameKey(info.name);
    const holder = this.active.get(key);
    if (holder) return { ok: false, holder };
    const previous = this.unused.get(key);
    let creation: number;
    if (previous) {
      this.unused.delete(key);
      creation = bumpCreation(previous.creation);
    } else {
      this.trimUnused();
      creation = bumpCreation(Math.max(this.now(), this.forgottenCeiling));
    }
    const registration: Registration<Owner> = { ...info, key, creation, fd, owner };
    this.active.set(key, registration);
    return { ok: true, registration, reusedSlot: previous !== undefined };
  }

  /** Removes a registration if it is still the current one; the name joins the unused list. */
  unregister(registration: Registration<Owner>): boolean {
    if (this.active.get(registration.key) !== registration) return false;
    this.active.delete(registration.key);
    this.unused.set(registration.key, {
      name: registration.name,
      port: registration.port,
      fd: registration.fd,
      creation: registration.creation,
    });
    return true;
  }

  /** Current registrations, most recently registered first (the order NAMES and DUMP use). */
  newestFirst(): Registration<Owner>[] {
    return Array.from(this.active.values()).reverse();
  }

  /** Old/unused names, oldest first. */
  unusedOldestFirst(): UnusedName[] {
    return Array.from(this.unused.values());
  }

  /**
   * OTP trims the unused list lazily, one entry per registration of a new name while the list is
   * over its cap, so DUMP shows the same list as OTP's. The forgotten counter is remembered.
   */
  private trimUnused(): void {
    if (this.unused.size <= this.unusedCap) return;
    const [oldestKey, oldest] = this.unused.entries().next().value as [string, UnusedName];
    this.unused.delete(oldestKey);
    this.forgottenCeiling = Math.max(this.forgottenCeiling, oldest.creation);
  }
}
