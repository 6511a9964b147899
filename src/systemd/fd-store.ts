// Registrations that outlive the process. Each registration connection is handed to systemd's file
// descriptor store under a short name (`r<seq>`); what it registered is appended to one memfd, also
// kept in the store (`state-<generation>`). After a restart, a watchdog kill or a crash, systemd
// passes all of them back and the new process adopts the very same TCP connections.
//
// Why this shape: systemd passes the names back in one environment variable (LISTEN_FDNAMES), which
// the kernel limits to 128 KiB, so names stay short and there is one fd per registration; systemd
// 252 also compares each new fd with every stored one, so fewer fds is less work for PID 1.
import fs from 'node:fs';
import type { Logger } from '../log/logger.js';
import type { SnapshotNode } from '../persistence/snapshot.js';
import { decodeNodeInfo, encodeNodeInfo } from '../protocol/replies.js';
import type { ActivatedFd } from './activation.js';
import { createMemfd, readMemfd } from './memfd.js';
import type { Notifier } from './notify.js';

const CONNECTION_PREFIX = 'r';
const STATE_PREFIX = 'state-';
/** Retry delay while PID 1's notify queue is full. */
const RETRY_MS = 10;
/** Rewrite the state memfd when it holds this many more records than there are registrations. */
const COMPACT_SLACK = 1024;

/** One state record: `<seq> <base64url of creation + the registration as PORT2_RESP lays it out>\n`. */
export function encodeRecord(seq: number, node: SnapshotNode): string {
  const creation = Buffer.alloc(4);
  creation.writeUInt32BE(node.creation >>> 0);
  return `${seq.toString(36)} ${Buffer.concat([creation, encodeNodeInfo(node)]).toString('base64url')}\n`;
}

/** Reads state records; a torn last line (a crash mid-append) and malformed lines are skipped. */
export function decodeRecords(text: string): Map<number, SnapshotNode> {
  const nodes = new Map<number, SnapshotNode>();
  for (const line of text.split('\n').slice(0, -1)) {
    const [seqText, data] = line.split(' ');
    if (!seqText || !data) continue;
    const packed = Buffer.from(data, 'base64url');
    const info = packed.length >= 4 ? decodeNodeInfo(packed.subarray(4)) : undefined;
    if (info) nodes.set(parseInt(seqText, 36), { ...info, creation: packed.readUInt32BE(0) });
  }
  return nodes;
}

const connectionName = (seq: number) => `${CONNECTION_PREFIX}${seq.toString(36)}`;
const seqOf = (storeName: string) => parseInt(storeName.slice(CONNECTION_PREFIX.length), 36);

/** A registration recovered from the store: its live connection and what it registered. */
export interface StoredRegistration {
  storeName: string;
  socketFd: number;
  node: SnapshotNode;
  seq: number;
}

export interface Recovered {
  stored: StoredRegistration[];
  /** Store names to drop: unreadable entries and the previous process's state memfds. */
  stale: string[];
  lastSeq: number;
  lastGeneration: number;
}

/** Takes the stored registrations out of the fds systemd passed back, oldest registration first. */
export function recoverStored(inherited: ActivatedFd[], log: Logger): Recovered {
  const states = inherited.filter((f) => f.name.startsWith(STATE_PREFIX));
  const generationOf = (f: ActivatedFd) => parseInt(f.name.slice(STATE_PREFIX.length), 36) || 0;
  const newest = states.reduce<ActivatedFd | undefined>((best, f) => (!best || generationOf(f) > generationOf(best) ? f : best), undefined);
  const records = newest ? decodeRecords(readMemfd(newest.fd).toString('latin1')) : new Map<number, SnapshotNode>();
  for (const f of states) fs.closeSync(f.fd);
  const recovered: Recovered = { stored: [], stale: states.map((f) => f.name), lastSeq: 0, lastGeneration: newest ? generationOf(newest) : 0 };
  for (const f of inherited) {
    if (!f.name.startsWith(CONNECTION_PREFIX) || f.name.startsWith(STATE_PREFIX)) continue;
    const seq = seqOf(f.name);
    const node = records.get(seq);
    recovered.lastSeq = Math.max(recovered.lastSeq, seq || 0);
    if (f.kind !== 'stream' || !node) {
      log.warn({ storeName: f.name, kind: f.kind }, 'dropping an fd store entry without a readable registration');
      fs.closeSync(f.fd);
      recovered.stale.push(f.name);
      continue;
    }
    recovered.stored.push({ storeName: f.name, socketFd: f.fd, node, seq });
  }
  recovered.stored.sort((a, b) => a.seq - b.seq);
  return recovered;
}

/** A notification for PID 1, or (closeFd) our copy of an fd to close once everything before it was sent. */
type Message = { storeName: string; fields: Record<string, string>; fds: number[]; closeFd?: number };

export class FdStore {
  private nextSeq = 1;
  private generation = 0;
  private stateFd = -1;
  private stateName = '';
  private stateSize = 0;
  private records = 0;
  private liveEntries = 0;
  private warned = false;
  /**
   * Messages PID 1 has not accepted yet, in order. A registration storm can fill its queue: the
   * daemon never blocks on that, it queues here and retries.
   */
  private readonly queue = new Map<number, Message>();
  private readonly queuedStores = new Map<string, number>();
  private nextId = 1;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly notifier: Notifier,
    private readonly log: Logger,
    /** EPMD_NG_FDSTORE=0 turns it off (e.g. a unit without FileDescriptorStoreMax=). */
    readonly enabled: boolean,
    /** The registrations currently in the store, for rewriting the state memfd. */
    private readonly live: () => Iterable<{ storeName: string; node: SnapshotNode }>,
  ) {}

  /** Continues after what the previous process left: numbering, state generation, stale entries. */
  resume(recovered: Recovered): void {
    this.nextSeq = recovered.lastSeq + 1;
    this.generation = recovered.lastGeneration;
    for (const name of recovered.stale) this.enqueue(name, { FDSTOREREMOVE: '1', FDNAME: name }, []);
    for (const _ of this.live()) this.liveEntries++;
    // The adopted registrations need a description at once; without any, the state memfd waits for
    // the first registration (store), which keeps its making off the way to READY=1.
    if (this.enabled && this.liveEntries > 0) this.rewriteState();
    this.flush();
  }

  /** Registrations in the store, or on their way there. */
  get registrations(): number {
    return this.liveEntries;
  }

  /** Messages waiting for PID 1. */
  get backlog(): number {
    return this.queue.size;
  }

  /** Stores a registration's connection; returns its store name, or undefined. */
  store(socketFd: number, node: SnapshotNode): string | undefined {
    if (!this.enabled || socketFd < 0 || (this.stateFd < 0 && !this.rewriteState())) return undefined;
    const seq = this.nextSeq++;
    try {
      // The record goes first: a connection in the store is never without its description.
      this.append(encodeRecord(seq, node));
    } catch (err) {
      this.failed(err);
      return undefined;
    }
    const storeName = connectionName(seq);
    this.liveEntries++;
    this.queuedStores.set(storeName, this.enqueue(storeName, { FDSTORE: '1', FDNAME: storeName }, [socketFd]));
    this.flush();
    return storeName;
  }

  remove(storeName: string): void {
    this.liveEntries--;
    const queued = this.queuedStores.get(storeName);
    if (queued !== undefined) {
      // Never handed over: forget it here (its fd number may soon belong to another connection).
      this.queue.delete(queued);
      this.queuedStores.delete(storeName);
    } else {
      this.enqueue(storeName, { FDSTOREREMOVE: '1', FDNAME: storeName }, []);
      this.flush();
    }
  }

  /** Keeps another fd (a listening socket) in the store under `name`; it has no state record. */
  keepFd(name: string, fd: number): void {
    if (!this.enabled) return;
    this.enqueue(name, { FDSTORE: '1', FDNAME: name }, [fd]);
    this.flush();
  }

  /** Drops an fd kept with keepFd. */
  dropFd(name: string): void {
    if (!this.enabled) return;
    this.enqueue(name, { FDSTOREREMOVE: '1', FDNAME: name }, []);
    this.flush();
  }

  private append(record: string): void {
    const bytes = Buffer.from(record, 'latin1');
    fs.writeSync(this.stateFd, bytes, 0, bytes.length, this.stateSize);
    this.stateSize += bytes.length;
    if (++this.records > 2 * this.liveEntries + COMPACT_SLACK) this.rewriteState();
  }

  /** A fresh state memfd with only the live registrations; the old one is dropped after it. */
  private rewriteState(): boolean {
    let fd = -1;
    try {
      const name = `${STATE_PREFIX}${(++this.generation).toString(36)}`;
      fd = createMemfd(name);
      let text = '';
      let records = 0;
      for (const { storeName, node } of this.live()) {
        text += encodeRecord(seqOf(storeName), node);
        records++;
      }
      const bytes = Buffer.from(text, 'latin1');
      fs.writeSync(fd, bytes, 0, bytes.length, 0);
      const previous = { name: this.stateName, fd: this.stateFd };
      this.stateFd = fd;
      this.stateName = name;
      this.stateSize = bytes.length;
      this.records = records;
      // Systemd keeps its own copy of the memfd; ours stays open for appending.
      this.enqueue(name, { FDSTORE: '1', FDNAME: name }, [fd]);
      if (previous.name) this.enqueue(previous.name, { FDSTOREREMOVE: '1', FDNAME: previous.name }, []);
      if (previous.fd >= 0) this.queue.set(this.nextId++, { storeName: previous.name, fields: {}, fds: [], closeFd: previous.fd });
      this.flush();
      return true;
    } catch (err) {
      if (fd >= 0 && fd !== this.stateFd) fs.closeSync(fd);
      this.failed(err);
      return false;
    }
  }

  private enqueue(storeName: string, fields: Record<string, string>, fds: number[]): number {
    const id = this.nextId++;
    this.queue.set(id, { storeName, fields, fds });
    return id;
  }

  private flush(): void {
    if (this.retry) return;
    for (const [id, message] of this.queue) {
      try {
        if (message.closeFd !== undefined) fs.closeSync(message.closeFd);
        else this.notifier.send(message.fields, message.fds);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.flush();
          }, RETRY_MS);
          return;
        }
        this.failed(err);
      }
      this.queue.delete(id);
      if (message.fields.FDSTORE) this.queuedStores.delete(message.storeName);
    }
  }

  private failed(err: unknown): void {
    if (!this.warned) this.log.warn({ err: String(err) }, 'cannot hand registrations to the systemd fd store; they will not survive a restart');
    this.warned = true;
  }
}
