// `epmd-ng socket-filter`: what epmd-ng-filter.service runs. Linux 6.18 and later want
// CAP_NET_ADMIN to attach a socket filter to a TCP socket, which the hardened daemon does not have;
// this short-lived step has that one capability, takes the same sockets from systemd (Sockets=),
// gives each the filter its name asks for, and exits. The filter then stays on the sockets in
// systemd's hands, for every later incarnation of the daemon.
import { applyFilter, THIS_HOST_ONLY_FD_NAME } from '../server/listeners.js';
import { takeActivationFds } from './activation.js';
import { loadNative } from './native.js';

export interface FilterReport {
  code: number;
  /** One line per socket, or the one-line reason for failing. */
  lines: string[];
}

export function filterActivatedSockets(env: NodeJS.ProcessEnv = process.env): FilterReport {
  let fds;
  try {
    fds = takeActivationFds(env).filter((f) => f.kind === 'listening');
  } catch (err) {
    return { code: 1, lines: [`bad socket activation environment: ${(err as Error).message}`] };
  }
  if (fds.length === 0) return { code: 1, lines: ['systemd passed no listening sockets (run by epmd-ng-filter.service, with Sockets=epmd-ng.socket)'] };
  const native = loadNative();
  let code = 0;
  const lines = fds.map(({ fd, name }) => {
    const thisHostOnly = name === THIS_HOST_ONLY_FD_NAME;
    const outcome = applyFilter(fd, thisHostOnly, native);
    if (!thisHostOnly) return `fd ${fd} (${name}): serves every host, no filter`;
    if (outcome.filtered) return `fd ${fd} (${name}): this host only, filter attached`;
    code = 1;
    return `fd ${fd} (${name}): cannot attach the filter: ${outcome.because ?? 'unknown'}`;
  });
  return { code, lines };
}
