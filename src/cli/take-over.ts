// `epmd-ng take-over --state-dir DIR`: before epmd-ng replaces another epmd on the same port (the
// package's first installation over erlang-base's running epmd), records every node that epmd
// serves in epmd-ng's snapshot. epmd-ng's first start then serves them at once as provisional
// entries: OTP nodes register again by themselves moments later, and the probes keep a node that
// never registers again (a C node) while it answers on its port.
// With --share-port-of PID it also sets SO_REUSEPORT on that epmd's listening sockets, so that
// epmd-ng's socket unit (ReusePort=yes) can bind the port while that epmd still serves it: the port
// never closes during the switch.
import fs from 'node:fs';
import { ReplyCode, RequestCode } from '../protocol/constants.js';
import { decodeNodeInfo } from '../protocol/replies.js';
import { readBootId, SnapshotStore } from '../persistence/snapshot-store.js';
import type { SnapshotNode } from '../persistence/snapshot.js';
import { UNKNOWN_CREATION } from '../registry/registry.js';
import { loadNative } from '../systemd/native.js';
import { ask, type ClientOutcome } from './client.js';

/** The registrations the epmd on `port` serves: NAMES, then PORT_PLEASE2 for each name. */
async function registrations(port: number): Promise<SnapshotNode[] | null> {
  const names = await ask(port, Buffer.from([RequestCode.NAMES_REQ]));
  if (!names || names.reply.length < 4) return null;
  const nodes: SnapshotNode[] = [];
  for (const m of names.reply.subarray(4).toString('latin1').matchAll(/^name (.*) at port \d+$/gm)) {
    const name = Buffer.from(m[1]!, 'latin1');
    const answer = await ask(port, Buffer.concat([Buffer.from([RequestCode.PORT_PLEASE2_REQ]), name]));
    const reply = answer?.reply;
    const info = reply && reply[0] === ReplyCode.PORT2_RESP && reply[1] === 0 ? decodeNodeInfo(reply.subarray(2)) : undefined;
    // Gone between the two requests: nothing to keep.
    if (info) nodes.push({ ...info, creation: UNKNOWN_CREATION });
  }
  return nodes;
}

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/**
 * The inodes of the TCP sockets listening on `port` in the text of /proc/net/tcp or /proc/net/tcp6
 * (columns: sl, local address:port in hex, remote, state with 0A = LISTEN, ..., inode tenth).
 */
export function listeningInodes(procNetTcp: string, port: number): string[] {
  const inodes: string[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 10 || cols[3] !== '0A') continue;
    if (Number.parseInt(cols[1]!.split(':')[1] ?? '', 16) === port) inodes.push(cols[9]!);
  }
  return inodes;
}

/** The descriptors of process `pid` that are TCP sockets listening on `port`. */
function listeningFdsOf(pid: number, port: number): number[] {
  const inodes = new Set(['tcp', 'tcp6'].flatMap((f) => {
    try {
      return listeningInodes(fs.readFileSync(`/proc/${pid}/net/${f}`, 'latin1'), port);
    } catch {
      return []; // no IPv6 on this host
    }
  }));
  const fds: number[] = [];
  for (const entry of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${entry}`);
    } catch {
      continue; // closed meanwhile
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode && inodes.has(inode)) fds.push(Number(entry));
  }
  return fds;
}

/** Sets SO_REUSEPORT on every socket of process `pid` listening on `port`; one line saying what happened. */
export function sharePort(pid: number, port: number): { ok: boolean; line: string } {
  let fds: number[];
  try {
    fds = listeningFdsOf(pid, port);
  } catch (err) {
    return { ok: false, line: `cannot share port ${port} of process ${pid}: ${(err as Error).message}` };
  }
  if (fds.length === 0) return { ok: false, line: `cannot share port ${port} of process ${pid}: it has no socket listening on that port` };
  try {
    const native = loadNative();
    for (const fd of fds) native.shareListeningSocket(pid, fd);
  } catch (err) {
    return { ok: false, line: `cannot share port ${port} of process ${pid}: ${(err as Error).message}` };
  }
  return { ok: true, line: `port ${port} of process ${pid} is shared (SO_REUSEPORT on ${fds.length} listening socket${fds.length === 1 ? '' : 's'}): epmd-ng's socket can bind beside it` };
}

/**
 * Writes the registrations of the epmd on `port` into the snapshot in `dir`, keeping what an
 * earlier snapshot there remembers (creation counters, old names). Nothing answering is not an
 * error: there is nothing to take over.
 */
export async function takeOver(port: number, dir: string, sharePortOf?: number): Promise<ClientOutcome> {
  // Sharing is best effort: without it the switch closes the port for a moment, as it always did.
  const shared = sharePortOf === undefined ? '' : `epmd-ng: ${sharePort(sharePortOf, port).line}\n`;
  const nodes = await registrations(port);
  if (!nodes) return { code: 0, stdout: Buffer.alloc(0), stderr: `${shared}epmd-ng: no epmd answers on port ${port}; nothing to take over\n` };
  // Where systemd puts a DynamicUser= service's StateDirectory= (it hands it over at start).
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const store = new SnapshotStore({ dir, log: quiet });
  const earlier = store.load();
  const kept = earlier.kind === 'loaded' ? earlier.snapshot : undefined;
  const saved = store.flush(() => ({
    version: 1,
    bootId: readBootId(),
    savedAt: Date.now(),
    nodes,
    unused: kept?.unused ?? [],
    creationCeiling: kept?.creationCeiling ?? 0,
  }));
  store.close();
  if (!saved) return { code: 1, stdout: Buffer.alloc(0), stderr: `${shared}epmd-ng: cannot write the snapshot in ${dir}: ${store.lastError}\n` };
  const listed = nodes.map((n) => n.name.toString('latin1')).join(', ');
  return { code: 0, stdout: Buffer.alloc(0), stderr: `${shared}epmd-ng: took over ${nodes.length} node${nodes.length === 1 ? '' : 's'} from the epmd on port ${port}${listed ? `: ${listed}` : ''}\n` };
}
