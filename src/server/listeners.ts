import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { SdNative } from '../systemd/native.js';

/** OTP's limit on listening sockets, its two implicit loopback sockets included (spec §12.2). */
export const MAX_LISTEN_SOCKETS = 16;
const LOOPBACK = ['127.0.0.1', '::1'];
const WILDCARDS = ['0.0.0.0', '::'];

/**
 * The FileDescriptorName= by which a socket unit asks for "this host only" (the shipped
 * epmd-ng.socket); sockets with any other name serve whoever the socket unit lets in.
 */
export const THIS_HOST_ONLY_FD_NAME = 'epmd-local';

/** A listening socket the daemon serves, and whom it serves. */
export interface Listener {
  server: net.Server;
  /** Connections from other hosts are refused (the accept-time check in the server). */
  thisHostOnly: boolean;
  /** The kernel also drops other hosts' packets (the socket filter is attached). */
  filtered: boolean;
  /** Why a this-host-only listener has no filter. */
  unfilteredBecause?: string;
  /**
   * The server must check each peer at accept time: this host only, and the filter was not on the
   * socket before it listened (systemd's sockets, a filter attached late, or none).
   */
  checkPeers: boolean;
  /**
   * Reads the socket's accept queue now (for `epmd-ng status`); absent when the daemon does not
   * know the socket's fd (Node's own listen, without the addon).
   */
  acceptQueue?: () => AcceptQueue | null;
}

/** A listening socket's accept queue: its limit (the backlog) and the connections waiting in it. */
export interface AcceptQueue {
  backlog: number;
  queued: number;
}

/** Whether the this-host-only filter is on a socket, and why not. */
export type FilterOutcome = { filtered: true } | { filtered: false; because?: string };

const MISSING_ADDON = 'the native addon is missing';

export interface ListenAddress {
  host: string;
  /** May fail to bind without stopping the daemon (implicit loopback without IPv6 on lo; a family the kernel lacks). */
  optional: boolean;
  /** Serve only this host, through any of its addresses (the default; see THIS_HOST_ONLY). */
  thisHostOnly: boolean;
  /** Bind even before the address is configured (IP_FREEBIND, as the socket unit's FreeBind=yes). */
  freeBind: boolean;
}

export type AddressPlan = { ok: true; addresses: ListenAddress[] } | { ok: false; message: string };

/**
 * Which addresses to listen on for an -address / ERL_EPMD_ADDRESS value (spec §12).
 * - No list (or only separators): every address of this host, for this host only: the wildcard
 *   addresses with the this-host-only filter. OTP serves every host here; we serve none but our
 *   own, yet a node is found through whatever its host name resolves to (127.0.1.1 on Debian, the
 *   host's own IPv4 or IPv6 address elsewhere), including addresses configured later.
 * - A list: OTP's meaning, open to whoever reaches the addresses: loopback first, then each listed
 *   address. A wildcard (0.0.0.0 or ::) covers loopback of its family, so the implicit loopback
 *   socket of that family is left out instead of colliding with it and exiting (spec Q7). Listed
 *   addresses bind even before they are configured, so an interface that comes up late or goes
 *   down and up again does not stop the daemon.
 */
export function planAddresses(list: string | undefined): AddressPlan {
  const tokens = (list ?? '').split(/[\s,]+/).filter((t) => t.length > 0);
  if (tokens.length === 0) return { ok: true, addresses: WILDCARDS.map((host) => ({ host, optional: true, thisHostOnly: true, freeBind: false })) };
  const extra: string[] = [];
  for (const token of tokens) {
    // Zone ids (fe80::1%eth0) are not accepted by OTP's parser either.
    const family = token.includes('%') ? 0 : net.isIP(token);
    if (family === 0) return { ok: false, message: `cannot parse IP address "${token}"` };
    const host = family === 6 ? normaliseIpv6(token) : token;
    if (!LOOPBACK.includes(host) && !extra.includes(host)) extra.push(host);
  }
  // OTP refuses the address that would take the 16th socket, so 13 extra addresses is the most.
  if (LOOPBACK.length + extra.length >= MAX_LISTEN_SOCKETS) {
    return { ok: false, message: `cannot listen on more than ${MAX_LISTEN_SOCKETS} IP addresses` };
  }
  const implicit = LOOPBACK.filter((lo) => !extra.includes(isIpv6Literal(lo) ? '::' : '0.0.0.0'));
  return {
    ok: true,
    addresses: [
      ...implicit.map((host) => ({ host, optional: true, thisHostOnly: false, freeBind: false })),
      ...extra.map((host) => ({ host, optional: false, thisHostOnly: false, freeBind: !WILDCARDS.includes(host) })),
    ],
  };
}

/**
 * The family of an address planAddresses produced (always a numeric one it checked): only IPv6
 * has colons. Cheaper than net.isIPv6, whose large regular expression takes ~5 ms to compile on
 * first use, most of it on the way to READY=1.
 */
function isIpv6Literal(host: string): boolean {
  return host.includes(':');
}

function normaliseIpv6(address: string): string {
  // Let the URL parser write the canonical compressed form, so "0:0:0:0:0:0:0:1" equals "::1".
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

export type BindOutcome =
  | { kind: 'listening'; listeners: Listener[]; skipped: { host: string; error: string }[] }
  | { kind: 'in-use'; host: string }
  | { kind: 'failed'; host: string; error: string };

/**
 * The backlog OTP's epmd asks for (SOMAXCONN); the kernel caps it at net.core.somaxconn. Node's
 * own default is 511: a burst of connections while the daemon is busy (a start of many nodes, a
 * garbage collection) would see SYNs dropped and retried a second later.
 */
export const SOMAXCONN = 4096;

/**
 * Serves an already listening socket (ours from the addon, or one systemd passed). Node calls
 * listen() on it again: it is given the backlog the socket already has, so that neither ours nor a
 * socket unit's Backlog= is cut to Node's 511. Without the addon that cannot be read: SOMAXCONN.
 */
export async function serveFd(fd: number, native: SdNative | null, thisHostOnly: boolean, filter: FilterOutcome, filteredFromStart = false): Promise<Listener> {
  const backlog = native?.listenBacklog(fd) ?? SOMAXCONN;
  const server = await serve((s) => s.listen({ fd }, backlog));
  const served = listener(server, thisHostOnly, filter, filteredFromStart);
  if (native) served.acceptQueue = () => acceptQueueOf(fd, native);
  return served;
}

function acceptQueueOf(fd: number, native: SdNative): AcceptQueue | null {
  const backlog = native.listenBacklog(fd);
  const queued = native.acceptQueueLength(fd);
  return backlog === null || queued === null ? null : { backlog, queued };
}

function serve(listen: (server: net.Server) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    // Half-open sockets: the server closes a connection itself when its peer does (see EpmdServer).
    const server = net.createServer({ allowHalfOpen: true });
    server.once('error', reject);
    server.once('listening', () => {
      server.removeListener('error', reject);
      resolve(server);
    });
    listen(server);
  });
}

/**
 * One socket for `address`. With the addon, the socket is complete (filter, IP_FREEBIND) before it
 * listens; without it, Node's own listen, so the filter and IP_FREEBIND are missing and the
 * server's accept-time check alone keeps other hosts out.
 */
async function listenOn(address: ListenAddress, port: number, native: SdNative | null): Promise<Listener> {
  const { host, thisHostOnly, freeBind } = address;
  const ipv6Only = isIpv6Literal(host);
  if (!native) {
    // IPv6 sockets are IPv6-only so that 0.0.0.0 and :: can both be bound, as OTP does.
    const server = await serve((s) => s.listen({ host, port, ipv6Only, exclusive: true, backlog: SOMAXCONN }));
    return listener(server, thisHostOnly, thisHostOnly ? { filtered: false, because: MISSING_ADDON } : { filtered: false });
  }
  const fd = native.listenTcp(host, port, { ipv6Only, freeBind, thisHostOnly });
  try {
    // Filtered before listen(): no packet from another host ever reached this socket.
    const filteredFromStart = thisHostOnly && native.filterState(fd) === 'this-host-only';
    const filter: FilterOutcome = filteredFromStart ? { filtered: true } : thisHostOnly ? applyFilter(fd, true, native) : { filtered: false };
    return await serveFd(fd, native, thisHostOnly, filter, filteredFromStart);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * Binds every planned address. An address in use means another epmd already serves this port:
 * OTP then exits 0 quietly, which `erl` relies on (spec §11.2).
 */
export async function bindAddresses(addresses: ListenAddress[], port: number, native: SdNative | null): Promise<BindOutcome> {
  const listeners: Listener[] = [];
  const skipped: { host: string; error: string }[] = [];
  const closeAll = () => listeners.forEach((l) => l.server.close());
  for (const address of addresses) {
    try {
      listeners.push(await listenOn(address, port, native));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EADDRINUSE') {
        closeAll();
        return { kind: 'in-use', host: address.host };
      }
      if (!address.optional) {
        closeAll();
        return { kind: 'failed', host: address.host, error: err.message };
      }
      skipped.push({ host: address.host, error: err.code ?? err.message });
    }
  }
  if (listeners.length === 0) return { kind: 'failed', host: addresses.map((a) => a.host).join(','), error: 'no address could be bound' };
  return { kind: 'listening', listeners, skipped };
}

export function listener(server: net.Server, thisHostOnly: boolean, filter: FilterOutcome, filteredFromStart = false): Listener {
  return {
    server,
    thisHostOnly,
    filtered: filter.filtered,
    ...(filter.filtered || !filter.because ? {} : { unfilteredBecause: filter.because }),
    checkPeers: thisHostOnly && !filteredFromStart,
  };
}

/**
 * Gives a socket the filter that whom it serves asks for: attached for this host only (kept when
 * it is already there: systemd's socket keeps it across our restarts, and epmd-ng-filter.service
 * may have attached it with the CAP_NET_ADMIN that newer kernels require), removed otherwise.
 * Failing to attach is reported, not thrown: the server's accept-time check still holds.
 */
export function applyFilter(fd: number, thisHostOnly: boolean, native: SdNative | null): FilterOutcome {
  if (!native) return { filtered: false, because: thisHostOnly ? MISSING_ADDON : undefined };
  const state = native.filterState(fd);
  if (!thisHostOnly) {
    if (state !== 'none') native.setThisHostOnly(fd, false);
    return { filtered: false };
  }
  if (state === 'this-host-only') return { filtered: true };
  try {
    native.setThisHostOnly(fd, true);
    return { filtered: true };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { filtered: false, because: e.code === 'EPERM' ? 'attaching it needs CAP_NET_ADMIN on this kernel' : e.message };
  }
}

/**
 * Listed addresses not configured on any interface right now (bound with IP_FREEBIND, served once
 * they appear). The interfaces are asked for (a netlink dump) only when some address is listed.
 */
export function unconfigured(addresses: ListenAddress[], interfaces = () => os.networkInterfaces()): string[] {
  const listed = addresses.filter((a) => a.freeBind);
  if (listed.length === 0) return [];
  const present = new Set(Object.values(interfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
  return listed.filter((a) => !present.has(a.host)).map((a) => a.host);
}

/**
 * What the listeners serve, for the start-up line and STATUS=: "port 4369 for this host only (every
 * local address)" for wildcard sockets, else the addresses themselves and whom they serve.
 */
export function describeReach(listeners: Listener[]): string {
  const local = listeners.length > 0 && listeners.every((l) => l.thisHostOnly);
  if (local && listeners.every((l) => isWildcard(l.server))) {
    const ports = [...new Set(listeners.map((l) => portOf(l.server)))];
    return `port ${ports.join(', ')} for this host only (every local address)`;
  }
  const addresses = listeners.map((l) => `${formatAddress(l.server)}${l.thisHostOnly && !local ? ' (this host only)' : ''}`).join(', ');
  if (listeners.some((l) => !l.thisHostOnly && !isLoopback(l.server))) return `${addresses}: open to every host that reaches them`;
  return `${addresses}: ${listeners.some((l) => l.thisHostOnly) ? 'this host only' : 'loopback only'}`;
}

/**
 * This-host-only sockets on one address that is neither a wildcard nor loopback: a socket unit
 * lists such an address to be reached from other hosts, but the name epmd-local keeps them out.
 */
export function specificButThisHostOnly(listeners: Listener[]): string[] {
  return listeners.filter((l) => l.thisHostOnly && !isWildcard(l.server) && !isLoopback(l.server)).map((l) => formatAddress(l.server));
}

function portOf(server: net.Server): number {
  const a = server.address();
  return a && typeof a === 'object' ? a.port : 0;
}

function isWildcard(server: net.Server): boolean {
  const a = server.address();
  return typeof a === 'object' && a !== null && WILDCARDS.includes(a.address);
}

function isLoopback(server: net.Server): boolean {
  const a = server.address();
  return typeof a === 'object' && a !== null && (a.address === '::1' || a.address.startsWith('127.'));
}

/** "127.0.0.1:4369" / "[::1]:4369" for log lines. */
export function formatAddress(server: net.Server): string {
  const a = server.address();
  if (!a || typeof a === 'string') return String(a);
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
