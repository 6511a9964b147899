/** A member's place in one LinkedList; each member owns one Link per list it can be in. */
export class Link<T> {
  prev?: Link<T>;
  next?: Link<T>;
  list?: LinkedList<T>;

  constructor(readonly owner: T) {}
}

/**
 * An insertion-ordered list of short-lived members, linked through Links the members carry.
 *
 * Why not a Set: a Set whose members come and go rebuilds its hash table every few insertions,
 * and the table it leaves behind, once in V8's old generation, still points at the members it
 * held. A scavenge keeps whatever an old-generation object points at, so every member caught in
 * a discarded table (a connection with its whole socket) survives and is promoted, and waits for
 * the next full collection. Unlinking here clears every pointer at once.
 */
export class LinkedList<T> {
  private head?: Link<T>;
  private tail?: Link<T>;
  size = 0;

  /** Appends `link`; a link already in this list keeps its place (like Set.add). */
  push(link: Link<T>): void {
    if (link.list === this) return;
    link.list = this;
    link.prev = this.tail;
    if (this.tail) this.tail.next = link;
    else this.head = link;
    this.tail = link;
    this.size++;
  }

  /** Takes `link` out if it is in this list. */
  remove(link: Link<T>): void {
    if (link.list !== this) return;
    if (link.prev) link.prev.next = link.next;
    else this.head = link.next;
    if (link.next) link.next.prev = link.prev;
    else this.tail = link.prev;
    link.prev = link.next = link.list = undefined;
    this.size--;
  }

  /** The oldest member. */
  get first(): T | undefined {
    return this.head?.owner;
  }

  /** Oldest first; the member just visited may be removed meanwhile, others may not. */
  *[Symbol.iterator](): IterableIterator<T> {
    let link = this.head;
    while (link) {
      const next = link.next;
      yield link.owner;
      link = next;
    }
  }
}
