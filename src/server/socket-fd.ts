import type net from 'node:net';

/**
 * The OS file descriptor behind a Node socket. Node has no public API for it; `_handle.fd` has
 * been stable on Unix for many releases and is what the fd store hand-over and the addon's
 * locality check rely on. Returns -1 when unknown (closed socket, non-Unix platform, a Node
 * release without it).
 */
export function socketFd(socket: net.Socket | net.Server): number {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle;
  return typeof handle?.fd === 'number' ? handle.fd : -1;
}
