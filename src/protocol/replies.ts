import { ERROR_CREATION, ReplyCode } from './constants.js';
import type { NodeInfo } from './requests.js';

/**
 * ALIVE2 reply. Nodes announcing distribution version 6 or later get the 32-bit form (`v`),
 * older ones the 16-bit form (`y`) (spec §5.1 step 7); `creation` is already the value for that
 * form (see creationFor in the registry).
 */
export function encodeAlive2Reply(ok: boolean, creation: number, highestVersion: number): Buffer {
  // allocUnsafe: a slice of Node's shared pool rather than a memory block of its own per reply;
  // every byte is written below.
  if (highestVersion >= 6) {
    const reply = Buffer.allocUnsafe(6);
    reply[0] = ReplyCode.ALIVE2_X_RESP;
    reply[1] = ok ? 0 : 1;
    reply.writeUInt32BE(ok ? creation >>> 0 : ERROR_CREATION, 2);
    return reply;
  }
  const reply = Buffer.allocUnsafe(4);
  reply[0] = ReplyCode.ALIVE2_RESP;
  reply[1] = ok ? 0 : 1;
  reply.writeUInt16BE(ok ? creation & 0xffff : ERROR_CREATION, 2);
  return reply;
}

/** Bytes of a registration in the PORT2_RESP layout (see writeNodeInfo). */
function nodeInfoLength(node: NodeInfo): number {
  return 12 + node.name.length + node.extra.length;
}

/**
 * A registration in the layout PORT2_RESP echoes it: port, type, protocol, highest and lowest
 * version, then name and extra, each with a 2-byte length. Also how the fd store records it.
 */
function writeNodeInfo(node: NodeInfo, out: Buffer, at: number): void {
  out.writeUInt16BE(node.port, at);
  out[at + 2] = node.nodeType;
  out[at + 3] = node.protocol;
  out.writeUInt16BE(node.highestVersion, at + 4);
  out.writeUInt16BE(node.lowestVersion, at + 6);
  out.writeUInt16BE(node.name.length, at + 8);
  node.name.copy(out, at + 10);
  out.writeUInt16BE(node.extra.length, at + 10 + node.name.length);
  node.extra.copy(out, at + 12 + node.name.length);
}

export function encodeNodeInfo(node: NodeInfo): Buffer {
  const out = Buffer.allocUnsafe(nodeInfoLength(node));
  writeNodeInfo(node, out, 0);
  return out;
}

/** The inverse of encodeNodeInfo; undefined unless `bytes` is exactly one well-formed record. */
export function decodeNodeInfo(bytes: Buffer): NodeInfo | undefined {
  if (bytes.length < 12) return undefined;
  const nameLength = bytes.readUInt16BE(8);
  if (bytes.length < 12 + nameLength || bytes.length !== 12 + nameLength + bytes.readUInt16BE(10 + nameLength)) return undefined;
  return {
    port: bytes.readUInt16BE(0),
    nodeType: bytes[2]!,
    protocol: bytes[3]!,
    highestVersion: bytes.readUInt16BE(4),
    lowestVersion: bytes.readUInt16BE(6),
    name: Buffer.from(bytes.subarray(10, 10 + nameLength)),
    extra: Buffer.from(bytes.subarray(12 + nameLength)),
  };
}

const PORT2_NOT_FOUND = Buffer.from([ReplyCode.PORT2_RESP, 1]);

/** PORT2_RESP: the node's registration echoed back, or result 1 when the name is unknown. */
export function encodePort2Reply(node: NodeInfo | undefined): Buffer {
  if (!node) return PORT2_NOT_FOUND;
  const out = Buffer.allocUnsafe(2 + nodeInfoLength(node));
  out[0] = ReplyCode.PORT2_RESP;
  out[1] = 0;
  writeNodeInfo(node, out, 2);
  return out;
}

export interface NamedPort {
  name: Buffer;
  port: number;
}

export interface DumpEntry extends NamedPort {
  /** Connection number shown as "fd" (OTP prints the socket's file descriptor). */
  fd: number;
}

/**
 * Text replies are built as (prefix, name bytes, suffix) lines and copied into one buffer of the
 * exact size: no intermediate buffer per line (a NAMES reply for 10,000 nodes is one allocation).
 */
class TextReply {
  private readonly texts: string[] = [];
  private readonly names: Buffer[] = [];
  private length = 4;

  line(prefix: string, name: Buffer, suffix: string): void {
    this.texts.push(prefix, suffix);
    this.names.push(name);
    // The fixed texts are ASCII: one byte per character.
    this.length += prefix.length + name.length + suffix.length;
  }

  finish(epmdPort: number): Buffer {
    const out = Buffer.allocUnsafe(this.length);
    out.writeUInt32BE(epmdPort >>> 0, 0);
    let at = 4;
    for (let i = 0; i < this.names.length; i++) {
      at += out.write(this.texts[2 * i]!, at, 'latin1');
      at += this.names[i]!.copy(out, at);
      at += out.write(this.texts[2 * i + 1]!, at, 'latin1');
    }
    return out;
  }
}

/** NAMES reply: the epmd port, then one `name N at port P` line per node (spec §5.3). */
export function encodeNamesReply(epmdPort: number, nodes: Iterable<NamedPort>): Buffer {
  const reply = new TextReply();
  for (const node of nodes) reply.line('name ', node.name, ` at port ${node.port}\n`);
  return reply.finish(epmdPort);
}

/**
 * DUMP reply: active then old/unused entries, each text record followed by a NUL (spec §5.4).
 * Entries restored without their connection (epmd-ng only) come between the two, marked
 * `provisional name`.
 */
export function encodeDumpReply(
  epmdPort: number,
  active: Iterable<DumpEntry>,
  unused: Iterable<DumpEntry>,
  provisional: Iterable<NamedPort> = [],
): Buffer {
  const reply = new TextReply();
  for (const e of active) reply.line('active name     <', e.name, `> at port ${e.port}, fd = ${e.fd}\n\0`);
  for (const e of provisional) reply.line('provisional name <', e.name, `> at port ${e.port}\n\0`);
  for (const e of unused) reply.line('old/unused name <', e.name, `>, port = ${e.port}, fd = ${e.fd} \n\0`);
  return reply.finish(epmdPort);
}

export const KILL_OK = Buffer.from('OK');
export const KILL_REFUSED = Buffer.from('NO');
export const STOP_DONE = Buffer.from('STOPPED');
/** OTP falls through after NOEXIST and also sends STOPPED; its client reads only 7 bytes. */
export const STOP_UNKNOWN = Buffer.from('NOEXISTSTOPPED');

/** STATUS_REQ's reply: the status document as one line of JSON, then the connection closes. */
export function encodeStatusReply(document: object): Buffer {
  return Buffer.from(`${JSON.stringify(document)}\n`);
}
