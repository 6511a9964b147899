import net from 'node:net';

/** 127.0.0.0/8, also when a dual-stack socket shows it as ::ffff:127.x.y.z (spec Q12 fix). */
function isIpv4Loopback(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return net.isIPv4(v4) && v4.startsWith('127.');
}

/**
 * Whether a peer counts as "on this host" for registering, dumping, killing and stopping (spec §7):
 * any IPv4 loopback address, ::1, or a peer whose address is the connection's own local address.
 * Unknown addresses (the socket already closed) are never local.
 */
export function isLocalPeer(peer: string | undefined, local: string | undefined): boolean {
  if (!peer) return false;
  if (peer === '::1' || isIpv4Loopback(peer)) return true;
  return local !== undefined && peer === local;
}
