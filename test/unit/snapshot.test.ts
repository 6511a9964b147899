// The snapshot file format: exact round trips of arbitrary bytes, and every way decoding refuses.
import { describe, expect, it } from 'vitest';
import { prng } from '../helpers/prng.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot, type SnapshotNode } from '../../src/persistence/snapshot.js';


function randomBytes(r: () => number, maxLen: number): Buffer {
  const len = Math.floor(r() * (maxLen + 1));
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = Math.floor(r() * 256);
  return b;
}

function node(name: string | Buffer, extra: Buffer = Buffer.alloc(0)): SnapshotNode {
  return {
    name: typeof name === 'string' ? Buffer.from(name) : name,
    port: 4370,
    nodeType: 77,
    protocol: 0,
    highestVersion: 6,
    lowestVersion: 5,
    extra,
    creation: 1_700_000_001,
  };
}

function sample(): Snapshot {
  return {
    version: 1,
    bootId: '772b116f-7862-49d6-8891-b3b7add45efa',
    savedAt: 1_732_180_000_123,
    nodes: [node('alpha'), node(Buffer.from([0x61, 0x00, 0x62]), Buffer.from([0xff, 0xfe, 0x80, 0x00]))],
    unused: [{ name: Buffer.from('gone'), port: 5000, creation: 42 }],
    creationCeiling: 1_700_000_000,
  };
}

/** The sample's JSON document, to be damaged by a test and decoded. */
function sampleDoc(): Record<string, any> {
  return JSON.parse(encodeSnapshot(sample()).toString('utf8'));
}

function decodeDoc(doc: unknown) {
  return decodeSnapshot(Buffer.from(JSON.stringify(doc)));
}

describe('encodeSnapshot / decodeSnapshot round trip', () => {
  it('produces one versioned, tagged JSON object', () => {
    const doc = sampleDoc();
    expect(doc.format).toBe('epmd-ng-registry');
    expect(doc.version).toBe(1);
    expect(doc.nodes[1].name).toBe(Buffer.from([0x61, 0x00, 0x62]).toString('base64'));
  });

  it('keeps NULs, invalid UTF-8 and empty values byte for byte', () => {
    const s = sample();
    s.nodes.push(node(Buffer.alloc(0), Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf8])));
    s.nodes.push(node(Buffer.from([0xff, 0x00, 0xc0, 0xaf]), Buffer.alloc(1020, 0)));
    const decoded = decodeSnapshot(encodeSnapshot(s));
    expect(decoded).toEqual({ ok: true, snapshot: s });
  });

  it('accepts every limit exactly', () => {
    const s = sample();
    s.creationCeiling = 2 ** 32 - 1;
    s.savedAt = 0;
    s.bootId = '';
    s.nodes = [
      { name: Buffer.alloc(1020, 0x61), port: 65535, nodeType: 255, protocol: 255, highestVersion: 65535, lowestVersion: 65535, extra: Buffer.alloc(1020, 0xff), creation: 2 ** 32 - 1 },
      { name: Buffer.from('z'), port: 0, nodeType: 0, protocol: 0, highestVersion: 0, lowestVersion: 0, extra: Buffer.alloc(0), creation: 0 },
    ];
    s.unused = [{ name: Buffer.alloc(1020, 0x62), port: 65535, creation: 2 ** 32 - 1 }];
    expect(decodeSnapshot(encodeSnapshot(s))).toEqual({ ok: true, snapshot: s });
  });

  it('round-trips 200 random registries', () => {
    const r = prng(0xe9d);
    for (let round = 0; round < 200; round++) {
      const names = new Set<string>();
      const unique = (): Buffer => {
        for (;;) {
          const b = randomBytes(r, 40);
          const key = b.toString('latin1');
          if (!names.has(key)) {
            names.add(key);
            return b;
          }
        }
      };
      const int = (max: number) => Math.floor(r() * (max + 1));
      const s: Snapshot = {
        version: 1,
        bootId: randomBytes(r, 12).toString('hex'),
        savedAt: int(2 ** 45),
        nodes: Array.from({ length: int(8) }, () => ({
          name: unique(),
          port: int(65535),
          nodeType: int(255),
          protocol: int(255),
          highestVersion: int(65535),
          lowestVersion: int(65535),
          extra: randomBytes(r, 1020),
          creation: int(2 ** 32 - 1),
        })),
        unused: Array.from({ length: int(8) }, () => ({ name: unique(), port: int(65535), creation: int(2 ** 32 - 1) })),
        creationCeiling: int(2 ** 32 - 1),
      };
      expect(decodeSnapshot(encodeSnapshot(s))).toEqual({ ok: true, snapshot: s });
    }
  });

  it('ignores unknown keys (optional additions need no version bump)', () => {
    const doc = sampleDoc();
    doc.comment = 'added later';
    doc.nodes[0].label = 'x';
    expect(decodeDoc(doc)).toEqual({ ok: true, snapshot: sample() });
  });

  it('keeps the time of an entry that was provisional already, and only for that entry', () => {
    const s = sample();
    s.nodes[1]!.provisionalUntil = 1_732_180_030_123;
    const doc = JSON.parse(encodeSnapshot(s).toString('utf8'));
    expect(doc.nodes[1].provisionalUntil).toBe(1_732_180_030_123);
    expect('provisionalUntil' in doc.nodes[0]).toBe(false);
    expect(decodeSnapshot(encodeSnapshot(s))).toEqual({ ok: true, snapshot: s });
    doc.nodes[1].provisionalUntil = -5;
    expect(decodeDoc(doc)).toEqual({ ok: false, reason: 'nodes[1].provisionalUntil -5 is out of range 0..9007199254740991' });
    doc.nodes[1].provisionalUntil = 'soon';
    expect(decodeDoc(doc)).toMatchObject({ ok: false, reason: expect.stringContaining('provisionalUntil must be an integer') });
  });

  it('refuses to encode what it could not decode', () => {
    const bad = sample();
    bad.nodes[0]!.port = 70000;
    expect(() => encodeSnapshot(bad)).toThrow(/nodes\[0\]\.port 70000 is out of range 0\.\.65535/);
    const dup = sample();
    dup.nodes.push(node('alpha'));
    expect(() => encodeSnapshot(dup)).toThrow(TypeError);
  });
});

describe('decodeSnapshot rejections', () => {
  const raw: [string, Buffer, RegExp][] = [
    ['empty file', Buffer.alloc(0), /^file is empty$/],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), /not valid UTF-8/],
    ['garbage', Buffer.from('hello, world'), /^not valid JSON/],
    ['truncated', encodeSnapshot(sample()).subarray(0, 50), /^not valid JSON \(truncated or corrupt\)/],
    ['NUL bytes (zeroed blocks after a crash)', Buffer.alloc(4096), /^not valid JSON/],
    ['two documents', Buffer.from('{}{}'), /^not valid JSON/],
  ];
  it.each(raw)('%s', (_name, bytes, reason) => {
    const d = decodeSnapshot(bytes);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.reason).toMatch(reason);
  });

  const max32 = 2 ** 32 - 1;
  type Damage = (doc: Record<string, any>) => unknown;
  const cases: [string, Damage, RegExp][] = [
    ['top level is an array', () => [], /^top level must be a JSON object, got \[\]$/],
    ['top level is null', () => null, /^top level must be a JSON object, got null$/],
    ['top level is a string', () => 'epmd', /^top level must be a JSON object/],
    ['format missing', (d) => { delete d.format; return d; }, /^not an epmd-ng registry snapshot \(format is missing\)$/],
    ['wrong format tag', (d) => { d.format = 'something-else'; return d; }, /format is "something-else"/],
    ['future version', (d) => ({ format: d.format, version: 2, anything: 'else' }), /^snapshot version 2 is newer than this epmd-ng understands$/],
    ['version 0', (d) => { d.version = 0; return d; }, /^snapshot version 0 is not valid$/],
    ['version as string', (d) => { d.version = '1'; return d; }, /^snapshot version "1" is not valid$/],
    ['version fractional', (d) => { d.version = 1.5; return d; }, /^snapshot version 1\.5 is not valid$/],
    ['version missing', (d) => { delete d.version; return d; }, /^snapshot version missing is not valid$/],
    ['bootId not a string', (d) => { d.bootId = 7; return d; }, /^bootId must be a string/],
    ['bootId absurdly long', (d) => { d.bootId = 'x'.repeat(129); return d; }, /^bootId must be a string of at most 128/],
    ['savedAt negative', (d) => { d.savedAt = -1; return d; }, /^savedAt -1 is out of range/],
    ['savedAt a string', (d) => { d.savedAt = '2024'; return d; }, /^savedAt must be an integer, got "2024"$/],
    ['savedAt missing', (d) => { delete d.savedAt; return d; }, /^savedAt must be an integer, got missing$/],
    ['creationCeiling above 2^32-1', (d) => { d.creationCeiling = max32 + 1; return d; }, /^creationCeiling 4294967296 is out of range 0\.\.4294967295$/],
    ['creationCeiling fractional', (d) => { d.creationCeiling = 1.25; return d; }, /^creationCeiling must be an integer, got 1\.25$/],
    ['nodes not an array', (d) => { d.nodes = {}; return d; }, /^nodes must be an array, got \{\}$/],
    ['nodes missing', (d) => { delete d.nodes; return d; }, /^nodes must be an array, got missing$/],
    ['a node is not an object', (d) => { d.nodes[1] = 'alpha'; return d; }, /^nodes\[1\] must be an object, got "alpha"$/],
    ['unused not an array', (d) => { d.unused = null; return d; }, /^unused must be an array, got null$/],
    ['an unused entry is an array', (d) => { d.unused[0] = []; return d; }, /^unused\[0\] must be an object, got \[\]$/],
    ['port 65536', (d) => { d.nodes[0].port = 65536; return d; }, /^nodes\[0\]\.port 65536 is out of range 0\.\.65535$/],
    ['port negative', (d) => { d.nodes[1].port = -1; return d; }, /^nodes\[1\]\.port -1 is out of range 0\.\.65535$/],
    ['port a string', (d) => { d.nodes[0].port = '4370'; return d; }, /^nodes\[0\]\.port must be an integer, got "4370"$/],
    ['port missing', (d) => { delete d.nodes[0].port; return d; }, /^nodes\[0\]\.port must be an integer, got missing$/],
    ['nodeType 256', (d) => { d.nodes[0].nodeType = 256; return d; }, /^nodes\[0\]\.nodeType 256 is out of range 0\.\.255$/],
    ['protocol 256', (d) => { d.nodes[0].protocol = 256; return d; }, /^nodes\[0\]\.protocol 256 is out of range 0\.\.255$/],
    ['highestVersion 65536', (d) => { d.nodes[0].highestVersion = 65536; return d; }, /^nodes\[0\]\.highestVersion 65536 is out of range 0\.\.65535$/],
    ['lowestVersion 65536', (d) => { d.nodes[0].lowestVersion = 65536; return d; }, /^nodes\[0\]\.lowestVersion 65536 is out of range 0\.\.65535$/],
    ['lowestVersion boolean', (d) => { d.nodes[0].lowestVersion = true; return d; }, /^nodes\[0\]\.lowestVersion must be an integer, got true$/],
    ['creation 2^32', (d) => { d.nodes[0].creation = max32 + 1; return d; }, /^nodes\[0\]\.creation 4294967296 is out of range 0\.\.4294967295$/],
    ['creation huge float', (d) => { d.nodes[0].creation = 1e300; return d; }, /^nodes\[0\]\.creation 1e\+300 is out of range/],
    ['name not a string', (d) => { d.nodes[0].name = [1, 2]; return d; }, /^nodes\[0\]\.name must be a base64 string, got \[1,2\]$/],
    ['name not base64', (d) => { d.nodes[0].name = 'not base64!'; return d; }, /^nodes\[0\]\.name is not canonical base64$/],
    ['name base64 without padding', (d) => { d.nodes[0].name = 'YWxwaGE'; return d; }, /^nodes\[0\]\.name is not canonical base64$/],
    ['name 1021 bytes', (d) => { d.nodes[0].name = Buffer.alloc(1021, 0x61).toString('base64'); return d; }, /^nodes\[0\]\.name is 1021 bytes, more than the limit of 1020$/],
    ['extra 1021 bytes', (d) => { d.nodes[1].extra = Buffer.alloc(1021).toString('base64'); return d; }, /^nodes\[1\]\.extra is 1021 bytes, more than the limit of 1020$/],
    ['extra missing', (d) => { delete d.nodes[1].extra; return d; }, /^nodes\[1\]\.extra must be a base64 string, got missing$/],
    ['unused port 65536', (d) => { d.unused[0].port = 65536; return d; }, /^unused\[0\]\.port 65536 is out of range/],
    ['unused creation negative', (d) => { d.unused[0].creation = -4; return d; }, /^unused\[0\]\.creation -4 is out of range/],
    ['unused name too long', (d) => { d.unused[0].name = Buffer.alloc(2000).toString('base64'); return d; }, /^unused\[0\]\.name is 2000 bytes/],
    ['duplicate names among nodes', (d) => { d.nodes.push({ ...d.nodes[0], port: 1 }); return d; }, /^nodes\[2\] has the same name as nodes\[0\] \("alpha"\)$/],
    ['duplicate names among unused', (d) => { d.unused.push({ ...d.unused[0] }); return d; }, /^unused\[1\] has the same name as unused\[0\] \("gone"\)$/],
    ['a name both registered and unused', (d) => { d.unused[0].name = d.nodes[0].name; return d; }, /^unused\[0\] has the same name as nodes\[0\]/],
  ];
  it.each(cases)('%s', (_name, damage, reason) => {
    const d = decodeDoc(damage(sampleDoc()));
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.reason).toMatch(reason);
  });

  it('names with odd bytes stay on one line in reasons', () => {
    const doc = sampleDoc();
    doc.nodes[0].name = Buffer.from('a\nb').toString('base64');
    doc.nodes[1].name = doc.nodes[0].name;
    const d = decodeDoc(doc);
    expect(d).toEqual({ ok: false, reason: 'nodes[1] has the same name as nodes[0] ("a\\nb")' });
  });

  it('never throws and always gives a short one-line reason, whatever the damage', () => {
    const r = prng(7);
    const good = encodeSnapshot(sample());
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(good);
      const flips = 1 + Math.floor(r() * 4);
      for (let f = 0; f < flips; f++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      const cut = r() < 0.3 ? b.subarray(0, Math.floor(r() * b.length)) : b;
      const d = decodeSnapshot(cut);
      if (!d.ok) {
        rejected++;
        expect(d.reason).not.toMatch(/[\n\r]/);
        expect(d.reason.length).toBeLessThanOrEqual(301);
      }
    }
    expect(rejected).toBeGreaterThan(2000);
  });
});
