import type net from 'node:net';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { OTP_FIRST_READ } from '../protocol/constants.js';
import { FrameReader, wholeFrame } from '../protocol/frame-reader.js';
import {
  decodeRequest,
  isLocalOnly,
  requestTypeOf,
  type Alive2Request,
  type Request,
} from '../protocol/requests.js';
import {
  encodeAlive2Reply,
  encodeDumpReply,
  encodeNamesReply,
  encodePort2Reply,
  encodeStatusReply,
  KILL_OK,
  KILL_REFUSED,
  STOP_DONE,
  STOP_UNKNOWN,
} from '../protocol/replies.js';
import { keepable } from '../protocol/own-copy.js';
import { creationFor, type ProvisionalEntry, type Registration, type Registry } from '../registry/registry.js';
import type { Logger } from '../log/logger.js';
import type { NodeInfo } from '../protocol/requests.js';
import { RateLimiter } from '../log/rate-limit.js';
import { ServerCounters, type Violation } from '../status/counters.js';
import { Connection, ConnectionTable, formatPeer, queryReserve, type DropReason } from './connections.js';
import { isLocalPeer, isLocalSocket, isOwnAddress, type PeerCheck } from './locality.js';
import { socketFd } from './socket-fd.js';

export interface ServerSettings {
  /** Port reported in NAMES and DUMP replies (spec §5.3). */
  reportedPort: number;
  /** Seconds; connections that are not registrations close after this + 1 s without data. */
  packetTimeout: number;
  delayAcceptSeconds: number;
  delayWriteSeconds: number;
  relaxedCommandCheck: boolean;
  /** Most simultaneous connections, registrations included. */
  maxConnections: number;
  /** Decides locality from raw addresses (the addon); without it, or when it cannot, Node's address strings do. */
  peerCheck?: PeerCheck;
}

export type UnregisterReason = 'closed' | 'data' | 'stopped' | 'reply-failed';

/** What the daemon around the server wants to hear about (status, snapshots, fd store, exit). */
export interface ServerHooks {
  /** A registration is in place and its reply has been written. */
  registered?(registration: Registration<Connection>): void;
  /** A registration has ended; `conn` held it (the registration no longer names its owner). */
  unregistered?(registration: Registration<Connection>, conn: Connection, reason: UnregisterReason): void;
  /** A provisional entry was removed by STOP_REQ. */
  provisionalDropped?(entry: ProvisionalEntry, reason: 'stopped'): void;
  /** A KILL_REQ was accepted; the reply has been sent. */
  killRequested?(): void;
  /** The document STATUS_REQ answers with (epmd-ng status). */
  status?(): object;
}

export { Connection };

/** Numeric log levels (LEVEL_VALUES), to skip building log records nobody will see on the hot path. */
const INFO = 30;
const DEBUG = 20;
const TRACE = 10;

/** Replies from this size on are written from a queue, a bounded amount per event-loop turn. */
const LARGE_REPLY = 64 * 1024;
const LARGE_REPLY_BYTES_PER_TURN = 256 * 1024;

/** An encoded NAMES or DUMP reply, valid while the registry is at `generation`. */
interface SharedReply {
  generation: number;
  bytes: Buffer;
}

/**
 * The EPMD protocol over TCP: accepts connections from any number of listening sockets, reads one
 * request per connection, answers it from the registry and enforces the limits. It never exits
 * the process itself; KILL is reported through hooks.killRequested. Connection life cycles
 * (deadlines, eviction, pending replies) are kept by the ConnectionTable.
 */
export class EpmdServer {
  private readonly table: ConnectionTable;
  private readonly violations = new RateLimiter<Violation>(20, 10_000);
  readonly counters = new ServerCounters();
  private names?: SharedReply;
  private dumps?: SharedReply;
  private readonly largeReplies: { conn: Connection; bytes: Buffer; written?: () => void }[] = [];
  /** Shared by every socket: an error is followed by its close, which is what ends a connection. */
  private readonly onError: (this: net.Socket, err: Error) => void;

  constructor(
    private readonly settings: ServerSettings,
    readonly registry: Registry<Connection>,
    private readonly log: Logger,
    private readonly hooks: ServerHooks = {},
  ) {
    this.table = new ConnectionTable((settings.packetTimeout + 1) * 1000, (conn, reason) => this.dropped(conn, reason));
    this.onError = function (err) {
      // The connection's number (Connection.id) is its descriptor, which the socket still has here.
      if (log.levelVal <= TRACE) log.trace({ conn: socketFd(this), err: err.message }, 'socket error');
    };
  }

  get connectionCount(): number {
    return this.table.size;
  }

  /** Bytes of replies still waiting for slow readers. */
  get pendingReplyBytes(): number {
    return this.table.pendingBytes;
  }

  get maxConnections(): number {
    return this.settings.maxConnections;
  }

  /** Connections that may hold registrations (or failed ALIVE2s); the rest of the cap serves queries. */
  get registrationLimit(): number {
    return this.settings.maxConnections - queryReserve(this.settings.maxConnections);
  }

  get reportedPort(): number {
    return this.settings.reportedPort;
  }

  /** New cap for later connections (reload); open connections are not closed to meet it. */
  setMaxConnections(limit: number): void {
    this.settings.maxConnections = limit;
  }

  /**
   * Serves connections arriving on `listener` (any number of listeners may be attached). With
   * checkPeers (a this-host-only listener), a connection from another host is closed before
   * anything is read: the socket filter normally drops such peers in the kernel, but connections
   * that queued before it was attached (socket activation) or without the addon still arrive here.
   */
  attach(listener: net.Server, options: { checkPeers?: boolean } = {}): void {
    listener.on('connection', options.checkPeers ? (socket: net.Socket) => this.acceptFromThisHost(socket) : (socket: net.Socket) => this.accept(socket));
    // Accept failures (EMFILE and the like) must never stop the daemon (spec Q5): log and go on.
    listener.on('error', (err: NodeJS.ErrnoException) => this.violation('accept', { err: err.message }, 'accept failed'));
  }

  /**
   * Resolves once no connection is still reading or answering a query, or after `ms`: an orderly
   * stop under systemd lets the queries it already accepted finish, since exiting would close
   * them unanswered (new ones wait in the socket's backlog for the next process).
   */
  async drainQueries(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.table.queries > 0 && Date.now() < deadline) await sleep(5);
  }

  /** Closes every connection, registrations included (KILL, orderly exit). */
  closeAll(): void {
    this.table.stop();
    for (const conn of this.table.all()) conn.socket.destroy();
  }

  private acceptFromThisHost(socket: net.Socket): void {
    const peer = socket.remoteAddress;
    if (isLocalPeer(peer, () => socket.localAddress) || (peer !== undefined && isOwnAddress(peer, interfaceAddresses()))) return this.accept(socket);
    this.violation('remote', { peer: formatPeer(peer, socket.remotePort), address: socket.localAddress }, 'connection from another host closed: this host only');
    socket.destroy();
  }

  private accept(socket: net.Socket): void {
    this.counters.accepted++;
    if (this.table.size >= this.settings.maxConnections && !this.table.evictOne()) {
      this.counters.refused++;
      this.violation('overload', { limit: this.settings.maxConnections }, 'connection limit reached, refusing a connection');
      socket.destroy();
      return;
    }
    const conn = this.track(socket, 'reading');
    this.table.addReading(conn);
    if (this.settings.delayAcceptSeconds > 0) {
      socket.pause();
      setTimeout(() => socket.resume(), this.settings.delayAcceptSeconds * 1000);
    }
  }

  /**
   * Takes over a registration connection that outlived the previous process (fd store), with the
   * registration it carried and its creation. Returns false if the name is taken meanwhile.
   */
  adopt(socket: net.Socket, node: NodeInfo, creation: number, storeName: string): Registration<Connection> | undefined {
    const conn = this.track(socket, 'registered');
    conn.localPeer = true;
    conn.storeName = storeName;
    this.table.addRegistered(conn);
    const registration = this.registry.adopt(node, creation, conn, conn.id);
    if (!registration) {
      socket.destroy();
      return undefined;
    }
    conn.registration = registration;
    this.log.info(
      { event: 'adopt', node: displayName(node.name), port: node.port, creation, peer: conn.peer },
      'node registration taken over from the previous process',
    );
    return registration;
  }

  private track(socket: net.Socket, phase: 'reading' | 'registered'): Connection {
    const conn = new Connection(socket, phase);
    if (this.log.levelVal <= TRACE) this.log.trace({ peer: conn.peer, conn: conn.id }, 'connection opened');
    socket.on('error', this.onError);
    // Listeners of its own, which know their connection: sockets carry nothing of ours (a
    // property would give every net.Socket a second hidden class, which slows Node's own socket
    // code down), and looking the connection up in a table costs more than these closures.
    socket.on('close', () => this.closed(conn));
    socket.on('end', () => this.peerEnded(conn));
    socket.on('data', (chunk: Buffer) => this.received(conn, chunk));
    return conn;
  }

  /**
   * The peer closed its side. Sockets are half-open (no automatic shutdown in reply): a reply
   * being written is finished first and closes the connection itself; any other connection is
   * over, and closing it at once spares the shutdown a half-close would send first, which is
   * what OTP does too. A registration ends here, not at the socket's close a loop turn later: a
   * node that closes its connection and registers again at once must find its name free, and its
   * new ALIVE2 may be read in the same turn as the end of the old connection.
   */
  private peerEnded(conn: Connection): void {
    if (conn.phase !== 'reading' && conn.phase !== 'registered') return;
    this.unregister(conn, 'closed');
    conn.socket.destroy();
  }

  /** The table is about to close a connection: idle, too slow a reader, or evicted under the cap. */
  private dropped(conn: Connection, reason: DropReason): void {
    if (reason === 'idle') {
      if (this.log.levelVal <= DEBUG) this.log.debug({ peer: conn.peer, received: conn.reader?.received ?? 0 }, 'idle connection closed');
      return;
    }
    if (reason === 'evicted') {
      this.counters.evictions++;
      this.violation('overload', { peer: conn.peer, phase: conn.phase }, 'connection limit reached, evicting the oldest connection without a registration');
      return;
    }
    const message = reason === 'write-deadline' ? 'reply not taken within the packet timeout, connection closed' : 'too many bytes of replies waiting for slow readers, dropping the oldest';
    this.violation('slow-reader', { peer: conn.peer, bytes: conn.pending?.length }, message);
  }

  /** The socket has closed; a connection the server closed itself is out of the table already. */
  private closed(conn: Connection): void {
    if (conn.phase === 'closed') return;
    if (conn.phase === 'reading' && conn.reader && conn.reader.received > 0) {
      this.violation('framing', { peer: conn.peer, received: conn.reader.received }, 'connection closed with a partial request');
    }
    this.table.remove(conn);
    if (conn.registration) this.unregister(conn, 'closed');
    if (this.log.levelVal <= TRACE) this.log.trace({ conn: conn.id }, 'connection closed');
  }

  private received(conn: Connection, chunk: Buffer): void {
    if (conn.phase === 'registered') return this.unexpectedData(conn);
    if (conn.phase !== 'reading') return;
    if (conn.reader === undefined) {
      const payload = wholeFrame(chunk);
      if (payload) return this.complete(conn, payload, 0);
    }
    const reader = (conn.reader ??= new FrameReader());
    const result = reader.push(chunk);
    switch (result.kind) {
      case 'incomplete':
        // Remember who it is while the socket is open, for a warning if it never completes.
        void conn.peer;
        this.table.touch(conn);
        return;
      case 'bad-length':
        this.violation('framing', { peer: conn.peer, length: result.length }, 'invalid packet size');
        this.drop(conn);
        return;
      case 'surplus-in-first-read':
        this.violation('framing', { peer: conn.peer, got: result.got, expected: result.expected }, 'more bytes than the request length');
        this.drop(conn);
        return;
      case 'frame':
        this.complete(conn, result.payload, result.surplus);
    }
  }

  private complete(conn: Connection, payload: Buffer, surplus: number): void {
    this.table.startReply(conn);
    if (this.settings.delayAcceptSeconds > 0) {
      // OTP sleeps at every loop wake-up before reading; here only this connection waits.
      conn.socket.pause();
      setTimeout(() => this.dispatch(conn, payload, surplus), this.settings.delayAcceptSeconds * 1000);
    } else {
      this.dispatch(conn, payload, surplus);
    }
  }

  /**
   * Closes without a reply. If OTP would have left bytes unread, its close sends a reset; a reset
   * is sent here too so clients see the same thing.
   */
  private drop(conn: Connection): void {
    // Out of the table (phase 'closed') first: the close must not count as a second violation.
    this.table.remove(conn);
    if (conn.reader && conn.reader.received > OTP_FIRST_READ) conn.socket.resetAndDestroy();
    else conn.socket.destroy();
  }

  private dispatch(conn: Connection, payload: Buffer, surplus: number): void {
    if (conn.phase === 'closed') return;
    const type = requestTypeOf(payload);
    if (!type) {
      this.violation('malformed', { peer: conn.peer, code: payload[0] }, 'unknown request code');
      return this.drop(conn);
    }
    if (isLocalOnly(type) && !(conn.localPeer ??= isLocalSocket(conn.socket, this.settings.peerCheck))) {
      this.violation('non-local', { peer: conn.peer, request: type }, 'request refused from a non-local address');
      return this.drop(conn);
    }
    const request = decodeRequest(payload);
    if (request.type === 'malformed') {
      this.violation('malformed', { peer: conn.peer, request: request.request }, request.reason);
      return this.drop(conn);
    }
    this.counters.requests[request.type]++;
    if (this.log.levelVal <= DEBUG) this.log.debug({ peer: conn.peer, request: request.type }, 'request');
    // The request is decoded: the bytes read for it are no longer needed.
    conn.reader = undefined;
    switch (request.type) {
      case 'alive2':
        return this.alive2(conn, request, surplus);
      case 'port-please2':
        return this.reply(conn, this.port2Reply(request.name));
      case 'names':
        return this.reply(conn, this.namesReply(), this.registry.size + this.registry.provisionalCount + 1);
      case 'dump':
        return this.dump(conn);
      case 'kill':
        return this.kill(conn);
      case 'stop':
        return this.stop(conn, request.name);
      case 'status':
        return this.reply(conn, encodeStatusReply(this.hooks.status?.() ?? {}));
    }
  }

  /** A registration connection carries nothing after ALIVE2: any byte ends it (spec §3). */
  private unexpectedData(conn: Connection): void {
    this.unregister(conn, 'data');
    conn.socket.destroy();
  }

  private alive2(conn: Connection, request: Alive2Request, surplus: number): void {
    let reply: Buffer;
    let registration: Registration<Connection> | undefined;
    if (request.rejection) {
      this.violation('rejected', { peer: conn.peer, node: displayName(request.name) }, request.rejection);
      reply = encodeAlive2Reply(false, 0, request.highestVersion);
    } else if (this.table.registeredCount >= this.registrationLimit) {
      // Refused and closed like a query: a refusal kept open would hold a slot of the reserve.
      this.violation('overload', { peer: conn.peer, node: displayName(request.name), limit: this.registrationLimit }, 'registration refused: the rest of the connection cap is kept for queries');
      return this.reply(conn, encodeAlive2Reply(false, 0, request.highestVersion));
    } else {
      const result = this.registry.register(request, conn, conn.id);
      if (result.ok) {
        registration = result.registration;
        conn.registration = registration;
        if (this.log.levelVal <= INFO) this.log.info(
          { event: 'register', node: displayName(request.name), port: request.port, creation: registration.creation, nodeType: request.nodeType, peer: conn.peer },
          'node registered',
        );
        reply = encodeAlive2Reply(true, creationFor(registration.creation, request.highestVersion), request.highestVersion);
      } else {
        this.violation('duplicate', { peer: conn.peer, node: displayName(request.name) }, 'node name already occupied');
        reply = encodeAlive2Reply(false, 0, request.highestVersion);
      }
    }
    // Even a failed registration keeps its connection open until the client closes it (spec Q2).
    // Bytes arriving during a -delay_write wait must still end the registration: hold them.
    if (this.settings.delayWriteSeconds > 0) {
      conn.socket.pause();
      this.afterWriteDelay(1, () => this.answerAlive2(conn, reply, registration, surplus));
    } else {
      this.answerAlive2(conn, reply, registration, surplus);
    }
  }

  private answerAlive2(conn: Connection, reply: Buffer, registration: Registration<Connection> | undefined, surplus: number): void {
    if (conn.phase === 'closed') return;
    this.table.becomeRegistered(conn);
    conn.socket.resume();
    // One write: OTP nodes read the 6-byte reply as a unit (spec §16.2). If it cannot be
    // written, undo only what this request registered (spec Q17).
    conn.socket.write(reply, (err) => {
      if (!registration || conn.registration !== registration) return;
      if (err) {
        this.unregister(conn, 'reply-failed');
        conn.socket.destroy();
      } else {
        this.hooks.registered?.(registration);
      }
    });
    if (surplus > 0) this.unexpectedData(conn);
  }

  /** A live registration's reply is encoded once, at its first lookup, and kept by its connection. */
  private port2Reply(name: Buffer): Buffer {
    const registration = this.registry.lookup(name);
    if (!registration) return encodePort2Reply(this.registry.lookupProvisional(name));
    return (registration.owner.port2Reply ??= keepable(encodePort2Reply(registration)));
  }

  /** The NAMES reply for the registry as it is, encoded once per registry change and shared. */
  private namesReply(): Buffer {
    const generation = this.registry.generation;
    if (this.names?.generation !== generation) {
      const nodes = [...this.registry.newestFirst(), ...this.registry.provisionalNewestFirst()];
      this.names = { generation, bytes: encodeNamesReply(this.settings.reportedPort, nodes) };
    }
    return this.names.bytes;
  }

  private dump(conn: Connection): void {
    const generation = this.registry.generation;
    if (this.dumps?.generation !== generation) {
      const bytes = encodeDumpReply(this.settings.reportedPort, this.registry.newestFirst(), this.registry.unusedOldestFirst(), this.registry.provisionalNewestFirst());
      this.dumps = { generation, bytes };
    }
    this.reply(conn, this.dumps.bytes, this.registry.size + this.registry.unusedCount + this.registry.provisionalCount + 1);
  }

  private kill(conn: Connection): void {
    if (this.registry.size > 0 && !this.settings.relaxedCommandCheck) {
      this.violation('disallowed', { peer: conn.peer }, 'KILL_REQ refused: nodes are registered');
      return this.reply(conn, KILL_REFUSED);
    }
    this.reply(conn, KILL_OK, 1, () => {
      this.log.info({ peer: conn.peer }, 'KILL_REQ accepted, terminating');
      this.hooks.killRequested?.();
    });
  }

  private stop(conn: Connection, name: Buffer): void {
    if (!this.settings.relaxedCommandCheck) {
      this.violation('disallowed', { peer: conn.peer }, 'STOP_REQ refused: relaxed command check is off');
      return this.drop(conn);
    }
    const target = this.registry.lookup(name);
    if (!target) {
      const provisional = this.registry.lookupProvisional(name);
      if (!provisional) return this.reply(conn, STOP_UNKNOWN);
      this.registry.dropProvisional(provisional);
      this.hooks.provisionalDropped?.(provisional, 'stopped');
      return this.reply(conn, STOP_DONE);
    }
    const holder = target.owner;
    this.unregister(holder, 'stopped');
    holder.socket.destroy();
    return this.reply(conn, STOP_DONE);
  }

  /**
   * Sends a reply in one write and closes, like OTP. Usually the kernel takes the whole reply at
   * once and the socket is closed right away: its close then sends the FIN after the data, and no
   * shutdown round is needed. Otherwise the reader is slow: the rest must be taken before the
   * write deadline, and the (possibly shared) buffer is referenced until then, never copied.
   * Under -delay_write the delay is as long as OTP's, which sleeps before each of the
   * `otpWrites` writes it would make.
   */
  private reply(conn: Connection, bytes: Buffer, otpWrites = 1, written?: () => void): void {
    if (this.settings.delayWriteSeconds > 0) this.afterWriteDelay(otpWrites, () => this.send(conn, bytes, written));
    else this.send(conn, bytes, written);
  }

  private send(conn: Connection, bytes: Buffer, written?: () => void): void {
    if (bytes.length < LARGE_REPLY) return this.write(conn, bytes, written);
    this.largeReplies.push({ conn, bytes, written });
    if (this.largeReplies.length === 1) setImmediate(this.writeLargeReplies);
  }

  /**
   * Writes queued large replies, at most LARGE_REPLY_BYTES_PER_TURN per event-loop turn: copying
   * a NAMES reply of 10,000 nodes into the kernel takes a fraction of a millisecond, and a
   * thousand of them at once must not hold back the lookups that arrive meanwhile.
   */
  private readonly writeLargeReplies = (): void => {
    let bytes = 0;
    while (this.largeReplies.length > 0 && bytes < LARGE_REPLY_BYTES_PER_TURN) {
      const next = this.largeReplies.shift()!;
      bytes += next.bytes.length;
      this.write(next.conn, next.bytes, next.written);
    }
    if (this.largeReplies.length > 0) setImmediate(this.writeLargeReplies);
  };

  private write(conn: Connection, bytes: Buffer, written?: () => void): void {
    if (conn.phase === 'closed') return;
    const socket = conn.socket;
    socket.write(bytes);
    if (socket.writableLength === 0) {
      this.table.remove(conn);
      socket.destroy();
      written?.();
      return;
    }
    this.table.writePending(conn, bytes);
    socket.end(() => {
      socket.destroy();
      written?.();
    });
  }

  /** With -delay_write only (callers check, so that a reply without it needs no closure). */
  private afterWriteDelay(writes: number, then: () => void): void {
    setTimeout(then, this.settings.delayWriteSeconds * 1000 * writes);
  }

  private unregister(conn: Connection, reason: UnregisterReason): void {
    const registration = conn.registration;
    if (!registration) return;
    conn.registration = undefined;
    if (!this.registry.unregister(registration)) return;
    if (this.log.levelVal <= INFO) this.log.info(
      { event: 'unregister', node: displayName(registration.name), port: registration.port, creation: registration.creation, reason, peer: conn.peer },
      'node unregistered',
    );
    this.hooks.unregistered?.(registration, conn, reason);
  }

  private violation(kind: Violation, fields: Record<string, unknown>, message: string): void {
    this.counters.violations[kind]++;
    const admitted = this.violations.admit(kind);
    if (!admitted) return;
    const event = { event: 'violation', kind, ...fields };
    this.log.warn(admitted.dropped > 0 ? { ...event, suppressed: admitted.dropped } : event, message);
  }
}

/** This host's addresses right now; read only for the rare peer that is neither loopback nor the connection's own address. */
function interfaceAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** Node names are UTF-8 on the wire but arbitrary bytes may arrive; show them readably in logs. */
export function displayName(name: Buffer): string {
  return name.toString('utf8');
}
