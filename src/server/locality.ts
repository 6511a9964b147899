import net from 'node:net';

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
 * Whether `peer` is one of this host's interface addresses (`addresses`), also when a dual-stack
 * socket shows an IPv4 peer v4-mapped. This is how a this-host-only listener recognises the host
 * talking to one address of its own from another (a secondary IPv4 address is reached from the
 * primary one), which the spec's locality rule does not count as local.
 */
export function isOwnAddress(peer: string, addresses: readonly string[]): boolean {
  const plain = peer.startsWith('::ffff:') && net.isIPv4(peer.slice(7)) ? peer.slice(7) : peer;
  return addresses.includes(plain);
}
