import type net from 'node:net';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { OTP_FIRST_READ } from '../protocol/constants.js';
import { FrameReader } from '../protocol/frame-reader.js';
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
import { creationFor, type ProvisionalEntry, type Registration, type Registry } from '../registry/registry.js';
import type { Logger } from '../log/logger.js';
import type { NodeInfo } from '../protocol/requests.js';
import { RateLimiter } from '../log/rate-limit.js';
import { ServerCounters, type Violation } from '../status/counters.js';
import { isLocalPeer, isOwnAddress } from './locality.js';
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
}

export type UnregisterReason = 'closed' | 'data' | 'stopped' | 'reply-failed';

/** What the daemon around the server wants to hear about (status, snapshots, fd store, exit). */
export interface ServerHooks {
  /** A registration is in place and its reply has been written. */
  registered?(registration: Registration<Connection>): void;
  unregistered?(registration: Registration<Connection>, reason: UnregisterReason): void;
  /** A provisional entry was removed by STOP_REQ. */
  provisionalDropped?(entry: ProvisionalEntry, reason: 'stopped'): void;
  /** A KILL_REQ was accepted; the reply has been sent. */
  killRequested?(): void;
  /** The document STATUS_REQ answers with (epmd-ng status). */
  status?(): object;
}

type Phase = 'reading' | 'replying' | 'registered' | 'closed';

/** One accepted TCP connection; it carries exactly one request (spec §3). */
export interface Connection {
  readonly id: number;
  readonly socket: net.Socket;
  readonly local: boolean;
  readonly peer: string;
  phase: Phase;
  reader: FrameReader;
  registration?: Registration<Connection>;
  /** Name under which the connection sits in systemd's fd store, if it does. */
  storeName?: string;
}

/**
 * The EPMD protocol over TCP: accepts connections from any number of listening sockets, reads one
 * request per connection, answers it from the registry and enforces the limits. It never exits
 * the process itself; KILL is reported through hooks.killRequested.
 */
export class EpmdServer {
  /** Connections still waiting for a complete request, oldest first: the ones evicted under load. */
  private readonly waiting = new Set<Connection>();
  private readonly connections = new Set<Connection>();
  private readonly violations = new RateLimiter<Violation>(20, 10_000);
  readonly counters = new ServerCounters();
  private nextId = 1;

  constructor(
    private readonly settings: ServerSettings,
    readonly registry: Registry<Connection>,
    private readonly log: Logger,
    private readonly hooks: ServerHooks = {},
  ) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  get maxConnections(): number {
    return this.settings.maxConnections;
  }

  get reportedPort(): number {
    return this.settings.reportedPort;
  }

  /** New cap for later connections (reload); open connections are not closed to meet it. */
  setMaxConnections(limit: number): void {
    this.settings.maxConnections = limit;
  }

  /**
   * Serves connections arriving on `listener` (any number of listeners may be attached). On a
   * this-host-only listener a connection from another host is closed before anything is read: the
   * socket filter normally drops such peers in the kernel, but connections that queued before it
   * was attached (socket activation) or without the addon still arrive here.
   */
  attach(listener: net.Server, options: { thisHostOnly?: boolean } = {}): void {
    listener.on('connection', options.thisHostOnly ? (socket) => this.acceptFromThisHost(socket) : (socket) => this.accept(socket));
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
    const busy = () => [...this.connections].some((c) => c.phase === 'reading' || c.phase === 'replying');
    while (busy() && Date.now() < deadline) await sleep(5);
  }

  /** Closes every connection, registrations included (KILL, orderly exit). */
  closeAll(): void {
    for (const conn of this.connections) conn.socket.destroy();
  }

  private acceptFromThisHost(socket: net.Socket): void {
    const peer = socket.remoteAddress;
    if (isLocalPeer(peer, socket.localAddress) || (peer !== undefined && isOwnAddress(peer, interfaceAddresses()))) return this.accept(socket);
    this.violation('remote', { peer: formatPeer(socket), address: socket.localAddress }, 'connection from another host closed: this host only');
    socket.destroy();
  }

  private accept(socket: net.Socket): void {
    this.counters.accepted++;
    if (this.connections.size >= this.settings.maxConnections && !this.evictOldestWaiting()) {
      this.counters.refused++;
      this.violation('overload', { limit: this.settings.maxConnections }, 'connection limit reached, refusing a connection');
      socket.destroy();
      return;
    }
    const conn = this.track(socket, 'reading', isLocalPeer(socket.remoteAddress, socket.localAddress));
    this.waiting.add(conn);
    socket.on('timeout', () => {
      this.log.debug({ peer: conn.peer, received: conn.reader.received }, 'idle connection closed');
      socket.destroy();
    });
    socket.setTimeout((this.settings.packetTimeout + 1) * 1000);
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
    const conn = this.track(socket, 'registered', true);
    conn.storeName = storeName;
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

  private track(socket: net.Socket, phase: Phase, local: boolean): Connection {
    const fd = socketFd(socket);
    const conn: Connection = {
      id: fd >= 0 ? fd : this.nextId++,
      socket,
      local,
      peer: formatPeer(socket),
      phase,
      reader: new FrameReader(),
    };
    this.connections.add(conn);
    this.log.trace({ peer: conn.peer, local: conn.local, conn: conn.id }, 'connection opened');
    socket.on('error', (err) => this.log.trace({ conn: conn.id, err: err.message }, 'socket error'));
    socket.on('close', () => this.closed(conn));
    socket.on('data', (chunk) => this.received(conn, chunk));
    return conn;
  }

  /** Makes room under the connection cap by dropping the oldest connection still without a request. */
  private evictOldestWaiting(): boolean {
    const oldest = this.waiting.values().next();
    if (oldest.done) return false;
    this.counters.evictions++;
    this.violation('overload', { peer: oldest.value.peer }, 'connection limit reached, evicting the oldest idle connection');
    this.waiting.delete(oldest.value);
    oldest.value.socket.destroy();
    return true;
  }

  private closed(conn: Connection): void {
    if (conn.phase === 'reading' && conn.reader.received > 0) {
      this.violation('framing', { peer: conn.peer, received: conn.reader.received }, 'connection closed with a partial request');
    }
    conn.phase = 'closed';
    this.connections.delete(conn);
    this.waiting.delete(conn);
    if (conn.registration) this.unregister(conn, 'closed');
    this.log.trace({ conn: conn.id }, 'connection closed');
  }

  private received(conn: Connection, chunk: Buffer): void {
    if (conn.phase === 'registered') return this.unexpectedData(conn);
    if (conn.phase !== 'reading') return;
    const result = conn.reader.push(chunk);
    switch (result.kind) {
      case 'incomplete':
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
        this.waiting.delete(conn);
        conn.phase = 'replying';
        conn.socket.setTimeout(0);
        conn.socket.pause();
        void this.dispatch(conn, result.payload, result.surplus);
    }
  }

  /**
   * Closes without a reply. If OTP would have left bytes unread, its close sends a reset; a reset
   * is sent here too so clients see the same thing.
   */
  private drop(conn: Connection): void {
    // Reported already: the close must not count as a second violation (a partial request).
    conn.phase = 'closed';
    if (conn.reader.received > OTP_FIRST_READ) conn.socket.resetAndDestroy();
    else conn.socket.destroy();
  }

  private async dispatch(conn: Connection, payload: Buffer, surplus: number): Promise<void> {
    if (this.settings.delayAcceptSeconds > 0) await sleep(this.settings.delayAcceptSeconds * 1000);
    const type = requestTypeOf(payload);
    if (!type) {
      this.violation('malformed', { peer: conn.peer, code: payload[0] }, 'unknown request code');
      return this.drop(conn);
    }
    if (isLocalOnly(type) && !conn.local) {
      this.violation('non-local', { peer: conn.peer, request: type }, 'request refused from a non-local address');
      return this.drop(conn);
    }
    const request = decodeRequest(payload);
    if (request.type === 'malformed') {
      this.violation('malformed', { peer: conn.peer, request: request.request }, request.reason);
      return this.drop(conn);
    }
    this.counters.requests[request.type]++;
    this.log.debug({ peer: conn.peer, request: request.type }, 'request');
    await this.handle(conn, request);
    if (conn.phase === 'registered' && surplus > 0) this.unexpectedData(conn);
  }

  /** A registration connection carries nothing after ALIVE2: any byte ends it (spec §3). */
  private unexpectedData(conn: Connection): void {
    this.unregister(conn, 'data');
    conn.socket.destroy();
  }

  private handle(conn: Connection, request: Request): Promise<void> {
    switch (request.type) {
      case 'alive2':
        return this.alive2(conn, request);
      case 'port-please2':
        return this.reply(conn, encodePort2Reply(this.registry.resolve(request.name)));
      case 'names':
        return this.names(conn);
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

  private async alive2(conn: Connection, request: Alive2Request): Promise<void> {
    let reply: Buffer;
    let registration: Registration<Connection> | undefined;
    if (request.rejection) {
      this.violation('rejected', { peer: conn.peer, node: displayName(request.name) }, request.rejection);
      reply = encodeAlive2Reply(false, 0, request.highestVersion);
    } else {
      const result = this.registry.register(request, conn, conn.id);
      if (result.ok) {
        registration = result.registration;
        conn.registration = registration;
        this.log.info(
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
    await this.delayWrite(1);
    if (conn.phase === 'closed') return;
    conn.phase = 'registered';
    conn.socket.resume();
    // One write: OTP nodes read the 6-byte reply as a unit (spec §16.2). If it cannot be written,
    // undo only what this request registered (spec Q17).
    conn.socket.write(reply, (err) => {
      if (!registration || conn.registration !== registration) return;
      if (err) {
        this.unregister(conn, 'reply-failed');
        conn.socket.destroy();
      } else {
        this.hooks.registered?.(registration);
      }
    });
  }

  private names(conn: Connection): Promise<void> {
    const nodes = [...this.registry.newestFirst(), ...this.registry.provisionalNewestFirst()];
    return this.reply(conn, encodeNamesReply(this.settings.reportedPort, nodes), nodes.length + 1);
  }

  private dump(conn: Connection): Promise<void> {
    const active = this.registry.newestFirst();
    const unused = this.registry.unusedOldestFirst();
    const provisional = this.registry.provisionalNewestFirst();
    const writes = active.length + unused.length + provisional.length + 1;
    return this.reply(conn, encodeDumpReply(this.settings.reportedPort, active, unused, provisional), writes);
  }

  private async kill(conn: Connection): Promise<void> {
    if (this.registry.size > 0 && !this.settings.relaxedCommandCheck) {
      this.violation('disallowed', { peer: conn.peer }, 'KILL_REQ refused: nodes are registered');
      return this.reply(conn, KILL_REFUSED);
    }
    await this.reply(conn, KILL_OK);
    this.log.info({ peer: conn.peer }, 'KILL_REQ accepted, terminating');
    this.hooks.killRequested?.();
  }

  private stop(conn: Connection, name: Buffer): Promise<void> {
    if (!this.settings.relaxedCommandCheck) {
      this.violation('disallowed', { peer: conn.peer }, 'STOP_REQ refused: relaxed command check is off');
      this.drop(conn);
      return Promise.resolve();
    }
    const target = this.registry.lookup(name);
    if (!target) {
      const provisional = this.registry.lookupProvisional(name);
      if (!provisional) return this.reply(conn, STOP_UNKNOWN);
      this.registry.dropProvisional(provisional);
      this.hooks.provisionalDropped?.(provisional, 'stopped');
      return this.reply(conn, STOP_DONE);
    }
    this.unregister(target.owner, 'stopped');
    target.owner.socket.destroy();
    return this.reply(conn, STOP_DONE);
  }

  /**
   * Sends a reply and closes. The reply always leaves in one write; under -delay_write the delay
   * is as long as OTP's, which sleeps before each of the `otpWrites` writes it would make.
   */
  private async reply(conn: Connection, bytes: Buffer, otpWrites = 1): Promise<void> {
    await this.delayWrite(otpWrites);
    if (conn.phase === 'closed') return;
    // Closing right after the write, like OTP: the socket is paused, so waiting for the peer's
    // FIN would keep it open for nothing.
    await new Promise<void>((resolve) =>
      conn.socket.end(bytes, () => {
        conn.socket.destroy();
        resolve();
      }),
    );
  }

  private async delayWrite(writes: number): Promise<void> {
    if (this.settings.delayWriteSeconds > 0) await sleep(this.settings.delayWriteSeconds * 1000 * writes);
  }

  private unregister(conn: Connection, reason: UnregisterReason): void {
    const registration = conn.registration;
    if (!registration) return;
    conn.registration = undefined;
    if (!this.registry.unregister(registration)) return;
    this.log.info(
      { event: 'unregister', node: displayName(registration.name), port: registration.port, creation: registration.creation, reason, peer: conn.peer },
      'node unregistered',
    );
    this.hooks.unregistered?.(registration, reason);
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

function formatPeer(socket: net.Socket): string {
  const address = socket.remoteAddress ?? '?';
  return address.includes(':') ? `[${address}]:${socket.remotePort}` : `${address}:${socket.remotePort}`;
}

/** Node names are UTF-8 on the wire but arbitrary bytes may arrive; show them readably in logs. */
export function displayName(name: Buffer): string {
  return name.toString('utf8');
}
