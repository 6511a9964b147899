import { spawn } from 'node:child_process';
import type net from 'node:net';
import type { DaemonConfig } from './config.js';
import type { Logger } from './log/logger.js';
import { UNUSED_CAP, UNUSED_CAP_DEBUG } from './protocol/constants.js';
import { Registry } from './registry/registry.js';
import { bindAddresses, formatAddress, planAddresses } from './server/listeners.js';
import { EpmdServer, type Connection } from './server/server.js';

/** How the daemon process should end: the caller maps this to process.exit. */
export type DaemonExit = { code: number; message?: string };

/**
 * `-daemon`: start a detached copy without the flag and return at once with status 0, before any
 * socket is bound, as OTP does (`erl` relies on "exit 0 if already running", spec §11.2).
 */
export function daemonize(argv: readonly string[]): void {
  const args = argv.filter((a) => a !== '-daemon');
  const child = spawn(process.execPath, [process.argv[1]!, ...args], { detached: true, stdio: 'ignore', cwd: '/' });
  child.unref();
}

export interface RunningDaemon {
  server: EpmdServer;
  listeners: net.Server[];
  /** Resolves with the exit status once the daemon has stopped (KILL_REQ or stop()). */
  done: Promise<DaemonExit>;
  stop(reason: string): void;
}

/** Binds, serves, and reports how it ended; never calls process.exit itself. */
export async function runDaemon(config: DaemonConfig, log: Logger): Promise<RunningDaemon | DaemonExit> {
  const plan = planAddresses(config.address);
  if (!plan.ok) return { code: 1, message: plan.message };
  const bound = await bindAddresses(plan.addresses, config.port);
  if (bound.kind === 'in-use') {
    log.info({ address: bound.host, port: config.port }, 'another epmd is already listening on this port; exiting');
    return { code: 0 };
  }
  if (bound.kind === 'failed') return { code: 1, message: `cannot listen on ${bound.host} port ${config.port}: ${bound.error}` };
  for (const skipped of bound.skipped) log.warn(skipped, 'loopback address not available, continuing without it');

  const registry = new Registry<Connection>({ unusedCap: config.debug > 0 ? UNUSED_CAP_DEBUG : UNUSED_CAP });
  let finish: (exit: DaemonExit) => void = () => {};
  const done = new Promise<DaemonExit>((resolve) => (finish = resolve));
  let stopping = false;
  const stop = (reason: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ reason, registered: registry.size }, 'stopping');
    for (const listener of bound.servers) listener.close();
    server.closeAll();
    finish({ code: 0 });
  };
  const server = new EpmdServer(
    {
      reportedPort: config.port,
      packetTimeout: config.packetTimeout,
      delayAcceptSeconds: config.delayAccept,
      delayWriteSeconds: config.delayWrite,
      relaxedCommandCheck: config.relaxedCommandCheck,
      maxConnections: config.maxConnections,
    },
    registry,
    log,
    { killRequested: () => stop('KILL_REQ') },
  );
  for (const listener of bound.servers) server.attach(listener);

  const addresses = bound.servers.map(formatAddress);
  const loopbackOnly = bound.servers.every(isLoopback);
  log.info(
    { addresses, maxConnections: config.maxConnections, relaxedCommandCheck: config.relaxedCommandCheck },
    loopbackOnly
      ? `listening on ${addresses.join(', ')} (loopback only; to serve other hosts pass -address 0.0.0.0,:: or set ERL_EPMD_ADDRESS)`
      : `listening on ${addresses.join(', ')}`,
  );
  return { server, listeners: bound.servers, done, stop };
}

function isLoopback(server: net.Server): boolean {
  const a = server.address();
  return typeof a === 'object' && a !== null && (a.address === '::1' || a.address.startsWith('127.'));
}
