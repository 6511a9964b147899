// The short steps that small units run on listening sockets systemd holds (Sockets=), each with
// just the rights it needs, and that the hardened daemon could not do itself:
//
// - `epmd-ng socket-filter` (epmd-ng-filter.service): Linux 6.18 and later want CAP_NET_ADMIN to
//   attach a socket filter to a TCP socket. It gives epmd-ng.socket's sockets the filter their
//   name asks for; the filter then stays on the sockets in systemd's hands, for every later
//   incarnation of the daemon.
// - `epmd-ng hand-over-sockets` (epmd-ng-handover.service, started and stopped by the package's
//   first installation) retires the sockets of erlang-base's running epmd.socket without closing
//   port 4369 or resetting a connection. Started, it sets SO_REUSEPORT on them, so that
//   epmd-ng.socket (ReusePort=yes) can bind the port beside them, and tells systemd it is ready.
//   Stopped, it closes them to new connections (whose clients try again a second later and reach
//   epmd-ng's sockets once these have closed) and returns when the epmd serving them has accepted
//   every connection already queued. Only then does erlang-base's epmd stop. The kernel cannot
//   steer connections away from these sockets instead: they are in no SO_REUSEPORT group (they
//   were listening before the flag was set), and the dual-stack one could not join epmd-ng's
//   IPv6-only one anyway.
import { setTimeout as sleep } from 'node:timers/promises';
import { applyFilter, THIS_HOST_ONLY_FD_NAME } from '../server/listeners.js';
import { takeActivationFds, type ActivatedFd } from './activation.js';
import { loadNative, type SdNative } from './native.js';
import { Notifier } from './notify.js';

export interface StepReport {
  code: number;
  /** One line per socket, or the one-line reason for failing. */
  lines: string[];
}

type Listeners = { fds: ActivatedFd[]; native: SdNative } | { failed: StepReport };

/** The listening sockets systemd passed, or the one-line reason there are none. */
function passedListeners(env: NodeJS.ProcessEnv, unit: string): Listeners {
  let fds;
  try {
    fds = takeActivationFds(env).filter((f) => f.kind === 'listening');
  } catch (err) {
    return { failed: { code: 1, lines: [`bad socket activation environment: ${(err as Error).message}`] } };
  }
  if (fds.length === 0) return { failed: { code: 1, lines: [`systemd passed no listening sockets (run by ${unit})`] } };
  return { fds, native: loadNative() };
}

/** Runs `step` on each socket; a step returns its line, or throws its reason. */
function onEach(fds: ActivatedFd[], step: (fd: number, name: string) => string): StepReport {
  let code = 0;
  const lines = fds.map(({ fd, name }) => {
    try {
      return `fd ${fd} (${name}): ${step(fd, name)}`;
    } catch (err) {
      code = 1;
      return `fd ${fd} (${name}): ${(err as Error).message}`;
    }
  });
  return { code, lines };
}

export function filterActivatedSockets(env: NodeJS.ProcessEnv = process.env): StepReport {
  const passed = passedListeners(env, 'epmd-ng-filter.service, with Sockets=epmd-ng.socket');
  if ('failed' in passed) return passed.failed;
  return onEach(passed.fds, (fd, name) => {
    const thisHostOnly = name === THIS_HOST_ONLY_FD_NAME;
    const outcome = applyFilter(fd, thisHostOnly, passed.native);
    if (!thisHostOnly) return 'serves every host, no filter';
    if (outcome.filtered) return 'this host only, filter attached';
    throw new Error(`cannot attach the filter: ${outcome.because ?? 'unknown'}`);
  });
}

/** How long the hand-over waits for the serving epmd to empty the accept queues. */
const DRAIN_LIMIT_MS = 5000;
/** After that, time for it to answer the connections it accepted last (it answers in microseconds). */
const SETTLE_MS = 250;
const POLL_MS = 10;

/**
 * The name systemd gives the sockets of erlang-base's epmd.socket (its unit sets no
 * FileDescriptorName=). Once epmd.socket is epmd-ng.socket's alias, a started hand-over would get
 * epmd-ng's own sockets, named otherwise (epmd-local, or a drop-in's name), and stopping it would
 * close them to new connections for good: it refuses them.
 */
export const ERLANG_BASE_FD_NAME = 'epmd.socket';

/**
 * `epmd-ng hand-over-sockets`: shares the passed sockets, says READY=1, and once `stopRequested`
 * settles closes them to new connections and waits for their queues to empty. Lines go to `say`
 * as they happen (the journal); the code is 1 when a socket could not be shared or closed.
 */
export async function handOverSockets(
  stopRequested: Promise<unknown>,
  say: (line: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const passed = passedListeners(env, 'epmd-ng-handover.service, with Sockets=epmd.socket');
  if ('failed' in passed) {
    passed.failed.lines.forEach(say);
    return passed.failed.code;
  }
  const { fds, native } = passed;
  const foreign = fds.filter((f) => f.name !== ERLANG_BASE_FD_NAME);
  if (foreign.length > 0) {
    say(`refusing to hand over ${foreign.map((f) => `fd ${f.fd} (${f.name})`).join(', ')}: not erlang-base's epmd.socket (is epmd.socket epmd-ng's own already?)`);
    return 1;
  }
  const shared = onEach(fds, (fd) => {
    native.setReusePort(fd);
    return 'SO_REUSEPORT set: a socket with ReusePort=yes can bind its port beside it';
  });
  shared.lines.forEach(say);
  if (shared.code !== 0) return shared.code;
  new Notifier(env).ready(`holding ${fds.length} socket(s) of epmd.socket open to new connections until stopped`);

  await stopRequested;
  const closed = onEach(fds, (fd) => {
    native.dropNewConnections(fd);
    return 'takes no new connections (their clients try again in 1 s)';
  });
  closed.lines.forEach(say);
  const started = Date.now();
  const queued = () => fds.reduce((n, { fd }) => n + (native.acceptQueueLength(fd) ?? 0), 0);
  while (queued() > 0 && Date.now() - started < DRAIN_LIMIT_MS) await sleep(POLL_MS);
  const left = queued();
  if (left > 0) {
    say(`${left} connection(s) still queued after ${DRAIN_LIMIT_MS} ms: the epmd serving these sockets does not accept them, and their clients will be reset when it stops`);
    return 1;
  }
  const drained = Date.now() - started;
  await sleep(SETTLE_MS);
  say(`accept queues empty after ${drained} ms: the epmd serving these sockets can stop`);
  return closed.code;
}
