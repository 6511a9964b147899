import type net from 'node:net';
import type { FrameReader } from '../protocol/frame-reader.js';
import type { Registration } from '../registry/registry.js';
import { Link, LinkedList, type Linked } from './linked-list.js';
import { socketFd } from './socket-fd.js';

/** Numbers for connections whose file descriptor is unknown (see Connection.id). */
let nextFallbackId = 1;

/**
 * reading: waiting for its request (idle deadline, evicted first);
 * replying: request taken, reply being prepared or written (write deadline once the kernel does
 * not take the whole reply at once; evicted after every reading connection);
 * registered: holds a registration or a failed ALIVE2 (no deadline, never evicted).
 */
export type Phase = 'reading' | 'replying' | 'registered' | 'closed';

/** "127.0.0.1:5000" / "[::1]:5000" for log lines. */
export function formatPeer(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return `?:${port}`;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** One accepted TCP connection; it carries exactly one request (spec §3). */
export class Connection implements Linked<Connection> {
  phase: Phase;
  reader?: FrameReader;
  registration?: Registration<Connection>;
  /** Name under which the connection sits in systemd's fd store, if it does. */
  storeName?: string;
  /** Wall-clock ms after which a reading or writing connection is closed. */
  deadline = 0;
  /** The reply still being written, counted against the pending-reply budget. */
  pending?: Buffer;
  /** PORT2_RESP for the registration this connection holds, once a lookup has asked for it. */
  port2Reply?: Buffer;
  /**
   * Whether the peer is on this host (spec §7), once the server has had to ask: only local-only
   * requests do, so lookups and NAMES never look at the peer's address.
   */
  localPeer?: boolean;
  /** Its place in the ConnectionTable's list of its phase: the connections before and after it. */
  prev?: Connection;
  next?: Connection;
  list?: LinkedList<Connection>;
  /** Its place among the deadlines, while it can have one (a registration never does again). */
  inTimed?: Link<Connection>;
  private peerText?: string;
  private number?: number;

  constructor(
    readonly socket: net.Socket,
    phase: Phase,
  ) {
    this.phase = phase;
  }

  /**
   * The connection's number, shown by DUMP (OTP shows the file descriptor) and in logs: its file
   * descriptor, read on first use only (registrations, log lines), so lookups never touch it.
   */
  get id(): number {
    if (this.number === undefined) {
      const fd = socketFd(this.socket);
      this.number = fd >= 0 ? fd : nextFallbackId++;
    }
    return this.number;
  }

  /** "address:port" for log lines; remembered once asked, since a closed socket forgets it. */
  get peer(): string {
    if (this.peerText === undefined) {
      const address = this.socket.remoteAddress;
      if (address === undefined) return '?';
      this.peerText = formatPeer(address, this.socket.remotePort);
    }
    return this.peerText;
  }
}

/** How often deadlines are checked: closes happen at most this late. */
const TICK_MS = 250;

/**
 * Upper bound on the bytes of replies waiting for slow readers (one shared NAMES/DUMP buffer
 * counts once however many connections are reading it). Beyond it the connection that has been
 * replying longest is dropped; the newest reply is always admitted, whatever its size.
 */
export const PENDING_REPLY_BUDGET = 64 * 1024 * 1024;

/**
 * How many of the cap's connections a registration may never take: registrations are never
 * evicted, so without such a reserve a local client holding registrations up to the cap would
 * leave no slot for anyone's lookup. A 64th of the cap, at least 1 and at most 64.
 */
export function queryReserve(cap: number): number {
  return cap < 2 ? 0 : Math.min(64, Math.max(1, Math.floor(cap / 64)));
}

export type DropReason = 'idle' | 'write-deadline' | 'reply-budget' | 'evicted';

/**
 * Connection bookkeeping: the eviction order under the connection cap, idle and write deadlines
 * on one coarse timer (not one timer per socket), and the memory taken by replies that are still
 * being written. Every operation is O(1), or O(connections actually closed).
 *
 * Nothing here holds a connection in a hash table: the phase lists are linked through the
 * connections themselves, the deadline list through a Link each (see LinkedList for what a Map
 * or Set costs here: with them, every lookup's socket outlived the next scavenge).
 */
export class ConnectionTable {
  // Each open connection is in exactly one of the three phase lists.
  /** Reading connections, oldest accepted first: the first to be evicted. */
  private readonly waiting = new LinkedList<Connection>();
  /** Replying connections, oldest first: evicted once no reading connection is left. */
  private readonly replying = new LinkedList<Connection>();
  /** Registrations (and failed ALIVE2s): never evicted, no deadline. */
  private readonly registered = new LinkedList<Connection>();
  /** Connections with a deadline, in deadline order (each deadline is now + the same timeout). */
  private readonly timed = new LinkedList<Link<Connection>>();
  private readonly pins = new Map<Buffer, number>();
  private pinnedBytes = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly timeoutMs: number,
    private readonly dropped: (conn: Connection, reason: DropReason) => void,
    private readonly budget = PENDING_REPLY_BUDGET,
  ) {}

  get size(): number {
    return this.waiting.size + this.replying.size + this.registered.size;
  }

  /** Every open connection; closing them is safe meanwhile (a socket's close comes later). */
  *all(): IterableIterator<Connection> {
    yield* this.waiting;
    yield* this.replying;
    yield* this.registered;
  }

  /** Connections that hold a registration or a failed ALIVE2: never evicted. */
  get registeredCount(): number {
    return this.registered.size;
  }

  /** Connections still reading or answering a query (registrations not counted). */
  get queries(): number {
    return this.waiting.size + this.replying.size;
  }

  /** Bytes of replies still being written (each distinct buffer once). */
  get pendingBytes(): number {
    return this.pinnedBytes;
  }

  /** A new connection waiting for its request. */
  addReading(conn: Connection): void {
    this.waiting.push(conn);
    this.arm(conn);
  }

  /** A connection that is a registration from the start (taken over from the fd store). */
  addRegistered(conn: Connection): void {
    this.registered.push(conn);
  }

  /** Data arrived on a reading connection: its idle deadline starts again. */
  touch(conn: Connection): void {
    this.untime(conn);
    this.arm(conn);
  }

  /**
   * The request is complete: no idle deadline any more. Most replies are written and the
   * connection closed before this returns to the event loop; one that waits (a delay, a queued
   * large reply, a slow reader) is evicted after every reading connection.
   */
  startReply(conn: Connection): void {
    conn.phase = 'replying';
    this.waiting.remove(conn);
    this.replying.push(conn);
    this.untime(conn);
  }

  /**
   * The kernel did not take the whole reply: the connection must take the rest before the write
   * deadline, and the buffer counts against the budget until then.
   */
  writePending(conn: Connection, reply: Buffer): void {
    conn.pending = reply;
    const count = this.pins.get(reply) ?? 0;
    this.pins.set(reply, count + 1);
    if (count === 0) this.pinnedBytes += reply.length;
    this.arm(conn);
    for (const oldest of this.replying) {
      if (this.pinnedBytes <= this.budget || oldest === conn) break;
      if (oldest.pending) this.drop(oldest, 'reply-budget');
    }
  }

  /** An ALIVE2 has been answered (startReply came first): no deadline from now on, never evicted. */
  becomeRegistered(conn: Connection): void {
    conn.phase = 'registered';
    this.replying.remove(conn);
    this.registered.push(conn);
    conn.inTimed = undefined;
  }

  remove(conn: Connection): void {
    conn.phase = 'closed';
    conn.list?.remove(conn);
    this.untime(conn);
    this.unpin(conn);
  }

  /**
   * Makes room under the connection cap: the oldest connection still without a request, else
   * the oldest one still replying. Registrations are never evicted. False if nothing could go.
   */
  evictOne(): boolean {
    const victim = this.waiting.first ?? this.replying.first;
    if (victim) this.drop(victim, 'evicted');
    return victim !== undefined;
  }

  /** Stops the deadline timer (orderly exit). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private arm(conn: Connection): void {
    conn.deadline = Date.now() + this.timeoutMs;
    this.timed.push((conn.inTimed ??= new Link(conn)));
    if (!this.timer) {
      this.timer = setInterval(() => this.expire(), TICK_MS);
      this.timer.unref();
    }
  }

  private untime(conn: Connection): void {
    if (conn.inTimed) this.timed.remove(conn.inTimed);
  }

  private expire(): void {
    const now = Date.now();
    for (const { owner: conn } of this.timed) {
      if (conn.deadline > now) return;
      this.drop(conn, conn.phase === 'reading' ? 'idle' : 'write-deadline');
    }
    if (this.timed.size === 0) this.stop();
  }

  /** The callback comes first: it still sees the connection's phase and its open socket. */
  private drop(conn: Connection, reason: DropReason): void {
    this.dropped(conn, reason);
    this.remove(conn);
    conn.socket.destroy();
  }

  private unpin(conn: Connection): void {
    const reply = conn.pending;
    if (!reply) return;
    conn.pending = undefined;
    const count = this.pins.get(reply)! - 1;
    if (count > 0) {
      this.pins.set(reply, count);
    } else {
      this.pins.delete(reply);
      this.pinnedBytes -= reply.length;
    }
  }
}
