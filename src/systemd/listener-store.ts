// Listening sockets that outlive a restart of the socket unit. systemd closes a socket unit's
// sockets when it stops it, and `systemctl restart epmd.service epmd.socket` (erlang-base's
// postinst does exactly this) would then reset every connection waiting in the backlog and refuse
// new ones until the unit listens again. So the service keeps a copy of each listening socket in
// its fd store (`l-<inode>-<FileDescriptorName>`): the old socket keeps listening while the socket
// unit stops, the unit's new socket joins it in one SO_REUSEPORT group (ReusePort=yes), and the
// next process serves both, steers new connections to the new one, drains the old one and closes it.
import fs from 'node:fs';
import type { ActivatedFd } from './activation.js';
import { tryLoadNative } from './native.js';

const PREFIX = 'l-';

export function isStoredListener(name: string): boolean {
  return name.startsWith(PREFIX);
}

function inode(fd: number): number {
  return fs.fstatSync(fd).ino;
}

/** The store name of a listening socket: unique per socket, and remembering the unit's name for it. */
export function storedListenerName(fd: number, socketName: string): string {
  return `${PREFIX}${inode(fd).toString(36)}-${socketName}`;
}

/** The FileDescriptorName= a stored listener had in its socket unit. */
export function socketNameOf(storeName: string): string {
  return storeName.slice(storeName.indexOf('-', PREFIX.length) + 1);
}

export interface SortedListeners {
  /** The socket unit's sockets, as systemd passed them now. */
  current: ActivatedFd[];
  /**
   * Current sockets not yet in the store: the caller stores them. Only SO_REUSEPORT ones: a socket
   * unit without ReusePort=yes (an older epmd-ng) could not bind its new socket beside a kept one.
   */
  unstored: ActivatedFd[];
  /** Stored sockets the socket unit no longer has (it was restarted): serve, drain, close. */
  orphans: ActivatedFd[];
}

/**
 * Sorts the listening fds systemd passed. A stored copy of a current socket is the same socket
 * (same inode): our copy of it is closed, systemd's stays in the store.
 */
export function sortListeners(listening: ActivatedFd[]): SortedListeners {
  const current = listening.filter((f) => !isStoredListener(f.name));
  const currentInodes = new Set(current.map((f) => inode(f.fd)));
  const storedInodes = new Set<number>();
  const orphans: ActivatedFd[] = [];
  for (const f of listening.filter((l) => isStoredListener(l.name))) {
    const ino = inode(f.fd);
    if (currentInodes.has(ino)) {
      storedInodes.add(ino);
      fs.closeSync(f.fd);
    } else orphans.push(f);
  }
  const native = current.length > 0 ? tryLoadNative() : null;
  const unstored = current.filter((f) => !storedInodes.has(inode(f.fd)) && native?.sockInfo(f.fd)?.reusePort === true);
  return { current, unstored, orphans };
}
