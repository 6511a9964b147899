import net from 'node:net';

/** OTP's limit on listening sockets, its two implicit loopback sockets included (spec §12.2). */
export const MAX_LISTEN_SOCKETS = 16;
const LOOPBACK = ['127.0.0.1', '::1'];

export interface ListenAddress {
  host: string;
  /** Implicit loopback sockets may fail to bind (no IPv6 on lo) without stopping the daemon. */
  optional: boolean;
}

export type AddressPlan = { ok: true; addresses: ListenAddress[] } | { ok: false; message: string };

/**
 * Which addresses to listen on for an -address / ERL_EPMD_ADDRESS value (spec §12).
 * - No list (or only separators): loopback only. This deliberately differs from OTP, which listens
 *   on every interface; other hosts must be let in explicitly.
 * - A list: loopback first, as OTP does, then each listed address. A wildcard (0.0.0.0 or ::)
 *   covers loopback of its family, so the implicit loopback socket of that family is left out
 *   instead of colliding with it and exiting (spec Q7).
 */
export function planAddresses(list: string | undefined): AddressPlan {
  const tokens = (list ?? '').split(/[\s,]+/).filter((t) => t.length > 0);
  if (tokens.length === 0) return { ok: true, addresses: LOOPBACK.map((host) => ({ host, optional: true })) };
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
  const implicit = LOOPBACK.filter((lo) => !extra.includes(net.isIPv6(lo) ? '::' : '0.0.0.0'));
  return {
    ok: true,
    addresses: [...implicit.map((host) => ({ host, optional: true })), ...extra.map((host) => ({ host, optional: false }))],
  };
}

function normaliseIpv6(address: string): string {
  // Let the URL parser write the canonical compressed form, so "0:0:0:0:0:0:0:1" equals "::1".
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

export type BindOutcome =
  | { kind: 'listening'; servers: net.Server[]; skipped: { host: string; error: string }[] }
  | { kind: 'in-use'; host: string }
  | { kind: 'failed'; host: string; error: string };

function listenOn(host: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ pauseOnConnect: false });
    server.once('error', reject);
    // IPv6 sockets are IPv6-only so that 0.0.0.0 and :: can both be bound, as OTP does.
    server.listen({ host, port, ipv6Only: net.isIPv6(host), exclusive: true }, () => {
      server.removeListener('error', reject);
      resolve(server);
    });
  });
}

/**
 * Binds every planned address. An address in use means another epmd already serves this port:
 * OTP then exits 0 quietly, which `erl` relies on (spec §11.2).
 */
export async function bindAddresses(addresses: ListenAddress[], port: number): Promise<BindOutcome> {
  const servers: net.Server[] = [];
  const skipped: { host: string; error: string }[] = [];
  const closeAll = () => servers.forEach((s) => s.close());
  for (const { host, optional } of addresses) {
    try {
      servers.push(await listenOn(host, port));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EADDRINUSE') {
        closeAll();
        return { kind: 'in-use', host };
      }
      if (!optional) {
        closeAll();
        return { kind: 'failed', host, error: err.message };
      }
      skipped.push({ host, error: err.code ?? err.message });
    }
  }
  if (servers.length === 0) return { kind: 'failed', host: addresses.map((a) => a.host).join(','), error: 'no address could be bound' };
  return { kind: 'listening', servers, skipped };
}

/** "127.0.0.1:4369" / "[::1]:4369" for log lines. */
export function formatAddress(server: net.Server): string {
  const a = server.address();
  if (!a || typeof a === 'string') return String(a);
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
