// Socket activation and fd-store hand-over: which fds did systemd pass us, and what are they?
import { readFileSync, readlinkSync } from 'node:fs';
import { tryLoadNative, type SdNative, type SockInfo } from './native.js';

/** systemd passes fds contiguously from 3 (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

export interface ListenFd {
  fd: number;
  /** FileDescriptorName= of the socket unit, or the FDNAME= of a stored fd; 'unknown' without LISTEN_FDNAMES. */
  name: string;
}

/**
 * sd_listen_fds_with_names() without side effects: [] unless LISTEN_PID equals pid (the variables were
 * meant for another process, e.g. our parent) and LISTEN_FDS is set. Malformed values throw, as
 * sd_listen_fds reports -EINVAL: silently ignoring sockets we were handed would be worse.
 */
export function listenFds(env: NodeJS.ProcessEnv, pid: number): ListenFd[] {
  const pidText = env.LISTEN_PID;
  if (pidText === undefined) return [];
  if (!/^[0-9]+$/.test(pidText)) throw new Error(`invalid LISTEN_PID=${JSON.stringify(pidText)}`);
  if (Number(pidText) !== pid) return [];

  const countText = env.LISTEN_FDS;
  if (countText === undefined) return [];
  if (!/^[0-9]+$/.test(countText) || Number(countText) > 0x7fffffff - LISTEN_FDS_START) {
    throw new Error(`invalid LISTEN_FDS=${JSON.stringify(countText)}`);
  }
  const count = Number(countText);
  if (count === 0) return [];

  const namesText = env.LISTEN_FDNAMES;
  const names = namesText === undefined ? Array<string>(count).fill('unknown') : namesText.split(':');
  if (names.length !== count) {
    throw new Error(`LISTEN_FDNAMES has ${names.length} names for LISTEN_FDS=${count}`);
  }
  return names.map((name, i) => ({ fd: LISTEN_FDS_START + i, name }));
}

/** Removes the activation variables, so that child processes do not see fds that are not theirs. */
export function unsetListenEnv(env: NodeJS.ProcessEnv = process.env): void {
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
}

/** listening: pass to server.listen({fd}); stream: wrap in new net.Socket({fd}); other: not a stream socket (e.g. a memfd). */
export type FdKind = 'listening' | 'stream' | 'other';

const SOCK_STREAM = 1;

export function kindFromSockInfo(info: SockInfo | null): FdKind {
  if (!info || info.type !== SOCK_STREAM) return 'other';
  return info.acceptConn ? 'listening' : 'stream';
}

/** Socket inode numbers from one /proc/net table, each with whether it is listening. */
function procSockets(file: string, inodeCol: number, listening: (cols: string[]) => boolean | null): Map<string, boolean> {
  const out = new Map<string, boolean>();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out; // e.g. no IPv6 in this kernel
  }
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const inode = cols[inodeCol];
    const l = listening(cols);
    if (inode !== undefined && l !== null) out.set(inode, l);
  }
  return out;
}

/**
 * Classification without the addon: /proc/self/fd/N names the socket inode, which the /proc/net tables
 * list with a state (TCP "0A" is LISTEN; for AF_UNIX, flag __SO_ACCEPTCON 0x10000, type 1 = stream).
 * /proc/net is our own network namespace's view, the same one the fd lives in.
 */
export function kindFromProc(fd: number, proc = '/proc'): FdKind {
  let link: string;
  try {
    link = readlinkSync(`${proc}/self/fd/${fd}`);
  } catch {
    return 'other';
  }
  const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
  if (!inode) return 'other';
  for (const table of ['tcp', 'tcp6']) {
    const l = procSockets(`${proc}/net/${table}`, 9, (c) => c[3] === '0A');
    const hit = l.get(inode);
    if (hit !== undefined) return hit ? 'listening' : 'stream';
  }
  const unix = procSockets(`${proc}/net/unix`, 6, (c) =>
    c[4] === '0001' && c[3] !== undefined ? (parseInt(c[3], 16) & 0x10000) !== 0 : null,
  );
  const hit = unix.get(inode);
  return hit === undefined ? 'other' : hit ? 'listening' : 'stream';
}

/** sockInfo when the addon is available (exact), else the /proc fallback. */
export function classifyFd(fd: number, native: SdNative | null = tryLoadNative()): FdKind {
  return native ? kindFromSockInfo(native.sockInfo(fd)) : kindFromProc(fd);
}

export interface ActivatedFd extends ListenFd {
  kind: FdKind;
}

/**
 * Everything the daemon needs at start-up: the fds passed to this process, classified, with the
 * environment cleaned up and the fds marked close-on-exec as sd_listen_fds() does (Node happens to do
 * that for a contiguous run from fd 3 at start-up, but that is undocumented). The addon is loaded only
 * when there are fds; without it classification falls back to /proc and FD_CLOEXEC is left to Node.
 */
export function takeActivationFds(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): ActivatedFd[] {
  let fds: ListenFd[];
  try {
    fds = listenFds(env, pid);
  } finally {
    unsetListenEnv(env);
  }
  if (fds.length === 0) return [];
  const native = tryLoadNative();
  return fds.map((f) => {
    native?.setCloexec(f.fd, true);
    return { ...f, kind: classifyFd(f.fd, native) };
  });
}
