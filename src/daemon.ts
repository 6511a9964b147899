import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { parseEnvironmentFile, resolveReloadable, type DaemonConfig } from './config.js';
import type { Logger } from './log/logger.js';
import { UNUSED_CAP, UNUSED_CAP_DEBUG } from './protocol/constants.js';
import { Registry } from './registry/registry.js';
import { bindAddresses, formatAddress, MAX_LISTEN_SOCKETS, planAddresses } from './server/listeners.js';
import { EpmdServer, type Connection } from './server/server.js';
import { takeActivationFds, type ActivatedFd } from './systemd/activation.js';
import { ServiceManager } from './systemd/service.js';

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

function adopt(fd: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ fd }, () => {
      server.removeListener('error', reject);
      resolve(server);
    });
  });
}

type Listening = { ok: true; servers: net.Server[]; activated: boolean } | DaemonExit;

/** Sockets handed over by systemd when there are any, else our own per -address (spec §12, §13). */
async function listen(config: DaemonConfig, inherited: ActivatedFd[], log: Logger): Promise<Listening> {
  const sockets = inherited.filter((f) => f.kind === 'listening');
  if (sockets.length > 0 || config.systemd) {
    if (sockets.length === 0) return { code: 1, message: 'systemd provides no sockets (is epmd-ng.socket active?)' };
    if (sockets.length > MAX_LISTEN_SOCKETS) return { code: 1, message: `cannot listen on more than ${MAX_LISTEN_SOCKETS} IP addresses` };
    if (config.address !== undefined) log.info('socket activation: -address and ERL_EPMD_ADDRESS are ignored');
    try {
      return { ok: true, servers: await Promise.all(sockets.map((s) => adopt(s.fd))), activated: true };
    } catch (err) {
      return { code: 1, message: `cannot use the sockets from systemd: ${(err as Error).message}` };
    }
  }
  const plan = planAddresses(config.address);
  if (!plan.ok) return { code: 1, message: plan.message };
  const bound = await bindAddresses(plan.addresses, config.port);
  if (bound.kind === 'in-use') {
    log.info({ address: bound.host, port: config.port }, 'another epmd is already listening on this port; exiting');
    return { code: 0 };
  }
  if (bound.kind === 'failed') return { code: 1, message: `cannot listen on ${bound.host} port ${config.port}: ${bound.error}` };
  for (const skipped of bound.skipped) log.warn(skipped, 'loopback address not available, continuing without it');
  return { ok: true, servers: bound.servers, activated: false };
}

function isLoopback(server: net.Server): boolean {
  const a = server.address();
  return typeof a === 'object' && a !== null && (a.address === '::1' || a.address.startsWith('127.'));
}

/**
 * The port NAMES and DUMP report (spec §5.3, Q11): the configured one, as OTP; with socket
 * activation and no port configured, the port systemd actually listens on, so that
 * `net_adm:names()` works on any socket unit.
 */
function reportedPort(config: DaemonConfig, servers: net.Server[], activated: boolean): number {
  const first = servers[0]?.address();
  if (activated && !config.portConfigured && first && typeof first === 'object') return first.port;
  return config.port;
}

/** Runs the daemon until KILL_REQ or a signal; resolves with how the process should exit. */
export async function runDaemon(config: DaemonConfig, log: Logger): Promise<DaemonExit> {
  const service = new ServiceManager(log, () => describe());
  try {
    service.checkSupport();
  } catch (err) {
    return { code: 1, message: (err as Error).message };
  }
  let inherited: ActivatedFd[];
  try {
    inherited = takeActivationFds();
  } catch (err) {
    return { code: 1, message: `bad socket activation environment: ${(err as Error).message}` };
  }
  const listening = await listen(config, inherited, log);
  if (!('ok' in listening)) {
    if (listening.code !== 0) service.exited(listening.code);
    return listening;
  }
  const { servers, activated } = listening;
  const addresses = servers.map(formatAddress);

  const registry = new Registry<Connection>({ unusedCap: config.debug > 0 ? UNUSED_CAP_DEBUG : UNUSED_CAP });
  const describe = () => `Serving ${registry.size} node${registry.size === 1 ? '' : 's'} on ${addresses.join(', ')}`;
  let finish: (exit: DaemonExit) => void = () => {};
  const done = new Promise<DaemonExit>((resolve) => (finish = resolve));
  let stopping = false;
  const stop = (reason: string, notify: () => void): void => {
    if (stopping) return;
    stopping = true;
    log.info({ reason, registered: registry.size }, 'stopping');
    notify();
    for (const listener of servers) listener.close();
    server.closeAll();
    finish({ code: 0 });
  };

  const server = new EpmdServer(
    {
      reportedPort: reportedPort(config, servers, activated),
      packetTimeout: config.packetTimeout,
      delayAcceptSeconds: config.delayAccept,
      delayWriteSeconds: config.delayWrite,
      relaxedCommandCheck: config.relaxedCommandCheck,
      maxConnections: config.maxConnections,
    },
    registry,
    log,
    {
      registered: () => service.changed(),
      unregistered: () => service.changed(),
      killRequested: () => stop('KILL_REQ', () => service.exited(0)),
    },
  );
  for (const listener of servers) server.attach(listener);

  const reload = (): void => {
    service.reloading();
    const env = { ...process.env, ...readEnvironmentFiles(config.envFile, log) };
    const settings = resolveReloadable(env);
    if (!settings.ok) log.error(`reload: ${settings.message}; keeping the current settings`);
    else {
      if (settings.value.logLevel) log.level = settings.value.logLevel;
      if (settings.value.maxConnections) server.setMaxConnections(settings.value.maxConnections);
      log.info({ logLevel: log.level, maxConnections: settings.value.maxConnections }, 'reloaded');
    }
    service.reloaded();
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stop(signal, () => service.stopping()));
  process.on('SIGHUP', reload);
  if (process.env.EPMD_NG_TEST_HOOKS === '1') {
    // Test-only: SIGUSR2 wedges the event loop so the systemd watchdog has something to catch.
    process.on('SIGUSR2', () => {
      log.warn('test hook: blocking the event loop');
      for (;;);
    });
  }

  const loopbackOnly = !activated && servers.every(isLoopback);
  log.info(
    { addresses, activated, maxConnections: config.maxConnections, relaxedCommandCheck: config.relaxedCommandCheck },
    loopbackOnly
      ? `listening on ${addresses.join(', ')} (loopback only; to serve other hosts pass -address 0.0.0.0,:: or set ERL_EPMD_ADDRESS)`
      : `listening on ${addresses.join(', ')}`,
  );
  service.ready();
  return done;
}

/** Reads the colon-separated EnvironmentFile list; later files win, missing ones are skipped. */
function readEnvironmentFiles(files: string | undefined, log: Logger): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const file of (files ?? '').split(':').filter(Boolean)) {
    try {
      Object.assign(vars, parseEnvironmentFile(fs.readFileSync(file, 'utf8')));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'ENOENT') log.warn({ file, err: e.message }, 'reload: cannot read the environment file');
    }
  }
  return vars;
}
