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

/** Sends one framed request to the local epmd ([::1] first, then 127.0.0.1, as OTP's client does) and reads until close. */
async function ask(port: number, payload: Buffer): Promise<{ reply: Buffer; failed: boolean } | null> {
  const socket = (await connect('::1', port)) ?? (await connect('127.0.0.1', port));
  if (!socket) return null;
  const header = Buffer.alloc(2);
  header.writeUInt16BE(payload.length);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let failed = false;
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => (failed = true));
    socket.on('close', () => resolve({ reply: Buffer.concat(chunks), failed }));
    socket.write(Buffer.concat([header, payload]));
  });
}

const text = (s: string): Buffer => Buffer.from(s);

/** The stdout lines of OTP's `epmd -names` / `-dump`: a header with the port, then the reply as is. */
function listing(reply: Buffer): ClientOutcome {
  if (reply.length < 4) return { code: 1, stdout: Buffer.alloc(0), stderr: 'epmd: no response from local epmd\n' };
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
      return { code: 1, stdout: Buffer.concat([text('epmd: local epmd responded with <'), reply, text('>\n')]), stderr: '' };
    }
    case 'stop': {
      const name = Buffer.from(command.node);
      if (name.length > 1000) return { code: 1, stdout: text('epmd: Name too long!'), stderr: '' };
      const answer = await ask(port, Buffer.concat([Buffer.from([RequestCode.STOP_REQ]), name]));
      if (!answer) return NO_CONNECTION;
      const reply = answer.reply.subarray(0, 7);
      if (reply.length === 7) return { code: 0, stdout: Buffer.concat([reply, text('\n')]), stderr: '' };
      return { code: 1, stdout: Buffer.concat([text('epmd: local epmd responded with <'), reply, text('>\n')]), stderr: '' };
    }
  }
}

export interface NodeListing {
  port: number;
  nodes: { name: string; port: number }[];
}

/** Parses `epmd -names` output lines for --json. */
export function parseNames(reply: Buffer): NodeListing {
  const nodes: { name: string; port: number }[] = [];
  for (const line of reply.subarray(4).toString('utf8').split('\n')) {
    const m = /^name (.*) at port (\d+)$/.exec(line);
    if (m) nodes.push({ name: m[1]!, port: Number(m[2]) });
  }
  return { port: reply.readUInt32BE(0), nodes };
}

export interface DumpListing {
  port: number;
  active: { name: string; port: number; fd: number }[];
  unused: { name: string; port: number; fd: number }[];
}

/** Parses DUMP's NUL-separated records for --json. */
export function parseDump(reply: Buffer): DumpListing {
  const listing: DumpListing = { port: reply.readUInt32BE(0), active: [], unused: [] };
  for (const record of reply.subarray(4).toString('utf8').split('\0')) {
    const active = /^active name {5}<(.*)> at port (\d+), fd = (\d+)\n$/s.exec(record);
    if (active) listing.active.push({ name: active[1]!, port: Number(active[2]), fd: Number(active[3]) });
    const unused = /^old\/unused name <(.*)>, port = (\d+), fd = (\d+) \n$/s.exec(record);
    if (unused) listing.unused.push({ name: unused[1]!, port: Number(unused[2]), fd: Number(unused[3]) });
  }
  return listing;
}

/** `epmd-ng names --json` / `dump --json`: the same requests, printed as one JSON document. */
export async function runJsonQuery(what: 'names' | 'dump', port: number): Promise<ClientOutcome> {
  const answer = await ask(port, Buffer.from([what === 'names' ? RequestCode.NAMES_REQ : RequestCode.DUMP_REQ]));
  if (!answer) return NO_CONNECTION;
  if (answer.reply.length < 4) return { code: 1, stdout: Buffer.alloc(0), stderr: 'epmd: no response from local epmd\n' };
  const doc = what === 'names' ? parseNames(answer.reply) : parseDump(answer.reply);
  return { code: 0, stdout: text(`${JSON.stringify(doc)}\n`), stderr: '' };
}
