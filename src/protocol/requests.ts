import { MAX_LOOKUP_NAME_CHARS, MAX_NAME_CHARS, MAX_SYMBOL_BYTES, RequestCode, STATUS_VERSION } from './constants.js';
import { keepable } from './own-copy.js';
import { countCodePoints, isPlainAscii, isStrictUtf8 } from './utf8.js';

/** What a node registers: every field is stored and echoed back verbatim in PORT2_RESP. */
export interface NodeInfo {
  name: Buffer;
  port: number;
  nodeType: number;
  protocol: number;
  highestVersion: number;
  lowestVersion: number;
  extra: Buffer;
}

export interface Alive2Request extends NodeInfo {
  type: 'alive2';
  /**
   * Set when the registration must fail with an error reply (name too long, bad encoding,
   * extra too long); the connection still becomes a registration connection (spec §5.1).
   */
  rejection?: string;
}

export type Request =
  | Alive2Request
  | { type: 'port-please2'; name: Buffer }
  | { type: 'names' }
  | { type: 'dump' }
  | { type: 'kill' }
  | { type: 'stop'; name: Buffer }
  | { type: 'status' };

export type RequestType = Request['type'];

/** A request the server drops by closing the connection without a reply; `reason` is for the log. */
export interface Malformed {
  type: 'malformed';
  request: RequestType | 'unknown';
  reason: string;
}

const typeByCode = new Map<number, RequestType>([
  [RequestCode.ALIVE2_REQ, 'alive2'],
  [RequestCode.PORT_PLEASE2_REQ, 'port-please2'],
  [RequestCode.NAMES_REQ, 'names'],
  [RequestCode.DUMP_REQ, 'dump'],
  [RequestCode.KILL_REQ, 'kill'],
  [RequestCode.STOP_REQ, 'stop'],
  [RequestCode.STATUS_REQ, 'status'],
]);

const NO_EXTRA = Buffer.alloc(0);

/** The request type named by a payload's first byte, or undefined for codes epmd ignores. */
export function requestTypeOf(payload: Buffer): RequestType | undefined {
  return payload.length > 0 ? typeByCode.get(payload[0]!) : undefined;
}

/** Only peers on this host may register, dump, kill or stop (spec §7), or ask for the status. */
export function isLocalOnly(type: RequestType): boolean {
  return type === 'alive2' || type === 'dump' || type === 'kill' || type === 'stop' || type === 'status';
}

/** Decodes one frame payload (spec §5), applying every validation OTP applies, in OTP's order. */
export function decodeRequest(payload: Buffer): Request | Malformed {
  const type = requestTypeOf(payload);
  switch (type) {
    case 'alive2':
      return decodeAlive2(payload);
    case 'port-please2':
      return decodePortPlease2(payload);
    case 'stop':
      if (payload.length <= 1) return malformed('stop', `packet too small for STOP_REQ (${payload.length})`);
      return { type: 'stop', name: untilNul(payload.subarray(1)) };
    case 'names':
    case 'dump':
    case 'kill':
      return { type };
    case 'status':
      // Exactly `S` + version: a newer client asking for a layout this daemon does not know gets
      // no reply rather than a document it would misread.
      if (payload.length !== 2 || payload[1] !== STATUS_VERSION) return malformed('status', `unsupported STATUS_REQ (${payload.length} bytes, version ${payload[1] ?? 'none'})`);
      return { type };
    default:
      return malformed('unknown', `unknown request code ${payload[0] ?? 'none'}`);
  }
}

function malformed(request: RequestType | 'unknown', reason: string): Malformed {
  return { type: 'malformed', request, reason };
}

function untilNul(bytes: Buffer): Buffer {
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

function decodeAlive2(p: Buffer): Alive2Request | Malformed {
  // 13 bytes would be an empty name with an empty extra; OTP demands at least one more byte.
  if (p.length <= 13) return malformed('alive2', `packet too small for ALIVE2_REQ (${p.length})`);
  const nameLength = p.readUInt16BE(9);
  if (13 + nameLength > p.length) return malformed('alive2', 'node name size error in ALIVE2_REQ');
  const extraLength = p.readUInt16BE(11 + nameLength);
  if (13 + nameLength + extraLength > p.length) return malformed('alive2', 'extra size error in ALIVE2_REQ');
  const name = p.subarray(11, 11 + nameLength);
  // One JavaScript loop passes the usual all-ASCII name; only another is searched for a NUL.
  const plain = isPlainAscii(name);
  if (!plain && name.includes(0)) return malformed('alive2', 'node name contains NUL in ALIVE2_REQ');
  const request: Alive2Request = {
    type: 'alive2',
    port: p.readUInt16BE(1),
    nodeType: p[3]!,
    protocol: p[4]!,
    highestVersion: p.readUInt16BE(5),
    lowestVersion: p.readUInt16BE(7),
    // The registration keeps both for as long as the node lives (see keepable).
    name: keepable(name),
    // Most nodes register no extra: they all share one empty buffer (never written to).
    extra: extraLength === 0 ? NO_EXTRA : keepable(p.subarray(13 + nameLength, 13 + nameLength + extraLength)),
  };
  const rejection = nameRejection(name, plain) ?? (extraLength > MAX_SYMBOL_BYTES ? `extra data is too long (${extraLength})` : undefined);
  if (rejection) request.rejection = rejection;
  return request;
}

/** Why a name without NUL cannot be registered, if it cannot; `plain`: it is all ASCII. */
function nameRejection(name: Buffer, plain: boolean): string | undefined {
  if (name.length > MAX_SYMBOL_BYTES) return `node name is too long (${name.length} bytes)`;
  if (!plain && !isStrictUtf8(name)) return 'invalid node name encoding';
  const chars = plain ? name.length : countCodePoints(name);
  if (chars > MAX_NAME_CHARS) return `node name is too long (${chars} characters)`;
  return undefined;
}

function decodePortPlease2(p: Buffer): Request | Malformed {
  // Old clients sent a trailing NUL; OTP drops one before looking at the name.
  const end = p[p.length - 1] === 0 ? p.length - 1 : p.length;
  const name = p.subarray(1, end);
  if (name.length === 0) return malformed('port-please2', 'empty node name in PORT2_REQ');
  const plain = isPlainAscii(name);
  if (!plain) {
    if (name.includes(0)) return malformed('port-please2', 'node name contains NUL in PORT2_REQ');
    if (!isStrictUtf8(name)) return malformed('port-please2', 'invalid node name in PORT2_REQ');
  }
  if ((plain ? name.length : countCodePoints(name)) > MAX_LOOKUP_NAME_CHARS) return malformed('port-please2', 'invalid node name in PORT2_REQ');
  // A view into the request's bytes, not a copy: a lookup holds the name only while it is answered.
  return { type: 'port-please2', name };
}
