/** What a LinkedList needs of its members: their links, kept in the members themselves. */
export interface Linked<T extends Linked<T>> {
  prev?: T;
  next?: T;
  list?: LinkedList<T>;
}

/** A member's place in a second list, for members whose own links serve a first one. */
export class Link<T> implements Linked<Link<T>> {
  prev?: Link<T>;
  next?: Link<T>;
  list?: LinkedList<Link<T>>;

  constructor(readonly owner: T) {}
}

/**
 * An insertion-ordered list of short-lived members, linked through the members themselves.
 *
 * Why not a Set: a Set whose members come and go rebuilds its hash table every few insertions,
 * and the table it leaves behind, once in V8's old generation, still points at the members it
 * held. A scavenge keeps whatever an old-generation object points at, so every member caught in
 * a discarded table (a connection with its whole socket) survives and is promoted, and waits for
 * the next full collection. Unlinking here clears every pointer at once.
 */
export class LinkedList<T extends Linked<T>> {
  private head?: T;
  private tail?: T;
  size = 0;

  /** Appends `member`; one already in this list keeps its place (like Set.add). */
  push(member: T): void {
    if (member.list === this) return;
    member.list = this;
    member.prev = this.tail;
    if (this.tail) this.tail.next = member;
    else this.head = member;
    this.tail = member;
    this.size++;
  }

  /** Takes `member` out if it is in this list. */
  remove(member: T): void {
    if (member.list !== this) return;
    if (member.prev) member.prev.next = member.next;
    else this.head = member.next;
    if (member.next) member.next.prev = member.prev;
    else this.tail = member.prev;
    member.prev = member.next = member.list = undefined;
    this.size--;
  }

  /** The oldest member. */
  get first(): T | undefined {
    return this.head;
  }

  /** Oldest first; the member just visited may be removed meanwhile, others may not. */
  *[Symbol.iterator](): IterableIterator<T> {
    let member = this.head;
    while (member) {
      const next = member.next;
      yield member;
      member = next;
    }
  }
}
