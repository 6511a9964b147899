// Test support for the systemd addon: building it on demand and a fake NOTIFY_SOCKET (python3).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { loadNative, type SdNative } from '../../src/systemd/native.js';
import { repoRoot } from './daemon.js';

/**
 * Builds build/sd_native.node unless it is newer than its source. Called from beforeAll in each file
 * that needs the addon (no globalSetup); concurrent builds from parallel workers are safe because the
 * build script renames a finished file into place.
 */
export function ensureNativeBuilt(): void {
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts/build-native.mjs'), '--if-stale'], {
    stdio: 'inherit',
  });
}

/** The addon, for tests that filter TCP sockets: Linux 6.18 and later want CAP_NET_ADMIN for it. */
export function nativeAsRoot(): SdNative {
  if (process.getuid?.() !== 0) throw new Error('needs root: Linux 6.18+ wants CAP_NET_ADMIN to filter TCP sockets');
  ensureNativeBuilt();
  return loadNative();
}

export interface ReceivedFd {
  fd: number;
  link: string;
  mode: 'socket' | 'file' | 'fifo' | 'other';
  family?: string;
  type?: string;
  listening?: boolean;
  local?: unknown;
  peer?: unknown;
  size?: number;
  content?: string;
  /** A file's whole contents, base64. */
  raw?: string;
  /** A file's F_GET_SEALS bits (null when it cannot be sealed). */
  seals?: number | null;
}

export interface Datagram {
  pid: number | null;
  uid: number | null;
  data: string;
  /** The datagram's bytes, base64. */
  raw: string;
  fields: Record<string, string>;
  fds: ReceivedFd[];
  ctrunc: boolean;
  monotonic_usec: number;
}

export interface NotifyReceiver {
  address: string;
  /** The next datagram, in order of arrival; rejects after timeoutMs. */
  next(timeoutMs?: number): Promise<Datagram>;
  /** Resolves when no datagram arrives within ms (to prove nothing was sent). */
  expectNothing(ms?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts test/fixtures/notify_receiver.py bound to address ("/path" or "@name") and waits until it listens. */
export async function startNotifyReceiver(address: string): Promise<NotifyReceiver> {
  const proc: ChildProcess = spawn('python3', [path.join(repoRoot, 'test/fixtures/notify_receiver.py'), address], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const queue: Datagram[] = [];
  const waiters: Array<(d: Datagram) => void> = [];
  let exited = false;
  const exit = new Promise<void>((resolve) => proc.once('exit', () => ((exited = true), resolve())));
  const listening = new Promise<void>((resolve, reject) => {
    proc.once('error', reject);
    void exit.then(() => reject(new Error(`notify_receiver.py ${address} exited before listening`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as Datagram | { listening: string };
      if ('listening' in msg) return resolve();
      const w = waiters.shift();
      if (w) w(msg);
      else queue.push(msg);
    });
  });
  await listening;

  return {
    address,
    next(timeoutMs = 5000) {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(done), 1);
          reject(new Error(`no datagram on ${address} within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (d: Datagram): void => {
          clearTimeout(t);
          resolve(d);
        };
        waiters.push(done);
      });
    },
    async expectNothing(ms = 200) {
      await new Promise((r) => setTimeout(r, ms));
      if (queue.length) throw new Error(`unexpected datagram: ${JSON.stringify(queue[0])}`);
    },
    async stop() {
      if (!exited) {
        proc.stdin!.end(); // the receiver exits on stdin EOF and removes its socket file
        await exit;
      }
    },
  };
}
