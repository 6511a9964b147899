// Registrations that outlive the process: each registration connection is handed to systemd's
// file descriptor store together with a small memfd describing it, both under one FDNAME, in one
// message (so they are stored or lost together). After a restart, a watchdog kill or a crash,
// systemd passes them back and the new process adopts the very same TCP connections.
import fs from 'node:fs';
import type { Logger } from '../log/logger.js';
import { decodeSnapshot, encodeSnapshot, type SnapshotNode } from '../persistence/snapshot.js';
import type { ActivatedFd } from './activation.js';
import { createMemfd, readMemfd, writeMemfd } from './memfd.js';
import type { Notifier } from './notify.js';

const PREFIX = 'reg-';

/** A registration recovered from the store: its live connection and what it registered. */
export interface StoredRegistration {
  storeName: string;
  socketFd: number;
  node: SnapshotNode;
  /** Registration order, to keep NAMES' newest-first order across restarts. */
  seq: number;
}

type Message = { storeName: string; fields: Record<string, string>; fds: number[]; memfd?: number };

/** Retry delay while PID 1's notify queue is full. */
const RETRY_MS = 10;

export class FdStore {
  private nextSeq = 1;
  private warned = false;
  /**
   * Messages PID 1 has not accepted yet, in order. systemd 252 compares every new fd with every
   * stored one, so a registration storm of thousands can fill its queue: the daemon never blocks
   * on that, it queues here and retries.
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
  ) {}

  /** Continue numbering after the entries adopted from the previous process. */
  continueAfter(seq: number): void {
    this.nextSeq = Math.max(this.nextSeq, seq + 1);
  }

  /** Messages waiting for PID 1 (for status and tests). */
  get backlog(): number {
    return this.queue.size;
  }

  /** Stores a registration's connection and description; returns the store name, or undefined. */
  store(socketFd: number, node: SnapshotNode): string | undefined {
    if (!this.enabled || socketFd < 0) return undefined;
    const storeName = `${PREFIX}${(this.nextSeq++).toString(36)}`;
    let memfd: number;
    try {
      memfd = createMemfd(storeName);
      writeMemfd(memfd, encodeSnapshot({ version: 1, bootId: '', savedAt: Date.now(), nodes: [node], unused: [], creationCeiling: 0 }));
    } catch (err) {
      this.failed(err);
      return undefined;
    }
    const id = this.enqueue({ storeName, fields: { FDSTORE: '1', FDNAME: storeName }, fds: [socketFd, memfd], memfd });
    this.queuedStores.set(storeName, id);
    this.flush();
    return storeName;
  }

  remove(storeName: string): void {
    const queued = this.queuedStores.get(storeName);
    if (queued !== undefined) {
      // Never handed over: forget it here (its socket fd may be reused by the next connection).
      this.done(queued);
      return;
    }
    this.enqueue({ storeName, fields: { FDSTOREREMOVE: '1', FDNAME: storeName }, fds: [] });
    this.flush();
  }

  private enqueue(message: Message): number {
    const id = this.nextId++;
    this.queue.set(id, message);
    return id;
  }

  private done(id: number): void {
    const message = this.queue.get(id);
    if (!message) return;
    this.queue.delete(id);
    if (message.memfd !== undefined) {
      this.queuedStores.delete(message.storeName);
      fs.closeSync(message.memfd);
    }
  }

  private flush(): void {
    if (this.retry) return;
    for (const [id, message] of this.queue) {
      try {
        this.notifier.send(message.fields, message.fds);
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
      this.done(id);
    }
  }

  private failed(err: unknown): void {
    if (!this.warned) this.log.warn({ err: String(err) }, 'cannot hand registrations to the systemd fd store; they will not survive a restart');
    this.warned = true;
  }
}

/**
 * Pairs the stored fds systemd passed back (a stream socket and a memfd per name). Pairs that
 * cannot be read are closed and reported so the caller can drop them from the store.
 */
export function recoverStored(inherited: ActivatedFd[], log: Logger): { stored: StoredRegistration[]; broken: string[] } {
  const byName = new Map<string, ActivatedFd[]>();
  for (const f of inherited) {
    if (!f.name.startsWith(PREFIX)) continue;
    byName.set(f.name, [...(byName.get(f.name) ?? []), f]);
  }
  const stored: StoredRegistration[] = [];
  const broken: string[] = [];
  for (const [storeName, fds] of byName) {
    const socket = fds.find((f) => f.kind === 'stream');
    const data = fds.find((f) => f.kind === 'other');
    const decoded = data ? decodeSnapshot(readMemfd(data.fd)) : undefined;
    if (data) fs.closeSync(data.fd);
    const node = decoded?.ok ? decoded.snapshot.nodes[0] : undefined;
    if (!socket || !node || fds.length !== 2) {
      log.warn({ storeName, fds: fds.length, reason: decoded && !decoded.ok ? decoded.reason : 'incomplete entry' }, 'dropping an unusable fd store entry');
      for (const f of fds) if (f !== data) fs.closeSync(f.fd);
      broken.push(storeName);
      continue;
    }
    stored.push({ storeName, socketFd: socket.fd, node, seq: parseInt(storeName.slice(PREFIX.length), 36) || 0 });
  }
  stored.sort((a, b) => a.seq - b.seq);
  return { stored, broken };
}
