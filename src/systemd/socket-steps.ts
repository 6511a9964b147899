// The short steps that small oneshot units run on listening sockets systemd holds (Sockets=),
// each with just the rights it needs, and that the hardened daemon could not do itself:
//
// - `epmd-ng socket-filter` (epmd-ng-filter.service): Linux 6.18 and later want CAP_NET_ADMIN to
//   attach a socket filter to a TCP socket. It gives epmd-ng.socket's sockets the filter their
//   name asks for; the filter then stays on the sockets in systemd's hands, for every later
//   incarnation of the daemon.
// - `epmd-ng share-sockets` (epmd-ng-handover.service, started by the package's first
//   installation): sets SO_REUSEPORT on the sockets of erlang-base's running epmd.socket, so that
//   epmd-ng.socket (ReusePort=yes) can bind port 4369 beside them before that epmd stops.
import { applyFilter, THIS_HOST_ONLY_FD_NAME } from '../server/listeners.js';
import { takeActivationFds } from './activation.js';
import { loadNative, type SdNative } from './native.js';

export interface StepReport {
  code: number;
  /** One line per socket, or the one-line reason for failing. */
  lines: string[];
}

/** Runs `step` on each listening socket systemd passed; a step returns its line, or throws its reason. */
function onEachListener(env: NodeJS.ProcessEnv, unit: string, step: (fd: number, name: string, native: SdNative) => string): StepReport {
  let fds;
  try {
    fds = takeActivationFds(env).filter((f) => f.kind === 'listening');
  } catch (err) {
    return { code: 1, lines: [`bad socket activation environment: ${(err as Error).message}`] };
  }
  if (fds.length === 0) return { code: 1, lines: [`systemd passed no listening sockets (run by ${unit})`] };
  const native = loadNative();
  let code = 0;
  const lines = fds.map(({ fd, name }) => {
    try {
      return `fd ${fd} (${name}): ${step(fd, name, native)}`;
    } catch (err) {
      code = 1;
      return `fd ${fd} (${name}): ${(err as Error).message}`;
    }
  });
  return { code, lines };
}

export function filterActivatedSockets(env: NodeJS.ProcessEnv = process.env): StepReport {
  return onEachListener(env, 'epmd-ng-filter.service, with Sockets=epmd-ng.socket', (fd, name, native) => {
    const thisHostOnly = name === THIS_HOST_ONLY_FD_NAME;
    const outcome = applyFilter(fd, thisHostOnly, native);
    if (!thisHostOnly) return 'serves every host, no filter';
    if (outcome.filtered) return 'this host only, filter attached';
    throw new Error(`cannot attach the filter: ${outcome.because ?? 'unknown'}`);
  });
}

export function shareActivatedSockets(env: NodeJS.ProcessEnv = process.env): StepReport {
  return onEachListener(env, 'epmd-ng-handover.service, with Sockets=epmd.socket', (fd, _name, native) => {
    native.setReusePort(fd);
    return 'SO_REUSEPORT set: a socket with ReusePort=yes can bind its port beside it';
  });
}
