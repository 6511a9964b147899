import fs from 'node:fs';
import net from 'node:net';
import { parseEnvironmentFile, resolveReloadable, type DaemonConfig } from './config.js';
import { detachedLogFormat, type Logger } from './log/logger.js';
import { UNUSED_CAP, UNUSED_CAP_DEBUG } from './protocol/constants.js';
import { Registry } from './registry/registry.js';
import {
  applyFilter,
  bindAddresses,
  describeReach,
  formatAddress,
  MAX_LISTEN_SOCKETS,
  planAddresses,
  serveFd,
  specificButThisHostOnly,
  THIS_HOST_ONLY_FD_NAME,
  unconfigured,
  type Listener,
} from './server/listeners.js';
import { EpmdServer, type Connection } from './server/server.js';
import { readBootId, SnapshotStore } from './persistence/snapshot-store.js';
import type { Snapshot, SnapshotNode } from './persistence/snapshot.js';
import type { NodeInfo } from './protocol/requests.js';
import { ProvisionalKeeper } from './server/provisional.js';
import { socketFd } from './server/socket-fd.js';
import { takeActivationFds, type ActivatedFd } from './systemd/activation.js';
import { lazyPeerIsLocal, tryLoadNative } from './systemd/native.js';
import { FdStore, recoverStored } from './systemd/fd-store.js';
import { isStoredListener, socketNameOf, sortListeners, storedListenerName, type SortedListeners } from './systemd/listener-store.js';
import { ServiceManager } from './systemd/service.js';
import { isoTime, STATUS_FORMAT, type StatusDocument } from './status/document.js';
import { VERSION } from './version.js';

/** When provisional entries are probed: first after OTP nodes' 2 s re-registration, then every 5 s. */
const FIRST_PROBE_MS = 2500;
const PROBE_INTERVAL_MS = 5000;
/**
 * How long a listening socket left over from before a restart of the socket unit is still served
 * once new connections go to the new socket: enough for handshakes already under way to finish.
 */
const ORPHAN_DRAIN_MS = 1000;
/** How long an orderly stop waits for queries already accepted (a slow or idle client gets no more). */
const STOP_DRAIN_MS = 500;

/** How the daemon process should end: the caller maps this to process.exit. */
export type DaemonExit = { code: number; message?: string };

/**
 * `-daemon`: start a detached copy without the flag and return at once with status 0, before any
 * socket is bound, as OTP does (`erl` relies on "exit 0 if already running", spec §11.2). The copy
 * has no stderr, so it logs to the journal, or to syslog where there is none, as OTP logs to syslog
 * in this mode; EPMD_NG_LOG_FORMAT still wins.
 */
export async function daemonize(argv: readonly string[]): Promise<void> {
  const args = argv.filter((a) => a !== '-daemon');
  const env = { ...process.env, EPMD_NG_LOG_FORMAT: process.env.EPMD_NG_LOG_FORMAT || detachedLogFormat() };
  // Loaded here only: the daemon itself never starts a process.
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [process.argv[1]!, ...args], { detached: true, stdio: 'ignore', cwd: '/', env });
  child.unref();
}

type Listening = { ok: true; listeners: Listener[]; activated: boolean } | DaemonExit;

/** Sockets handed over by systemd when there are any, else our own per -address (spec §12, §13). */
async function listen(config: DaemonConfig, inherited: ActivatedFd[], log: Logger): Promise<Listening> {
  const sockets = inherited.filter((f) => f.kind === 'listening');
  if (sockets.length > 0 || config.systemd) {
    if (sockets.length === 0) return { code: 1, message: 'systemd provides no sockets (is epmd-ng.socket active?)' };
    if (sockets.length > MAX_LISTEN_SOCKETS) return { code: 1, message: `cannot listen on more than ${MAX_LISTEN_SOCKETS} IP addresses` };
    if (config.address !== undefined) log.info('socket activation: -address and ERL_EPMD_ADDRESS are ignored');
    const native = tryLoadNative();
    try {
      const listeners: Listener[] = [];
      for (const s of sockets) {
        const thisHostOnly = s.name === THIS_HOST_ONLY_FD_NAME;
        const filter = applyFilter(s.fd, thisHostOnly, native);
        listeners.push(await serveFd(s.fd, native, thisHostOnly, filter));
      }
      warnUnfiltered(listeners, log);
      const misnamed = specificButThisHostOnly(listeners);
      if (misnamed.length > 0) {
        log.warn(
          { addresses: misnamed },
          `${misnamed.join(', ')} ${misnamed.length === 1 ? 'is' : 'are'} named ${THIS_HOST_ONLY_FD_NAME}, so only this host is served there and other hosts get no answer; to serve them, give the socket unit another FileDescriptorName= (see epmd-ng-remote.conf in the package's examples)`,
        );
      }
      return { ok: true, listeners, activated: true };
    } catch (err) {
      return { code: 1, message: `cannot use the sockets from systemd: ${(err as Error).message}` };
    }
  }
  const plan = planAddresses(config.address);
  if (!plan.ok) return { code: 1, message: plan.message };
  const native = plan.addresses.some((a) => a.thisHostOnly || a.freeBind) ? tryLoadNative() : null;
  const bound = await bindAddresses(plan.addresses, config.port, native);
  if (bound.kind === 'in-use') {
    log.info({ address: bound.host, port: config.port }, 'another epmd is already listening on this port; exiting');
    return { code: 0 };
  }
  if (bound.kind === 'failed') return { code: 1, message: `cannot listen on ${bound.host} port ${config.port}: ${bound.error}` };
  for (const skipped of bound.skipped) log.warn(skipped, 'address not available, continuing without it');
  const absent = unconfigured(plan.addresses);
  if (absent.length > 0) log.warn({ addresses: absent }, `not configured on this host yet, served once they are: ${absent.join(', ')}`);
  warnUnfiltered(bound.listeners, log);
  return { ok: true, listeners: bound.listeners, activated: false };
}

const sameAddress = (a: net.Server, b: net.Server): boolean => {
  const x = a.address();
  const y = b.address();
  return typeof x === 'object' && typeof y === 'object' && x !== null && y !== null && x.address === y.address && x.port === y.port && x.family === y.family;
};

/**
 * Serves the listening sockets a restart of the socket unit left in our fd store (see
 * systemd/listener-store.ts) until the connections queued on them are taken, then closes them. New
 * connections go to the unit's new socket of the same address from the start: in their SO_REUSEPORT
 * group the new socket joined after the old ones, so its index is their number.
 */
async function retireOrphans(kept: SortedListeners, listeners: Listener[], server: EpmdServer, fdStore: FdStore, log: Logger): Promise<Listener[]> {
  if (kept.orphans.length === 0) return [];
  const native = tryLoadNative();
  const orphans: { storeName: string; listener: Listener }[] = [];
  for (const f of kept.orphans) {
    const thisHostOnly = socketNameOf(f.name) === THIS_HOST_ONLY_FD_NAME;
    orphans.push({ storeName: f.name, listener: await serveFd(f.fd, native, thisHostOnly, applyFilter(f.fd, thisHostOnly, native)) });
  }
  kept.current.forEach((f, i) => {
    const older = orphans.filter((o) => sameAddress(o.listener.server, listeners[i]!.server)).length;
    if (older === 0) return;
    try {
      native?.steerReuseport(f.fd, older);
    } catch (err) {
      log.warn({ err: (err as Error).message, address: formatAddress(listeners[i]!.server) }, 'cannot steer new connections to the new socket; the old one is drained all the same');
    }
  });
  for (const { storeName, listener: orphan } of orphans) {
    server.attach(orphan.server, { checkPeers: orphan.checkPeers });
    log.info({ address: formatAddress(orphan.server), storeName }, 'serving a listening socket kept from before the socket unit restarted, until it is drained');
    setTimeout(() => {
      fdStore.dropFd(storeName);
      orphan.server.close();
    }, ORPHAN_DRAIN_MS).unref();
  }
  return orphans.map((o) => o.listener);
}

/** Without the filter, other hosts still complete a TCP handshake before the server closes them. */
function warnUnfiltered(listeners: Listener[], log: Logger): void {
  const because = [...new Set(listeners.flatMap((l) => (l.thisHostOnly && !l.filtered ? [l.unfilteredBecause ?? 'unknown'] : [])))];
  if (because.length > 0) {
    log.warn(
      `no socket filter (${because.join('; ')}): other hosts complete a TCP handshake and are then closed before any byte is read, instead of getting no answer at all`,
    );
  }
}

/**
 * The port NAMES and DUMP report (spec §5.3, Q11): the configured one, as OTP; with socket
 * activation and no port configured, the port systemd actually listens on, so that
 * `net_adm:names()` works on any socket unit.
 */
function reportedPort(config: DaemonConfig, listeners: Listener[], activated: boolean): number {
  const first = listeners[0]?.server.address();
  if (activated && !config.portConfigured && first && typeof first === 'object') return first.port;
  return config.port;
}

/** Takes over the registration connections systemd kept for us (fd store). */
function adoptStored(inherited: ActivatedFd[], server: EpmdServer, fdStore: FdStore, log: Logger): number {
  const recovered = recoverStored(inherited, log);
  let adopted = 0;
  for (const s of recovered.stored) {
    const socket = new net.Socket({ fd: s.socketFd, readable: true, writable: true, allowHalfOpen: true });
    if (server.adopt(socket, s.node, s.node.creation, s.storeName)) adopted++;
    else recovered.stale.push(s.storeName);
  }
  for (const f of inherited) {
    if (f.kind !== 'listening' && !f.name.startsWith('r') && !f.name.startsWith('state-')) {
      log.warn({ fd: f.fd, name: f.name }, 'closing an unexpected file descriptor passed by systemd');
      fs.closeSync(f.fd);
    }
  }
  fdStore.resume(recovered);
  return adopted;
}

/**
 * Brings back what the last snapshot knew (spec §18): creation counters always; registrations
 * that were not adopted with their connection come back as provisional entries, unless the machine
 * rebooted since (then no node of them can still be running).
 */
function restoreSnapshot(store: SnapshotStore, registry: Registry<Connection>, config: DaemonConfig, log: Logger): void {
  const loaded = store.load();
  if (loaded.kind !== 'loaded') return;
  const { snapshot } = loaded;
  const sameBoot = snapshot.bootId !== '' && snapshot.bootId === readBootId();
  registry.restoreCounters(snapshot.unused, snapshot.creationCeiling);
  let provisional = 0;
  for (const node of snapshot.nodes) {
    if (registry.lookup(node.name)) continue;
    // An entry that was provisional already keeps its time; a restart does not renew it.
    const expiresAt = Math.min(node.provisionalUntil ?? Infinity, Date.now() + config.provisionalTtl * 1000);
    if (sameBoot && config.provisionalTtl > 0 && expiresAt > Date.now() && registry.addProvisional(node, node.creation, expiresAt)) provisional++;
    else registry.restoreCounters([node], 0);
  }
  log.info({ provisional, remembered: snapshot.unused.length, rebooted: !sameBoot, savedAt: new Date(snapshot.savedAt).toISOString() }, 'registry restored from snapshot');
}

function snapshotOf(registry: Registry<Connection>, bootId: string): Snapshot {
  const node = (n: NodeInfo & { creation: number; expiresAt?: number }): SnapshotNode => ({
    name: n.name,
    port: n.port,
    nodeType: n.nodeType,
    protocol: n.protocol,
    highestVersion: n.highestVersion,
    lowestVersion: n.lowestVersion,
    extra: n.extra,
    creation: n.creation,
    ...(n.expiresAt === undefined ? {} : { provisionalUntil: n.expiresAt }),
  });
  return {
    version: 1,
    bootId,
    savedAt: Date.now(),
    nodes: [...registry.provisionalNewestFirst(), ...registry.newestFirst()].reverse().map(node),
    unused: registry.unusedOldestFirst().map(({ name, port, creation }) => ({ name, port, creation })),
    creationCeiling: registry.creationCeiling,
  };
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Runs the daemon until KILL_REQ or a signal; resolves with how the process should exit. */
export async function runDaemon(config: DaemonConfig, log: Logger): Promise<DaemonExit> {
  const startedAt = Date.now();
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
  const kept = sortListeners(inherited.filter((f) => f.kind === 'listening'));
  const listening = await listen(config, inherited.filter((f) => !isStoredListener(f.name)), log);
  if (!('ok' in listening)) {
    if (listening.code !== 0) service.exited(listening.code);
    return listening;
  }
  const { listeners, activated } = listening;
  const addresses = listeners.map((l) => formatAddress(l.server));
  const reach = describeReach(listeners);

  const registry = new Registry<Connection>({ unusedCap: config.debug > 0 ? UNUSED_CAP_DEBUG : UNUSED_CAP });
  /** The STATUS= line `systemctl status` shows. */
  const describe = (): string => {
    const provisional = registry.provisionalNewestFirst().length;
    return `Serving ${plural(registry.size + provisional, 'node')} (${provisional} provisional) on ${reach}; ${plural(server.connectionCount, 'connection')} open`;
  };
  const fdStore = new FdStore(service.notifier, log, service.enabled && config.fdStore, function* () {
    for (const r of registry.newestFirst()) if (r.owner.storeName) yield { storeName: r.owner.storeName, node: r };
  });
  const snapshots = config.stateDir ? new SnapshotStore({ dir: config.stateDir, log }) : undefined;
  const bootId = readBootId();
  const produce = (): Snapshot => snapshotOf(registry, bootId);
  const changed = (): void => {
    service.changed();
    snapshots?.schedule(produce);
  };

  let finish: (exit: DaemonExit) => void = () => {};
  const done = new Promise<DaemonExit>((resolve) => (finish = resolve));
  let stopping = false;
  let draining: Listener[] = [];
  /**
   * Leaves without closing registration connections: under systemd the fd store keeps them open
   * for the next process (closing them here would tell every node its registration is gone);
   * otherwise the exit closes them, as OTP's does.
   */
  const stop = (reason: string, notify: () => void, closeConnections: boolean): void => {
    if (stopping) return;
    stopping = true;
    log.info({ reason, registered: registry.size }, 'stopping');
    notify();
    keeper.stop();
    for (const listener of [...listeners, ...draining]) listener.server.close();
    void server.drainQueries(closeConnections ? 0 : STOP_DRAIN_MS).then(() => {
      if (closeConnections) server.closeAll();
      snapshots?.flush(produce);
      snapshots?.close();
      finish({ code: 0 });
    });
  };

  const server = new EpmdServer(
    {
      reportedPort: reportedPort(config, listeners, activated),
      packetTimeout: config.packetTimeout,
      delayAcceptSeconds: config.delayAccept,
      delayWriteSeconds: config.delayWrite,
      relaxedCommandCheck: config.relaxedCommandCheck,
      maxConnections: config.maxConnections,
      peerCheck: lazyPeerIsLocal(),
    },
    registry,
    log,
    {
      registered: (registration) => {
        if (fdStore.enabled) registration.owner.storeName = fdStore.store(socketFd(registration.owner.socket), { ...registration });
        changed();
      },
      unregistered: (_registration, conn) => {
        if (conn.storeName) fdStore.remove(conn.storeName);
        conn.storeName = undefined;
        changed();
      },
      provisionalDropped: changed,
      killRequested: () => stop('KILL_REQ', () => service.exited(0), true),
      status: () => status(),
    },
  );
  const status = (): StatusDocument => {
    const counters = server.counters;
    const watchdog = service.watchdogState();
    return {
      format: STATUS_FORMAT,
      version: VERSION,
      pid: process.pid,
      startedAt: isoTime(startedAt)!,
      uptimeSeconds: (Date.now() - startedAt) / 1000,
      port: server.reportedPort,
      addresses,
      reach,
      activated,
      listeners: listeners.map((l, i) => {
        const queue = l.acceptQueue?.() ?? null;
        return { address: addresses[i]!, backlog: queue?.backlog ?? null, queued: queue?.queued ?? null };
      }),
      nodes: { active: registry.size, provisional: registry.provisionalNewestFirst().length },
      connections: { open: server.connectionCount, max: server.maxConnections, registrationLimit: server.registrationLimit, accepted: counters.accepted, evictions: counters.evictions, refused: counters.refused },
      requests: counters.requests,
      violations: counters.violations,
      fdStore: { enabled: fdStore.enabled, registrations: fdStore.registrations, pending: fdStore.backlog },
      snapshot: {
        enabled: snapshots !== undefined,
        file: snapshots?.file ?? null,
        lastAt: isoTime(snapshots?.lastAttemptAt ?? null),
        lastResult: snapshots?.lastAttemptAt == null ? null : snapshots.lastError === null ? 'ok' : 'failed',
        lastError: snapshots?.lastError ?? null,
        writes: snapshots?.writeCount ?? 0,
      },
      watchdog: { ...watchdog, lastPingAt: isoTime(watchdog.lastPingAt) },
    };
  };
  for (const listener of listeners) server.attach(listener.server, { checkPeers: listener.checkPeers });
  // Copies of the socket unit's sockets, so that they keep listening if it is restarted.
  for (const f of kept.unstored) fdStore.keepFd(storedListenerName(f.fd, f.name), f.fd);
  const keeper = new ProvisionalKeeper(registry, log, { ttlMs: config.provisionalTtl * 1000, intervalMs: PROBE_INTERVAL_MS, firstRoundMs: FIRST_PROBE_MS, dropped: changed, extended: changed });

  const adopted = adoptStored(inherited, server, fdStore, log);
  if (snapshots) restoreSnapshot(snapshots, registry, config, log);
  // Only now (it awaits): no connection is answered before the registrations are back.
  draining = await retireOrphans(kept, listeners, server, fdStore, log);

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
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stop(signal, () => service.stopping(), false));
  process.on('SIGHUP', reload);
  if (process.env.EPMD_NG_TEST_HOOKS === '1') {
    // Test-only: SIGUSR2 wedges the event loop so the systemd watchdog has something to catch.
    process.on('SIGUSR2', () => {
      log.warn('test hook: blocking the event loop');
      for (;;);
    });
  }

  log.info(
    {
      addresses,
      thisHostOnly: listeners.every((l) => l.thisHostOnly),
      socketFilter: listeners.some((l) => l.filtered),
      activated,
      adopted,
      provisional: registry.provisionalNewestFirst().length,
      fdStore: fdStore.enabled,
      stateDir: config.stateDir ?? null,
      maxConnections: config.maxConnections,
      relaxedCommandCheck: config.relaxedCommandCheck,
    },
    `listening on ${reach}`,
  );
  service.ready();
  keeper.start();
  if (adopted > 0 || registry.provisionalNewestFirst().length > 0) snapshots?.schedule(produce);
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
