// Property-based tests of the wire codec (fast-check): arbitrary streams and chunkings, the frame
// reader against a model of OTP's, requests through encode and decode, and the reply encoders
// against references built here for arbitrary registries.
//
// Runs are seeded: FC_SEED=<n> replays a run, and a failure prints the seed and the shrunk
// counterexample (fast-check's report). FC_RUNS=<n> changes the number of cases per property.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { feed, otpReaderModel, splitAt } from '../helpers/frames.js';
import { frame, requestPayload } from '../helpers/wire.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { MAX_FRAME_PAYLOAD } from '../../src/protocol/constants.js';
import { decodeRequest, type NodeInfo, type Request } from '../../src/protocol/requests.js';
import { decodeNodeInfo, encodeAlive2Reply, encodeDumpReply, encodeNamesReply, encodeNodeInfo, encodePort2Reply } from '../../src/protocol/replies.js';
import { Registry, nameKey } from '../../src/registry/registry.js';
import { parseDump } from '../../src/cli/client.js';

const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : 20261201;
const numRuns = process.env.FC_RUNS ? Number(process.env.FC_RUNS) : 1000;
console.log(`codec properties: fast-check seed ${seed} (FC_SEED=${seed} replays this run), ${numRuns} runs per property`);
function run<Ts>(property: fc.IProperty<Ts>, runs = numRuns): void {
  fc.assert(property, { seed, numRuns: runs });
}

// ---- arbitraries ----

const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 0xff });
const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
/** Offsets at which to cut a stream into reads. */
const cuts = fc.array(fc.nat({ max: 3300 }), { maxLength: 12 });

/** Byte streams as a client might send them, mostly starting with a plausible length field. */
const stream = fc.oneof(
  bytes(3200),
  fc
    .record({
      length: fc.oneof(fc.integer({ min: 0, max: 3100 }), fc.constantFrom(0, 1, MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD + 1, 0xffff)),
      code: fc.constantFrom(120, 122, 110, 100, 107, 115, 83, 97, 0),
      body: bytes(3200),
      fit: fc.constantFrom('any', 'exact', 'exact+tail'),
      tail: bytes(8),
    })
    .map(({ length, code, body, fit, tail }) => {
      const header = Buffer.alloc(3);
      header.writeUInt16BE(length);
      header[2] = code;
      // Often exactly one frame's worth of bytes, or a frame and a few more; else whatever the body gives.
      const exact = Buffer.concat([body, Buffer.alloc(Math.max(0, length - 1 - body.length))]).subarray(0, Math.max(0, length - 1));
      const rest = fit === 'any' ? body : fit === 'exact' ? exact : Buffer.concat([exact, tail]);
      return Buffer.concat([header, rest]);
    }),
);

/** Code points of well-formed UTF-8 (no surrogates), weighted towards ASCII; NUL excluded. */
const codePoint = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 0x7f }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xd7ff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xe000, max: 0x10ffff }) },
);
const utf8Name = (minChars: number, maxChars: number) =>
  fc.array(codePoint, { minLength: minChars, maxLength: maxChars }).map((cps) => Buffer.from(String.fromCodePoint(...cps), 'utf8'));

const nodeInfo = (name: fc.Arbitrary<Buffer>, extra: fc.Arbitrary<Buffer>): fc.Arbitrary<NodeInfo> =>
  fc.record({ name, port: u16, nodeType: u8, protocol: u8, highestVersion: u16, lowestVersion: u16, extra });

/** Requests every field of which the daemon accepts. */
const validRequest: fc.Arbitrary<Request> = fc.oneof(
  nodeInfo(utf8Name(0, 255), bytes(1020))
    .filter((n) => n.name.length + n.extra.length > 0) // OTP wants at least one byte of either (spec §5.1)
    .map((n): Request => ({ type: 'alive2', ...n })),
  utf8Name(1, 254).map((name): Request => ({ type: 'port-please2', name })),
  bytes(200)
    .filter((b) => b.length > 0 && !b.includes(0))
    .map((name): Request => ({ type: 'stop', name })),
  fc.constantFrom<Request>({ type: 'names' }, { type: 'dump' }, { type: 'kill' }, { type: 'status' }),
);

// ---- references written from the spec, independent of src/protocol ----

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });
function referenceRejection(name: Buffer, extra: Buffer): boolean {
  if (name.length > 1020 || extra.length > 1020) return true;
  try {
    return [...fatalUtf8.decode(name)].length > 255;
  } catch {
    return true;
  }
}

/** PORT2_RESP built field by field with a DataView. */
function referencePort2(n: NodeInfo): Buffer {
  const out = new Uint8Array(14 + n.name.length + n.extra.length);
  const view = new DataView(out.buffer);
  out[0] = 119;
  out[1] = 0;
  view.setUint16(2, n.port);
  out[4] = n.nodeType;
  out[5] = n.protocol;
  view.setUint16(6, n.highestVersion);
  view.setUint16(8, n.lowestVersion);
  view.setUint16(10, n.name.length);
  out.set(n.name, 12);
  view.setUint16(12 + n.name.length, n.extra.length);
  out.set(n.extra, 14 + n.name.length);
  return Buffer.from(out);
}

/** NAMES/DUMP replies as latin1 text: a byte-for-byte image of the names, whatever they hold. */
const latin1 = (b: Buffer) => b.toString('latin1');
function portHeaderText(port: number): string {
  return String.fromCharCode((port >>> 24) & 0xff, (port >>> 16) & 0xff, (port >>> 8) & 0xff, port & 0xff);
}

interface ModelEntry {
  name: Buffer;
  port: number;
  fd: number;
}

/** What the registry should hold after a sequence of operations, in the orders the replies use. */
interface RegistryModel {
  active: ModelEntry[]; // newest first
  provisional: ModelEntry[]; // newest first
  unused: ModelEntry[]; // oldest first
}

type Op =
  | { op: 'register'; name: number; port: number }
  | { op: 'unregister'; name: number }
  | { op: 'provisional'; name: number; port: number }
  | { op: 'drop-provisional'; name: number };

const opArb = (names: number): fc.Arbitrary<Op> => {
  const name = fc.nat({ max: names - 1 });
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ op: fc.constant('register' as const), name, port: u16 }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('unregister' as const), name }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('provisional' as const), name, port: u16 }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('drop-provisional' as const), name }) },
  );
};

/** Node names for a registry: distinct byte strings, from ASCII to 255 four-byte characters. */
const namePool = fc.uniqueArray(utf8Name(0, 40), { minLength: 1, maxLength: 12, selector: latin1 });

const registryCase = namePool.chain((names) =>
  fc.record({ names: fc.constant(names), ops: fc.array(opArb(names.length), { maxLength: 60 }), epmdPort: fc.nat({ max: 0xffffffff }) }),
);

/** Applies ops to a real Registry and to the model; returns both. */
function build(names: Buffer[], ops: Op[]): { registry: Registry<null>; model: RegistryModel } {
  const registry = new Registry<null>({ unusedCap: 1000, now: () => 1_000_000 });
  const model: RegistryModel = { active: [], provisional: [], unused: [] };
  const same = (name: Buffer) => (e: ModelEntry) => e.name.equals(name);
  const without = (list: ModelEntry[], name: Buffer) => list.filter((e) => !e.name.equals(name));
  let fd = 10;
  for (const o of ops) {
    const name = names[o.name]!;
    const info: NodeInfo = { name, port: o.op === 'register' || o.op === 'provisional' ? o.port : 0, nodeType: 77, protocol: 0, highestVersion: 6, lowestVersion: 5, extra: Buffer.alloc(0) };
    switch (o.op) {
      case 'register': {
        if (model.active.some(same(name))) {
          expect(registry.register(info, null, fd).ok).toBe(false);
          break;
        }
        expect(registry.register(info, null, fd).ok).toBe(true);
        model.provisional = without(model.provisional, name);
        model.unused = without(model.unused, name);
        model.active.unshift({ name, port: info.port, fd: fd++ });
        break;
      }
      case 'unregister': {
        const held = registry.lookup(name);
        const entry = model.active.find(same(name));
        expect(Boolean(held)).toBe(Boolean(entry));
        if (!held || !entry) break;
        registry.unregister(held);
        model.active = without(model.active, name);
        model.unused.push(entry);
        break;
      }
      case 'provisional': {
        const added = registry.addProvisional(info, 5, 0);
        if (model.active.some(same(name))) {
          expect(added).toBeUndefined();
          break;
        }
        model.unused = without(model.unused, name);
        const at = model.provisional.findIndex(same(name));
        // Replacing an entry keeps its place (a Map keeps the first insertion order).
        if (at >= 0) model.provisional[at] = { name, port: info.port, fd: -1 };
        else model.provisional.unshift({ name, port: info.port, fd: -1 });
        break;
      }
      case 'drop-provisional': {
        const entry = registry.lookupProvisional(name);
        expect(Boolean(entry)).toBe(model.provisional.some(same(name)));
        if (!entry) break;
        registry.dropProvisional(entry);
        const gone = model.provisional.find(same(name))!;
        model.provisional = without(model.provisional, name);
        model.unused.push(gone);
        break;
      }
    }
  }
  return { registry, model };
}

// ---- properties ----

describe('codec properties: arbitrary input', () => {
  it('arbitrary byte streams in arbitrary chunkings never throw, and every outcome is consistent with the bytes', () => {
    run(
      fc.property(stream, cuts, (s, c) => {
        const chunks = splitAt(s, c);
        const reader = new FrameReader();
        let pushed = 0;
        for (const chunk of chunks) {
          const result = reader.push(chunk);
          pushed += chunk.length;
          expect(reader.received).toBe(pushed);
          if (result.kind === 'incomplete') continue;
          if (result.kind === 'frame') {
            expect(result.payload.equals(s.subarray(2, 2 + s.readUInt16BE(0)))).toBe(true);
            const decoded = decodeRequest(result.payload);
            expect(['alive2', 'port-please2', 'names', 'dump', 'kill', 'stop', 'status', 'malformed']).toContain(decoded.type);
          }
          return;
        }
        expect(s.length < 2 || s.length < 2 + s.readUInt16BE(0)).toBe(true);
      }),
    );
  });

  it('decodeRequest never throws on arbitrary payloads, and a malformed one always says why', () => {
    const payload = fc.tuple(fc.constantFrom(120, 122, 110, 100, 107, 115, 83, 0, 255), bytes(1400)).map(([code, rest]) => Buffer.concat([Buffer.from([code]), rest]));
    run(
      fc.property(fc.oneof(payload, bytes(64)), (p) => {
        const decoded = decodeRequest(p);
        if (decoded.type === 'malformed') expect(decoded.reason.length).toBeGreaterThan(0);
      }),
    );
  });

  it('the frame reader agrees with the model of OTP\'s reader for every stream and chunking', () => {
    const seen = new Map<string, number>();
    run(
      fc.property(stream, cuts, (s, c) => {
        const chunks = splitAt(s, c);
        const expected = otpReaderModel(s, chunks);
        expect(feed(chunks)).toEqual(expected);
        const kind = expected.kind === 'frame' && expected.surplus > 0 ? 'frame+surplus' : expected.kind;
        seen.set(kind, (seen.get(kind) ?? 0) + 1);
      }),
    );
    // Every branch of the reader must have been reached, or the property proves little.
    for (const kind of ['incomplete', 'frame', 'frame+surplus', 'bad-length', 'surplus-in-first-read']) {
      expect(seen.get(kind) ?? 0, `${kind} in ${JSON.stringify([...seen])}`).toBeGreaterThan(numRuns / 100);
    }
  });
});

describe('codec properties: requests', () => {
  it('valid requests round-trip: encode, frame, split arbitrarily, read, decode', () => {
    run(
      fc.property(validRequest, cuts, (request, c) => {
        const wire = frame(requestPayload(request));
        const result = feed(splitAt(wire, c));
        expect(result.kind).toBe('frame');
        if (result.kind !== 'frame') return;
        expect(decodeRequest(result.payload)).toEqual(request);
      }),
    );
  });

  it('ALIVE2 with any name and extra bytes keeps every field, and is rejected exactly when the spec says', () => {
    const name = fc.oneof(utf8Name(0, 300), bytes(1100), bytes(1100).map((b) => Buffer.from(b.filter((x) => x !== 0))));
    run(
      fc.property(nodeInfo(name, bytes(1100)), (n) => {
        const decoded = decodeRequest(requestPayload({ type: 'alive2', ...n }));
        // 13 bytes (empty name, empty extra) is too small for OTP, and a NUL cannot be in a name:
        // both are closed without a reply.
        if (n.name.length + n.extra.length === 0 || n.name.includes(0)) {
          expect(decoded).toMatchObject({ type: 'malformed', request: 'alive2' });
          return;
        }
        expect(decoded.type).toBe('alive2');
        if (decoded.type !== 'alive2') return;
        const { rejection, ...fields } = decoded;
        expect(fields).toEqual({ type: 'alive2', ...n });
        expect(rejection !== undefined).toBe(referenceRejection(n.name, n.extra));
      }),
    );
  });

  it('whatever decodes to a request re-encodes to a payload that decodes to the same request', () => {
    const payload = fc.tuple(fc.constantFrom(120, 122, 115, 83), bytes(600)).map(([code, rest]) => Buffer.concat([Buffer.from([code]), rest]));
    run(
      fc.property(payload, (p) => {
        const decoded = decodeRequest(p);
        if (decoded.type === 'malformed') return;
        expect(decodeRequest(requestPayload(decoded))).toEqual(decoded);
      }),
    );
  });
});

describe('codec properties: replies', () => {
  it('PORT2_RESP matches a field-by-field reference, and the node layout decodes back to the node', () => {
    run(
      fc.property(nodeInfo(bytes(1020), bytes(1020)), (n) => {
        expect(encodePort2Reply(n).equals(referencePort2(n))).toBe(true);
        expect(decodeNodeInfo(encodeNodeInfo(n))).toEqual(n);
      }),
    );
  });

  it('decodeNodeInfo accepts exactly the byte strings that encodeNodeInfo can produce', () => {
    run(
      fc.property(bytes(80), (b) => {
        const n = decodeNodeInfo(b);
        if (n) expect(encodeNodeInfo(n).equals(b)).toBe(true);
      }),
    );
  });

  it('ALIVE2 replies match the spec for any creation and version', () => {
    run(
      fc.property(fc.boolean(), fc.nat({ max: 0xffffffff }), u16, (ok, creation, high) => {
        const reply = encodeAlive2Reply(ok, creation, high);
        const expected = Buffer.alloc(high >= 6 ? 6 : 4);
        expected[0] = high >= 6 ? 118 : 121;
        expected[1] = ok ? 0 : 1;
        if (high >= 6) expected.writeUInt32BE(ok ? creation : 99, 2);
        else expected.writeUInt16BE(ok ? creation & 0xffff : 99, 2);
        expect(reply.equals(expected)).toBe(true);
      }),
    );
  });

  it('NAMES and DUMP of arbitrary registries match text references, and the CLI parses DUMP back', () => {
    run(
      fc.property(registryCase, ({ names, ops, epmdPort }) => {
        const { registry, model } = build(names, ops);
        const names_ = encodeNamesReply(epmdPort, [...registry.newestFirst(), ...registry.provisionalNewestFirst()]);
        const namesText = [...model.active, ...model.provisional].map((e) => `name ${latin1(e.name)} at port ${e.port}\n`).join('');
        expect(latin1(names_)).toBe(portHeaderText(epmdPort) + namesText);

        const dump = encodeDumpReply(epmdPort, registry.newestFirst(), registry.unusedOldestFirst(), registry.provisionalNewestFirst());
        const dumpText =
          model.active.map((e) => `active name     <${latin1(e.name)}> at port ${e.port}, fd = ${e.fd}\n\0`).join('') +
          model.provisional.map((e) => `provisional name <${latin1(e.name)}> at port ${e.port}\n\0`).join('') +
          model.unused.map((e) => `old/unused name <${latin1(e.name)}>, port = ${e.port}, fd = ${e.fd} \n\0`).join('');
        expect(latin1(dump)).toBe(portHeaderText(epmdPort) + dumpText);

        // The names are UTF-8, so epmd-ng's own client (names --json) reads them back exactly.
        const parsed = parseDump(dump);
        const utf8 = (b: Buffer) => b.toString('utf8');
        expect(parsed.port).toBe(epmdPort);
        expect(parsed.active).toEqual([
          ...model.active.map((e) => ({ name: utf8(e.name), port: e.port, fd: e.fd, provisional: false })),
          ...model.provisional.map((e) => ({ name: utf8(e.name), port: e.port, fd: null, provisional: true })),
        ]);
        expect(parsed.unused).toEqual(model.unused.map((e) => ({ name: utf8(e.name), port: e.port, fd: e.fd })));
        expect(new Set(registry.newestFirst().map((r) => r.key))).toEqual(new Set(model.active.map((e) => nameKey(e.name))));
      }),
      numRuns / 2,
    );
  });
});
