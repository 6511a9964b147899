// `epmd-ng take-over --state-dir DIR`: before epmd-ng replaces another epmd on the same port (the
// package's first installation over erlang-base's running epmd), records every node that epmd
// serves in epmd-ng's snapshot. epmd-ng's first start then serves them at once as provisional
// entries: OTP nodes register again by themselves moments later, and the probes keep a node that
// never registers again (a C node) while it answers on its port.
import fs from 'node:fs';
import { ReplyCode, RequestCode } from '../protocol/constants.js';
import { decodeNodeInfo } from '../protocol/replies.js';
import { readBootId, SnapshotStore } from '../persistence/snapshot-store.js';
import type { SnapshotNode } from '../persistence/snapshot.js';
import { UNKNOWN_CREATION } from '../registry/registry.js';
import { ask, type ClientOutcome } from './client.js';

/**
 * How long take-over waits for each answer. It runs in the package's postinst, which must not hang
 * on an epmd that accepts connections but cannot answer (stopped, or stuck).
 */
export const TAKE_OVER_TIMEOUT_MS = 5000;

/** The registrations the epmd on `port` serves (NAMES, then PORT_PLEASE2 for each name), or why there are none to take. */
async function registrations(port: number): Promise<SnapshotNode[] | 'no answer' | 'timed out'> {
  const names = await ask(port, Buffer.from([RequestCode.NAMES_REQ]), TAKE_OVER_TIMEOUT_MS);
  if (names?.timedOut) return 'timed out';
  if (!names || names.reply.length < 4) return 'no answer';
  const nodes: SnapshotNode[] = [];
  for (const m of names.reply.subarray(4).toString('latin1').matchAll(/^name (.*) at port \d+$/gm)) {
    const name = Buffer.from(m[1]!, 'latin1');
    const answer = await ask(port, Buffer.concat([Buffer.from([RequestCode.PORT_PLEASE2_REQ]), name]), TAKE_OVER_TIMEOUT_MS);
    if (answer?.timedOut) return 'timed out';
    const reply = answer?.reply;
    const info = reply && reply[0] === ReplyCode.PORT2_RESP && reply[1] === 0 ? decodeNodeInfo(reply.subarray(2)) : undefined;
    // Gone between the two requests: nothing to keep.
    if (info) nodes.push({ ...info, creation: UNKNOWN_CREATION });
  }
  return nodes;
}

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/**
 * Writes the registrations of the epmd on `port` into the snapshot in `dir`, keeping what an
 * earlier snapshot there remembers (creation counters, old names). Nothing answering is not an
 * error: there is nothing to take over.
 */
export async function takeOver(port: number, dir: string): Promise<ClientOutcome> {
  const nodes = await registrations(port);
  if (nodes === 'no answer') return { code: 0, stdout: Buffer.alloc(0), stderr: `epmd-ng: no epmd answers on port ${port}; nothing to take over\n` };
  if (nodes === 'timed out') {
    return { code: 0, stdout: Buffer.alloc(0), stderr: `epmd-ng: the epmd on port ${port} accepts but did not answer within ${TAKE_OVER_TIMEOUT_MS / 1000} s; nothing taken over (its nodes register with epmd-ng once it has stopped)\n` };
  }
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
  if (!saved) return { code: 1, stdout: Buffer.alloc(0), stderr: `epmd-ng: cannot write the snapshot in ${dir}: ${store.lastError}\n` };
  const listed = nodes.map((n) => n.name.toString('latin1')).join(', ');
  return { code: 0, stdout: Buffer.alloc(0), stderr: `epmd-ng: took over ${nodes.length} node${nodes.length === 1 ? '' : 's'} from the epmd on port ${port}${listed ? `: ${listed}` : ''}\n` };
}
