import net from 'node:net';
import { RequestCode } from '../protocol/constants.js';
import type { ClientCommand } from './otp-args.js';

/** What a client command prints and its exit status; main writes stdout in one piece like OTP's stdio. */
export interface ClientOutcome {
  code: number;
  stdout: Buffer;
  stderr: string;
}

const NO_CONNECTION: ClientOutcome = { code: 1, stdout: Buffer.alloc(0), stderr: 'epmd: Cannot connect to local epmd\n' };

function connect(host: string, port: number): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', () => resolve(null));
  });
}

/**
 * Sends one framed request to the local epmd ([::1] first, then 127.0.0.1, as OTP's client does)
 * and reads until close. Like OTP's client it waits as long as the connection stays open, unless
 * given `timeoutMs`: then it gives up (failed, timedOut) on an epmd that accepts but does not answer.
 */
export async function ask(port: number, payload: Buffer, timeoutMs?: number): Promise<{ reply: Buffer; failed: boolean; timedOut: boolean } | null> {
  const socket = (await connect('::1', port)) ?? (await connect('127.0.0.1', port));
  if (!socket) return null;
  const header = Buffer.alloc(2);
  header.writeUInt16BE(payload.length);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let failed = false;
    let timedOut = false;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => ((timedOut = failed = true), socket.destroy()), timeoutMs);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => (failed = true));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ reply: Buffer.concat(chunks), failed, timedOut });
    });
    socket.write(Buffer.concat([header, payload]));
  });
}

const text = (s: string): Buffer => Buffer.from(s);

/** OTP's client prints this on a short answer; its buffer holds nothing by then, so always `<>`. */
const RESPONDED_WITH_NOTHING: ClientOutcome = { code: 1, stdout: text('epmd: local epmd responded with <>\n'), stderr: '' };

/** The stdout lines of OTP's `epmd -names` / `-dump`: a header with the port, then the reply as is. */
function listing(reply: Buffer): ClientOutcome {
  if (reply.length < 4) return { code: 1, stdout: text('epmd: no response from local epmd\n'), stderr: '' };
  const header = text(`epmd: up and running on port ${reply.readUInt32BE(0)} with data:\n`);
  return { code: 0, stdout: Buffer.concat([header, reply.subarray(4)]), stderr: '' };
}

/** Runs one of OTP's client commands against the epmd on `port` (spec §11.3). */
export async function runClientCommand(command: ClientCommand, port: number): Promise<ClientOutcome> {
  switch (command.name) {
    case 'names':
    case 'dump': {
      const answer = await ask(port, Buffer.from([command.name === 'names' ? RequestCode.NAMES_REQ : RequestCode.DUMP_REQ]));
      return answer ? listing(answer.reply) : NO_CONNECTION;
    }
    case 'started': {
      const answer = await ask(port, Buffer.from([RequestCode.NAMES_REQ]));
      return { code: answer && answer.reply.length >= 4 ? 0 : 1, stdout: Buffer.alloc(0), stderr: '' };
    }
    case 'kill': {
      const answer = await ask(port, Buffer.from([RequestCode.KILL_REQ]));
      if (!answer) return NO_CONNECTION;
      const { reply } = answer;
      if (reply.length >= 2) {
        return reply.subarray(0, 2).toString('latin1') === 'OK'
          ? { code: 0, stdout: text('Killed\n'), stderr: '' }
          : { code: 1, stdout: text('Killing not allowed - living nodes in database.\n'), stderr: '' };
      }
      if (answer.failed) return { code: 1, stdout: text('epmd: failed to read answer from local epmd\n'), stderr: '' };
      return RESPONDED_WITH_NOTHING;
    }
    case 'stop': {
      const name = Buffer.from(command.node);
      if (name.length > 1000) return { code: 1, stdout: text('epmd: Name too long!'), stderr: '' };
      const answer = await ask(port, Buffer.concat([Buffer.from([RequestCode.STOP_REQ]), name]));
      if (!answer) return NO_CONNECTION;
      const reply = answer.reply.subarray(0, 7);
      if (reply.length === 7) return { code: 0, stdout: Buffer.concat([reply, text('\n')]), stderr: '' };
      return RESPONDED_WITH_NOTHING;
    }
  }
}

export interface ListedNode {
  name: string;
  port: number;
  /** Restored from a snapshot, waiting for its node to register again (epmd-ng only). */
  provisional: boolean;
}

export interface NodeListing {
  port: number;
  nodes: ListedNode[];
}

export interface DumpListing {
  port: number;
  active: (ListedNode & { fd: number | null })[];
  unused: { name: string; port: number; fd: number }[];
}

/** Parses DUMP's NUL-separated records (spec §5.4, plus epmd-ng's provisional records). */
export function parseDump(reply: Buffer): DumpListing {
  const listing: DumpListing = { port: reply.readUInt32BE(0), active: [], unused: [] };
  for (const record of reply.subarray(4).toString('utf8').split('\0')) {
    const active = /^active name {5}<(.*)> at port (\d+), fd = (\d+)\n$/s.exec(record);
    if (active) listing.active.push({ name: active[1]!, port: Number(active[2]), fd: Number(active[3]), provisional: false });
    const provisional = /^provisional name <(.*)> at port (\d+)\n$/s.exec(record);
    if (provisional) listing.active.push({ name: provisional[1]!, port: Number(provisional[2]), fd: null, provisional: true });
    const unused = /^old\/unused name <(.*)>, port = (\d+), fd = (-?\d+) \n$/s.exec(record);
    if (unused) listing.unused.push({ name: unused[1]!, port: Number(unused[2]), fd: Number(unused[3]) });
  }
  return listing;
}

/**
 * `epmd-ng names --json` / `dump --json`. Both ask DUMP (the client is always local), so that the
 * node list can mark provisional entries, which the NAMES text cannot show.
 */
export async function runJsonQuery(what: 'names' | 'dump', port: number): Promise<ClientOutcome> {
  const answer = await ask(port, Buffer.from([RequestCode.DUMP_REQ]));
  if (!answer) return NO_CONNECTION;
  if (answer.reply.length < 4) return { code: 1, stdout: Buffer.alloc(0), stderr: 'epmd: no response from local epmd\n' };
  const dump = parseDump(answer.reply);
  const doc: NodeListing | DumpListing =
    what === 'names' ? { port: dump.port, nodes: dump.active.map(({ name, port: p, provisional }) => ({ name, port: p, provisional })) } : dump;
  return { code: 0, stdout: text(`${JSON.stringify(doc)}\n`), stderr: '' };
}
