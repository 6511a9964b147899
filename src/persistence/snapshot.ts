/**
 * The on-disk format of a registry snapshot: a small JSON document, versioned so that a newer
 * epmd-ng's file is recognised (and set aside) by an older one instead of being misread.
 *
 * Names and extras are arbitrary bytes (the protocol does not force extras to be UTF-8), so they are
 * stored as base64 and come back byte for byte. This module only encodes and validates; it knows
 * nothing about what the registry does with a snapshot and does no I/O.
 */

import { MAX_SYMBOL_BYTES } from '../protocol/constants.js';
import type { NodeInfo } from '../protocol/requests.js';

export const SNAPSHOT_FORMAT = 'epmd-ng-registry';
export const SNAPSHOT_VERSION = 1;

/** Longest node name and extra epmd accepts (MAXSYMLEN). */
const MAX_U32 = 0xffff_ffff;
/** A boot id is a 36-character UUID; anything far longer is not one. */
const MAX_BOOT_ID_CHARS = 128;

/** A registration as saved: what the node registered, and its creation. */
export interface SnapshotNode extends NodeInfo {
  creation: number;
  /**
   * Set for an entry that was already provisional (restored without its connection): when its time
   * is up, in milliseconds since the epoch. A later start keeps that time rather than granting a
   * fresh TTL, so restarts in a row cannot keep an entry alive.
   */
  provisionalUntil?: number;
}

export interface SnapshotUnused {
  name: Buffer;
  port: number;
  creation: number;
}

export interface Snapshot {
  version: 1;
  /** /proc/sys/kernel/random/boot_id when saved ('' if unknown): tells a restart from a reboot. */
  bootId: string;
  /** Milliseconds since the epoch. */
  savedAt: number;
  /** Oldest registration first. */
  nodes: SnapshotNode[];
  /** Oldest first. */
  unused: SnapshotUnused[];
  creationCeiling: number;
}

export type DecodeResult = { ok: true; snapshot: Snapshot } | { ok: false; reason: string };

/**
 * Serialises a snapshot. The result is checked with the same rules decodeSnapshot applies, so a
 * file this function produced can always be read back; a snapshot that breaks them (a bug in the
 * caller) throws a TypeError rather than being written and then discarded at the next start.
 */
export function encodeSnapshot(s: Snapshot): Buffer {
  const doc = {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    bootId: s.bootId,
    savedAt: s.savedAt,
    creationCeiling: s.creationCeiling,
    nodes: s.nodes.map((n) => ({
      name: n.name.toString('base64'),
      port: n.port,
      nodeType: n.nodeType,
      protocol: n.protocol,
      highestVersion: n.highestVersion,
      lowestVersion: n.lowestVersion,
      extra: n.extra.toString('base64'),
      creation: n.creation,
      ...(n.provisionalUntil === undefined ? {} : { provisionalUntil: n.provisionalUntil }),
    })),
    unused: s.unused.map((u) => ({ name: u.name.toString('base64'), port: u.port, creation: u.creation })),
  };
  try {
    fromDocument(doc);
  } catch (err) {
    if (err instanceof Invalid) throw new TypeError(`refusing to encode an invalid snapshot: ${err.message}`);
    throw err;
  }
  return Buffer.from(JSON.stringify(doc) + '\n', 'utf8');
}

/** Parses and validates a snapshot file's bytes. Never throws; failures carry a one-line reason. */
export function decodeSnapshot(bytes: Buffer): DecodeResult {
  try {
    if (bytes.length === 0) return fail('file is empty');
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return fail('file is not valid UTF-8 text');
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      return fail(`not valid JSON (truncated or corrupt): ${(err as Error).message}`);
    }
    return { ok: true, snapshot: fromDocument(doc) };
  } catch (err) {
    if (err instanceof Invalid) return fail(err.message);
    // Only a bug here could get this far; still honour "never throws".
    return fail(`unexpected error while decoding: ${String(err)}`);
  }
}

/** A validation failure; the message is the reason shown to the operator. */
class Invalid extends Error {}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason: oneLine(reason) };
}

/** Reasons end up in a single log line: no control characters, bounded length. */
function oneLine(s: string): string {
  const flat = s.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return flat.length > 300 ? `${flat.slice(0, 300)}…` : flat;
}

/** A value as it appears in a reason: short and on one line. */
function show(v: unknown): string {
  if (v === undefined) return 'missing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(obj: Record<string, unknown>, key: string, where: string, max: number): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new Invalid(`${where}${key} must be an integer, got ${show(v)}`);
  }
  if (v < 0 || v > max) throw new Invalid(`${where}${key} ${v} is out of range 0..${max}`);
  return v;
}

function bytesField(obj: Record<string, unknown>, key: string, where: string): Buffer {
  const v = obj[key];
  if (typeof v !== 'string') throw new Invalid(`${where}${key} must be a base64 string, got ${show(v)}`);
  const buf = Buffer.from(v, 'base64');
  // Node's base64 decoder skips characters it does not know; insisting on the canonical form
  // catches damaged text instead of silently turning it into different bytes.
  if (buf.toString('base64') !== v) throw new Invalid(`${where}${key} is not canonical base64`);
  if (buf.length > MAX_SYMBOL_BYTES) {
    throw new Invalid(`${where}${key} is ${buf.length} bytes, more than the limit of ${MAX_SYMBOL_BYTES}`);
  }
  return buf;
}

function list(doc: Record<string, unknown>, key: string): Record<string, unknown>[] {
  const v = doc[key];
  if (!Array.isArray(v)) throw new Invalid(`${key} must be an array, got ${show(v)}`);
  return v.map((item, i) => {
    if (!isRecord(item)) throw new Invalid(`${key}[${i}] must be an object, got ${show(item)}`);
    return item;
  });
}

/** Validates a parsed document and converts it into a Snapshot; throws Invalid. */
function fromDocument(doc: unknown): Snapshot {
  if (!isRecord(doc)) throw new Invalid(`top level must be a JSON object, got ${show(doc)}`);
  if (doc.format !== SNAPSHOT_FORMAT) {
    throw new Invalid(`not an epmd-ng registry snapshot (format is ${show(doc.format)})`);
  }
  // The version is checked before anything else about the layout: a newer format may differ in
  // every other field, and the operator should learn that rather than about a missing field.
  const version = doc.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    throw new Invalid(`snapshot version ${show(version)} is not valid`);
  }
  if (version > SNAPSHOT_VERSION) {
    throw new Invalid(`snapshot version ${version} is newer than this epmd-ng understands`);
  }

  const bootId = doc.bootId;
  if (typeof bootId !== 'string' || bootId.length > MAX_BOOT_ID_CHARS) {
    throw new Invalid(`bootId must be a string of at most ${MAX_BOOT_ID_CHARS} characters, got ${show(bootId)}`);
  }
  const savedAt = int(doc, 'savedAt', '', Number.MAX_SAFE_INTEGER);
  const creationCeiling = int(doc, 'creationCeiling', '', MAX_U32);

  // The registry keys names byte-exactly (latin1 maps bytes one to one), so duplicates are
  // compared the same way. A name is either registered or unused, never both.
  const seen = new Map<string, string>();
  const claim = (name: Buffer, where: string): void => {
    const key = name.toString('latin1');
    const first = seen.get(key);
    if (first !== undefined) throw new Invalid(`${where} has the same name as ${first} (${show(key)})`);
    seen.set(key, where);
  };

  const nodes = list(doc, 'nodes').map((n, i): SnapshotNode => {
    const where = `nodes[${i}].`;
    const node: SnapshotNode = {
      name: bytesField(n, 'name', where),
      port: int(n, 'port', where, 0xffff),
      nodeType: int(n, 'nodeType', where, 0xff),
      protocol: int(n, 'protocol', where, 0xff),
      highestVersion: int(n, 'highestVersion', where, 0xffff),
      lowestVersion: int(n, 'lowestVersion', where, 0xffff),
      extra: bytesField(n, 'extra', where),
      creation: int(n, 'creation', where, MAX_U32),
    };
    if (n.provisionalUntil !== undefined) node.provisionalUntil = int(n, 'provisionalUntil', where, Number.MAX_SAFE_INTEGER);
    claim(node.name, `nodes[${i}]`);
    return node;
  });
  const unused = list(doc, 'unused').map((u, i): SnapshotUnused => {
    const where = `unused[${i}].`;
    const entry: SnapshotUnused = {
      name: bytesField(u, 'name', where),
      port: int(u, 'port', where, 0xffff),
      creation: int(u, 'creation', where, MAX_U32),
    };
    claim(entry.name, `unused[${i}]`);
    return entry;
  });

  // Unknown keys are ignored on purpose: an optional field added later need not bump the version.
  return { version: SNAPSHOT_VERSION, bootId, savedAt, nodes, unused, creationCeiling };
}
