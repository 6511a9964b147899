// The journal and syslog outputs: readable messages, field names and the native protocol's field
// encoding (byte for byte), then real datagrams through the addon to a receiving AF_UNIX socket,
// the sealed memfd for an entry too large for a datagram, and the syslog line.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeJournalEntry, journalFieldName, journalFields } from '../../src/log/journal.js';
import { createLogger, detachedLogFormat } from '../../src/log/logger.js';
import { formatMessage, syslogSeverity } from '../../src/log/message.js';
import { formatSyslogLine, MAX_SYSLOG_LINE } from '../../src/log/syslog.js';
import { decodeJournalEntry, journalText } from '../helpers/journal-entry.js';
import { ensureNativeBuilt, startNotifyReceiver, type NotifyReceiver } from '../helpers/sd-native.js';

const registered = { event: 'register', node: 'rabbit', port: 25672, creation: 1796116567, nodeType: 77, peer: '127.0.0.1:45958' };

describe('readable messages', () => {
  it('a registration reads as a sentence', () => {
    expect(formatMessage('node registered', registered)).toBe('node rabbit registered: port 25672, creation 1796116567, from 127.0.0.1:45958 (nodeType=77)');
  });

  it('an unregistration says why', () => {
    const base = { event: 'unregister', node: 'rabbit', port: 25672, creation: 7, peer: '[::1]:5000' };
    expect(formatMessage('node unregistered', { ...base, reason: 'closed' })).toBe('node rabbit unregistered (connection closed): port 25672, creation 7, from [::1]:5000');
    expect(formatMessage('node unregistered', { ...base, reason: 'stopped' })).toBe('node rabbit unregistered (STOP_REQ): port 25672, creation 7, from [::1]:5000');
    const provisional = { event: 'unregister', node: 'a', port: 4000, creation: 3, reason: 'provisional', why: 'nothing listens on its port' };
    expect(formatMessage('provisional entry removed', provisional)).toBe('node a unregistered (provisional entry removed: nothing listens on its port): port 4000, creation 3');
  });

  it('a taken-over registration names the previous process', () => {
    expect(formatMessage('x', { event: 'adopt', node: 'b', port: 1, creation: 2, peer: '127.0.0.1:9' })).toBe('node b taken over from the previous process: port 1, creation 2, from 127.0.0.1:9');
  });

  it('other events: the message, the peer, then key=value pairs, quoted when needed', () => {
    expect(formatMessage('invalid packet size', { event: 'violation', kind: 'framing', peer: '10.0.0.1:7', length: 65535 })).toBe('invalid packet size from 10.0.0.1:7 (length=65535)');
    expect(formatMessage('listening', { addresses: ['127.0.0.1:4369', '[::1]:4369'], activated: false, stateDir: null })).toBe(
      'listening (addresses="127.0.0.1:4369, [::1]:4369", activated=false, stateDir=null)',
    );
    expect(formatMessage('reload failed', { err: new Error('no such file') })).toBe('reload failed (err="no such file")');
    expect(formatMessage('stopping', {})).toBe('stopping');
    expect(formatMessage(undefined, { err: new Error('boom') })).toBe('boom (err=boom)');
  });

  it('long values are cut in the message (the journal field keeps them whole)', () => {
    expect(formatMessage('big', { blob: 'y'.repeat(500) })).toBe(`big (blob=${'y'.repeat(200)}…)`);
    expect(Object.fromEntries(journalFields(30, 'big', { blob: 'y'.repeat(500) })).EPMD_BLOB).toHaveLength(500);
  });

  it('pino levels map to syslog severities', () => {
    expect([10, 20, 30, 40, 50, 60].map(syslogSeverity)).toEqual([7, 7, 6, 4, 3, 2]);
  });
});

describe('journal fields', () => {
  it('field names are EPMD_ plus the key in upper snake case, within journald\'s rules', () => {
    expect(journalFieldName('node')).toBe('EPMD_NODE');
    expect(journalFieldName('maxConnections')).toBe('EPMD_MAX_CONNECTIONS');
    expect(journalFieldName('fdStore')).toBe('EPMD_FD_STORE');
    expect(journalFieldName('lagMs')).toBe('EPMD_LAG_MS');
    expect(journalFieldName('we!rd-key')).toBe('EPMD_WE_RD_KEY');
    const long = journalFieldName('x'.repeat(100));
    expect(long).toHaveLength(64);
    expect(long).toMatch(/^[A-Z][A-Z0-9_]*$/);
  });

  it('an event carries MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and every field', () => {
    const fields = Object.fromEntries(journalFields(30, 'node registered', registered));
    expect(fields).toEqual({
      MESSAGE: 'node rabbit registered: port 25672, creation 1796116567, from 127.0.0.1:45958 (nodeType=77)',
      PRIORITY: '6',
      SYSLOG_IDENTIFIER: 'epmd-ng',
      EPMD_EVENT: 'register',
      EPMD_NODE: 'rabbit',
      EPMD_PORT: '25672',
      EPMD_CREATION: '1796116567',
      EPMD_NODE_TYPE: '77',
      EPMD_PEER: '127.0.0.1:45958',
    });
    expect(Object.fromEntries(journalFields(40, 'x', { reason: 'closed', skipped: undefined }))).toEqual({ MESSAGE: 'x (reason=closed)', PRIORITY: '4', SYSLOG_IDENTIFIER: 'epmd-ng', EPMD_REASON: 'closed' });
  });

  it('encodes plain values as NAME=value lines', () => {
    expect(encodeJournalEntry([['MESSAGE', 'hello'], ['PRIORITY', '6']]).toString('latin1')).toBe('MESSAGE=hello\nPRIORITY=6\n');
  });

  it('encodes a value with a newline as NAME, a 64-bit little-endian length, the bytes and a newline', () => {
    const entry = encodeJournalEntry([['EPMD_NODE', 'a\nb'], ['PRIORITY', '3']]);
    expect(entry.toString('hex')).toBe(
      Buffer.from('EPMD_NODE\n').toString('hex') + '0300000000000000' + Buffer.from('a\nb\n').toString('hex') + Buffer.from('PRIORITY=3\n').toString('hex'),
    );
    expect(decodeJournalEntry(entry).map(([k, v]) => [k, v.toString()])).toEqual([['EPMD_NODE', 'a\nb'], ['PRIORITY', '3']]);
  });

  it('binary values survive byte for byte (any bytes, = signs, NULs, UTF-8)', () => {
    const odd = Buffer.from([0x00, 0x0a, 0x3d, 0xff, 0x0a]);
    const entry = encodeJournalEntry([['EPMD_X', odd], ['EPMD_Y', 'k=v'], ['EPMD_Z', 'nœud']]);
    const decoded = decodeJournalEntry(entry);
    expect(decoded[0]![1].equals(odd)).toBe(true);
    expect(decoded[1]![1].toString()).toBe('k=v');
    expect(decoded[2]![1].toString()).toBe('nœud');
  });
});

describe('syslog lines (RFC 3164, as syslog(3) sends them to /dev/log)', () => {
  const date = new Date(2026, 0, 5, 7, 8, 9);
  it('<PRI> with facility daemon, a local timestamp with a space-padded day, ident[pid]', () => {
    expect(formatSyslogLine(6, 'node a registered', 'epmd-ng', 42, date)).toBe('<30>Jan  5 07:08:09 epmd-ng[42]: node a registered');
    expect(formatSyslogLine(4, 'x', 'epmd-ng', 1, new Date(2026, 11, 25, 23, 0, 0))).toBe('<28>Dec 25 23:00:00 epmd-ng[1]: x');
  });
  it('one line, cut at the limit', () => {
    expect(formatSyslogLine(3, 'a\nb', 'epmd-ng', 1, date)).toBe('<27>Jan  5 07:08:09 epmd-ng[1]: a b');
    expect(formatSyslogLine(6, 'x'.repeat(20_000), 'epmd-ng', 1, date)).toHaveLength(MAX_SYSLOG_LINE);
  });
});

describe('-daemon picks its log', () => {
  it('the journal when its socket is writable, else syslog', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-detached-'));
    try {
      const socket = path.join(dir, 'socket');
      expect(detachedLogFormat(socket)).toBe('syslog');
      writeFileSync(socket, '');
      expect(detachedLogFormat(socket)).toBe('journal');
      chmodSync(socket, 0o444);
      // Root may write anyway: access(2) answers for this very process, which is what matters.
      expect(detachedLogFormat(socket)).toBe(process.getuid?.() === 0 ? 'journal' : 'syslog');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the logger sends real datagrams', () => {
  let dir: string;
  let journal: NotifyReceiver;
  let syslog: NotifyReceiver;
  beforeAll(async () => {
    ensureNativeBuilt();
    dir = mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-journal-'));
    journal = await startNotifyReceiver(path.join(dir, 'journal.socket'));
    syslog = await startNotifyReceiver(path.join(dir, 'log'));
  });
  afterAll(async () => {
    await journal?.stop();
    await syslog?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('journal: one entry per event, with the fields; levels below the threshold send nothing', async () => {
    const log = await createLogger('info', 'journal', { journal: journal.address, syslog: syslog.address });
    log.debug({ request: 'names' }, 'request');
    log.info(registered, 'node registered');
    const d = await journal.next();
    expect(d.fds).toEqual([]);
    expect(journalText(Buffer.from(d.raw, 'base64'))).toMatchObject({
      MESSAGE: 'node rabbit registered: port 25672, creation 1796116567, from 127.0.0.1:45958 (nodeType=77)',
      PRIORITY: '6',
      EPMD_NODE: 'rabbit',
      EPMD_EVENT: 'register',
    });
    expect(d.pid).toBe(process.pid);
    await journal.expectNothing();
  });

  it('journal: the level can change while running (reload), and a message alone is an event too', async () => {
    const log = await createLogger('warn', 'journal', { journal: journal.address, syslog: syslog.address });
    expect(log.levelVal).toBe(40);
    log.info(registered, 'node registered');
    await journal.expectNothing();
    log.level = 'info';
    expect([log.level, log.levelVal]).toEqual(['info', 30]);
    log.info('stopping');
    expect(journalText(Buffer.from((await journal.next()).raw, 'base64'))).toMatchObject({ MESSAGE: 'stopping', PRIORITY: '6' });
    log.level = 'silent';
    log.fatal('nobody hears this');
    await journal.expectNothing();
    expect(() => (log.level = 'loud')).toThrow(/unknown log level "loud"/);
  });

  it('journal: a node name with a newline arrives intact', async () => {
    const log = await createLogger('info', 'journal', { journal: journal.address, syslog: syslog.address });
    log.warn({ node: 'evil\nPRIORITY=0' }, 'node name already occupied');
    const fields = decodeJournalEntry(Buffer.from((await journal.next()).raw, 'base64'));
    expect(fields.filter(([k]) => k === 'PRIORITY').map(([, v]) => v.toString())).toEqual(['4']);
    expect(fields.find(([k]) => k === 'EPMD_NODE')![1].toString()).toBe('evil\nPRIORITY=0');
  });

  it('journal: an entry too large for a datagram goes as a sealed memfd with an empty payload', async () => {
    const log = await createLogger('info', 'journal', { journal: journal.address, syslog: syslog.address });
    const big = 'x'.repeat(400_000);
    log.info({ blob: big }, 'large');
    const d = await journal.next();
    expect(d.raw).toBe('');
    expect(d.fds).toHaveLength(1);
    const memfd = d.fds[0]!;
    expect(memfd.mode).toBe('file');
    expect(memfd.link).toMatch(/^\/memfd:epmd-ng-journal/);
    // F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE: what journald requires of an unprivileged sender.
    expect(memfd.seals).toBe(15);
    expect(journalText(Buffer.from(memfd.raw!, 'base64')).EPMD_BLOB).toBe(big);
  });

  it('syslog: one RFC 3164 line per event to the syslog socket', async () => {
    const log = await createLogger('info', 'syslog', { journal: journal.address, syslog: syslog.address });
    log.warn({ event: 'violation', kind: 'framing', peer: '127.0.0.1:9', length: 9999 }, 'invalid packet size');
    const d = await syslog.next();
    expect(d.data).toMatch(new RegExp(`^<28>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d epmd-ng\\[${process.pid}\\]: invalid packet size from 127\\.0\\.0\\.1:9 \\(length=9999\\)$`));
    await journal.expectNothing();
  });
});
