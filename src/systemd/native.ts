// Typed, lazy access to the sd_native.node addon (native/sd_native.c). Lazy because a daemon that
// is neither under systemd nor listening on its default addresses never needs it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SockInfo {
  /** AF_* (AF_INET 2, AF_INET6 10, AF_UNIX 1). */
  domain: number;
  /** SOCK_* (SOCK_STREAM 1, SOCK_DGRAM 2). */
  type: number;
  /** IPPROTO_* (IPPROTO_TCP 6), 0 for AF_UNIX. */
  protocol: number;
  /** SO_ACCEPTCONN: the socket is listening. */
  acceptConn: boolean;
  /** SO_REUSEPORT: other sockets may join its address (ReusePort= of a socket unit). */
  reusePort: boolean;
}

export interface SdNative {
  /**
   * Sends `state` as one sd_notify datagram, with `fds` attached via SCM_RIGHTS. The address is
   * `address` if given, else $NOTIFY_SOCKET read with getenv() at call time ("/path" or "@abstract").
   * Returns false (sending nothing) when that is unset or empty. Throws an Error with .code/.errno/
   * .syscall on failure (ENOENT, ECONNREFUSED, EAFNOSUPPORT for unsupported address forms, ...).
   */
  notify(state: string, fds?: readonly number[] | null, address?: string | null): boolean;
  /** getsockopt SO_DOMAIN/SO_TYPE/SO_PROTOCOL/SO_ACCEPTCONN; null when fd is not a socket. */
  sockInfo(fd: number): SockInfo | null;
  setCloexec(fd: number, on: boolean): void;
  /** memfd_create(name, MFD_CLOEXEC). */
  memfdCreate(name: string): number;
  /** RLIMIT_NOFILE; RLIM_INFINITY is reported as Infinity. */
  getRlimitNofile(): { soft: number; hard: number };
  /**
   * Sends every new connection of the SO_REUSEPORT group of listening socket `fd` to the group's
   * socket number `index` (the order in which they joined; out of range: the kernel's hash).
   */
  steerReuseport(fd: number, index: number): void;
  /**
   * A listening TCP socket on a numeric address (SO_REUSEADDR, close-on-exec), with the options set
   * before bind: IPV6_V6ONLY, IP_FREEBIND, and if it can the this-host-only filter. Throws a system
   * error (.code EADDRINUSE, EADDRNOTAVAIL, EAFNOSUPPORT...; .syscall the call that failed).
   */
  listenTcp(host: string, port: number, options: ListenTcpOptions): number;
  /** Attaches (true) or removes (false) the this-host-only socket filter on any socket. */
  setThisHostOnly(fd: number, on: boolean): void;
  /** Which classic socket filter the socket has. */
  filterState(fd: number): 'none' | 'this-host-only' | 'no-new-connections' | 'other';
  /**
   * Attaches the no-new-connections filter to a listening socket (replacing any other): SYNs are
   * dropped, so it takes no new connection (its clients send the SYN again after 1 s, to whichever
   * socket listens then), and the handshakes it has begun complete.
   */
  dropNewConnections(fd: number): void;
  /**
   * One datagram to an AF_UNIX address, never blocking: false when the receiver's queue is full.
   * `largeAsMemfd`: a payload too large for a datagram is passed as a sealed memfd (journald's
   * native protocol). Throws (ENOENT, ECONNREFUSED, EACCES, ...) when nobody receives.
   */
  sendDatagram(address: string, payload: Buffer, largeAsMemfd: boolean): boolean;
  /** SO_REUSEPORT on a bound socket: another socket of the same owner may then bind its port too. */
  setReusePort(fd: number): void;
  /**
   * The spec's locality rule (§7) on a connected socket's raw addresses: the peer is loopback or the
   * connection's own local address. null when the socket has no peer any more.
   */
  peerIsLocal(fd: number): boolean | null;
  /** The accept-queue limit of a listening TCP socket (capped by net.core.somaxconn); null for other fds. */
  listenBacklog(fd: number): number | null;
  /** How many connections wait in the accept queue of a listening TCP socket; null for other fds. */
  acceptQueueLength(fd: number): number | null;
}

export interface ListenTcpOptions {
  ipv6Only?: boolean;
  freeBind?: boolean;
  /**
   * Try to attach the this-host-only filter (native/sd_native.c has the rule); failing is not an
   * error (newer kernels want CAP_NET_ADMIN for it): ask filterState().
   */
  thisHostOnly?: boolean;
}

export const ADDON_FILE = 'sd_native.node';
export const SYSTEM_ADDON_PATH = '/usr/lib/epmd-ng/sd_native.node';

/** The directory of this module's file: src/systemd under vitest/tsx, dist/ inside the esbuild bundle. */
function moduleDir(): string | null {
  // import.meta.url, not process.argv[1]: argv[1] is vitest's own script under test, and Node already
  // resolves symlinks (/usr/bin/epmd-ng -> .../dist/epmd-ng.mjs) for the main module's URL.
  return import.meta.url.startsWith('file:') ? path.dirname(fileURLToPath(import.meta.url)) : null;
}

/** The nearest directory at or above `dir` holding a package.json: the repo (or installed package) root. */
function packageRoot(dir: string): string | null {
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) return null;
  }
}

/** Where the addon is looked for, in order; the first that exists is loaded. */
export function addonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.EPMD_NG_NATIVE) out.push(path.resolve(env.EPMD_NG_NATIVE));
  const dir = moduleDir();
  if (dir) {
    out.push(path.join(dir, ADDON_FILE));
    const root = packageRoot(dir);
    if (root) out.push(path.join(root, 'build', ADDON_FILE));
  }
  out.push(SYSTEM_ADDON_PATH);
  return [...new Set(out)];
}

let cached: { addon: SdNative } | { error: Error } | undefined;

/**
 * Loads the addon from the first existing candidate, once per process. Throws a clear Error when none
 * exists or the one found fails to load (a broken file is reported, not skipped, so a stale or
 * wrong-architecture build does not silently lose to another copy).
 */
export function loadNative(): SdNative {
  if (!cached) cached = tryLoad();
  if ('error' in cached) throw cached.error;
  return cached.addon;
}

/** Like loadNative(), but null instead of throwing (for optional uses such as fd classification). */
export function tryLoadNative(): SdNative | null {
  try {
    return loadNative();
  } catch {
    return null;
  }
}

/**
 * The addon's peerIsLocal, loaded at its first call (the first local-only request). It answers
 * null, leaving the decision to Node's address strings, when the addon is missing or is an older
 * build without it.
 */
export function lazyPeerIsLocal(): (fd: number) => boolean | null {
  let addon: SdNative | null | undefined;
  return (fd) => {
    if (addon === undefined) {
      const found = tryLoadNative();
      addon = typeof found?.peerIsLocal === 'function' ? found : null;
    }
    return addon ? addon.peerIsLocal(fd) : null;
  };
}

function tryLoad(): { addon: SdNative } | { error: Error } {
  const prefix = 'the native addon (sd_native.node: systemd notification, socket filter) is missing: ';
  const candidates = addonCandidates();
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    return {
      error: new Error(
        `${prefix}none of ${candidates.join(', ')} exists; build it with \`node scripts/build-native.mjs\` ` +
          'or point EPMD_NG_NATIVE at it',
      ),
    };
  }
  try {
    // A local createRequire, never a module-level `require`: the bundle's banner defines that name.
    const load = createRequire(import.meta.url);
    return { addon: load(file) as SdNative };
  } catch (err) {
    return { error: new Error(`${prefix}loading ${file} failed: ${(err as Error).message}`, { cause: err }) };
  }
}

/** Forgets the cached load result (tests only). */
export function resetNativeForTests(): void {
  cached = undefined;
}
