import net from 'node:net';
import { socketFd } from './socket-fd.js';

/** The locality rule decided from a connected socket's descriptor (the addon's); null when it cannot tell. */
export type PeerCheck = (fd: number) => boolean | null;

/**
 * 127.0.0.0/8, also when a dual-stack socket shows it as ::ffff:127.x.y.z (spec Q12 fix). The
 * address is one the kernel reported, so its form is not in doubt: no IPv6 text starts with "127.".
 */
function isIpv4Loopback(address: string): boolean {
  return address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/**
 * Whether a peer counts as "on this host" for registering, dumping, killing and stopping (spec §7):
 * any IPv4 loopback address, ::1, or a peer whose address is the connection's own local address.
 * Unknown addresses (the socket already closed) are never local. `local` gives the connection's
 * local address, asked only when the peer is not loopback (reading it is a system call).
 */
export function isLocalPeer(peer: string | undefined, local: () => string | undefined): boolean {
  if (!peer) return false;
  if (peer === '::1' || isIpv4Loopback(peer)) return true;
  const own = local();
  return own !== undefined && peer === own;
}

/**
 * Whether the peer of an open socket is on this host (spec §7). `check` decides from the raw
 * addresses when it is given and can; Node's address strings are the fallback. Those cost more
 * than the system call: a formatted string, an object, and the property Node caches them in,
 * which gives that socket a second hidden class and slows Node's own code on it.
 */
export function isLocalSocket(socket: net.Socket, check: PeerCheck | undefined): boolean {
  const fd = socketFd(socket);
  const verdict = check && fd >= 0 ? check(fd) : null;
  return verdict ?? isLocalPeer(socket.remoteAddress, () => socket.localAddress);
}

/**
 * Whether `peer` is one of this host's interface addresses (`addresses`), also when a dual-stack
 * socket shows an IPv4 peer v4-mapped. This is how a this-host-only listener recognises the host
 * talking to one address of its own from another (a secondary IPv4 address is reached from the
 * primary one), which the spec's locality rule does not count as local.
 */
export function isOwnAddress(peer: string, addresses: readonly string[]): boolean {
  const plain = peer.startsWith('::ffff:') && net.isIPv4(peer.slice(7)) ? peer.slice(7) : peer;
  return addresses.includes(plain);
}
