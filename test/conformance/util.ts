// Shared helpers for the end-to-end conformance suites (test/conformance/*.test.ts).
// They build on test/helpers/{daemon,wire}.ts and add what the suites need on top: controllable
// raw connections, reply builders for NAMES/DUMP, fd masking, listening-socket inspection through
// /proc, and a launcher for daemons that need a lowered fd limit or inherited sockets.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { awaitDaemon, cleanEnv, daemonCommand, startDaemon, type Daemon, type StartOptions } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { exchange, frame, hex, register, type Alive2Fields, type ConnectionEnd, type Exchange, type Registration } from '../helpers/wire.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Unsigned 32-bit big-endian bytes (the port header of NAMES/DUMP replies). */
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export const NAMES_REQ = hex('00 01 6e');
export const DUMP_REQ = hex('00 01 64');
export const KILL_REQ = hex('00 01 6b');

export function bytes(x: Buffer | string): Buffer {
  return typeof x === 'string' ? Buffer.from(x, 'utf8') : x;
}

/** PORT_PLEASE2_REQ frame for a name. */
export function portPleaseReq(name: Buffer | string): Buffer {
  return frame(Buffer.concat([Buffer.from([0x7a]), bytes(name)]));
}

/** STOP_REQ frame for a name. */
export function stopReq(name: Buffer | string): Buffer {
  return frame(Buffer.concat([Buffer.from([0x73]), bytes(name)]));
}

/** A successful PORT2_RESP for a registration made with these fields. */
export function port2Ok(f: Alive2Fields): Buffer {
  const name = bytes(f.name);
  const extra = f.extra ?? Buffer.alloc(0);
  const head = Buffer.alloc(10);
  head[0] = 0x77;
  head[1] = 0;
  head.writeUInt16BE(f.port, 2);
  head[4] = f.nodeType ?? 77;
  head[5] = f.protocol ?? 0;
  head.writeUInt16BE(f.high ?? 6, 6);
  head.writeUInt16BE(f.low ?? 5, 8);
  const nlen = Buffer.alloc(2);
  nlen.writeUInt16BE(name.length);
  const elen = Buffer.alloc(2);
  elen.writeUInt16BE(extra.length);
  return Buffer.concat([head, nlen, name, elen, extra]);
}

export const PORT2_NOT_FOUND = hex('77 01');
export const ALIVE2_X_FAIL = hex('76 01 00 00 00 63');
export const ALIVE2_FAIL = hex('79 01 00 63');

/** NAMES reply: epmd port + one line per entry, entries given most recent first. */
export function namesReply(epmdPort: number, entries: Array<[Buffer | string, number]>): Buffer {
  const lines = entries.map(([name, p]) => Buffer.concat([Buffer.from('name '), bytes(name), Buffer.from(` at port ${p}\n`)]));
  return Buffer.concat([u32(epmdPort), ...lines]);
}

/** DUMP reply with every fd written as 0; compare it with maskFd(actual). */
export function dumpReply(
  epmdPort: number,
  active: Array<[Buffer | string, number]>,
  unused: Array<[Buffer | string, number]> = [],
): Buffer {
  const parts: Buffer[] = [u32(epmdPort)];
  for (const [name, p] of active) {
    parts.push(Buffer.from('active name     <'), bytes(name), Buffer.from(`> at port ${p}, fd = 0\n\0`));
  }
  for (const [name, p] of unused) {
    parts.push(Buffer.from('old/unused name <'), bytes(name), Buffer.from(`>, port = ${p}, fd = 0 \n\0`));
  }
  return Buffer.concat(parts);
}

/** Replaces every "fd = <digits>" by "fd = 0" (the spec says fd numbers are not comparable). */
export function maskFd(b: Buffer): Buffer {
  return Buffer.from(b.toString('latin1').replace(/fd = \d+/g, 'fd = 0'), 'latin1');
}

/** Extracts the creation of an ALIVE2_X_RESP (6 bytes) or ALIVE2_RESP (4 bytes). */
export function creationOf(reply: Buffer): number {
  if (reply.length === 6 && reply[0] === 0x76) return reply.readUInt32BE(2);
  if (reply.length === 4 && reply[0] === 0x79) return reply.readUInt16BE(2);
  throw new Error(`not an ALIVE2 reply: ${reply.toString('hex')}`);
}

/** Registration names currently listed by NAMES (decoded as raw latin1 lines). */
export async function listedNames(port: number, host = '127.0.0.1'): Promise<string[]> {
  const r = await exchange(port, NAMES_REQ, { host });
  return r.recv
    .subarray(4)
    .toString('latin1')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => /^name (.*) at port \d+$/s.exec(l)?.[1] ?? `?${l}`);
}

/** Polls until cond() is true; returns false if it did not become true in time. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(stepMs);
  }
}

/** Waits until NAMES no longer lists `name` (the daemon has processed an unregistration). */
export async function waitGone(port: number, name: string): Promise<boolean> {
  return waitUntil(async () => !(await listedNames(port)).includes(name));
}

/**
 * A raw client connection the test drives step by step: every received byte is kept, and how the
 * server ended the connection (FIN or RST) is recorded.
 */
export class Conn {
  readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  /** How the server ended the connection, or null while it is open. */
  serverEnd: 'FIN' | 'RST' | null = null;
  private listeners = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d) => {
      this.chunks.push(d);
      this.notify();
    });
    socket.on('end', () => {
      if (!this.serverEnd) this.serverEnd = 'FIN';
      this.notify();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.serverEnd && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) this.serverEnd = 'RST';
      this.notify();
    });
    socket.on('close', () => this.notify());
  }

  static open(port: number, opts: { host?: string; localAddress?: string } = {}): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: opts.host ?? '127.0.0.1', port, localAddress: opts.localAddress });
      const onErr = (e: Error): void => reject(e);
      s.once('error', onErr);
      s.once('connect', () => {
        s.off('error', onErr);
        resolve(new Conn(s));
      });
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Number of separate chunks received so far. */
  get chunkCount(): number {
    return this.chunks.length;
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** Resolves true once pred() holds, false after timeoutMs. */
  until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (pred()) done(true);
      };
      const done = (v: boolean): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.listeners.add(check);
    });
  }

  /** Waits for at least n bytes (or the end of the connection); returns what arrived. */
  async waitBytes(n: number, timeoutMs = 3000): Promise<Buffer> {
    await this.until(() => this.data.length >= n || this.serverEnd !== null, timeoutMs);
    return this.data;
  }

  /** Waits for the server to end the connection; 'open' if it did not within timeoutMs. */
  async waitEnd(timeoutMs = 3000): Promise<ConnectionEnd> {
    await this.until(() => this.serverEnd !== null, timeoutMs);
    return this.serverEnd ?? 'open';
  }

  /** Closes our side normally (FIN). */
  destroy(): void {
    this.socket.destroy();
  }

  /** Closes our side with a TCP RST (SO_LINGER 0). */
  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }
}

/** Tracks daemons, connections and registrations of a test or describe block for cleanup. */
export class Resources {
  private daemons: Daemon[] = [];
  private sockets = new Set<net.Socket>();
  private procs = new Set<ChildProcess>();

  async daemon(args: string[] = [], opts: StartOptions = {}): Promise<Daemon> {
    const d = await startDaemon(args, opts);
    this.daemons.push(d);
    return d;
  }

  adoptDaemon(d: Daemon): Daemon {
    this.daemons.push(d);
    return d;
  }

  adoptProc(p: ChildProcess): void {
    this.procs.add(p);
  }

  async conn(port: number, opts: { host?: string; localAddress?: string } = {}): Promise<Conn> {
    const c = await Conn.open(port, opts);
    this.sockets.add(c.socket);
    return c;
  }

  async register(port: number, f: Alive2Fields, host = '127.0.0.1'): Promise<Registration> {
    const r = await register(port, f, host);
    this.sockets.add(r.socket);
    return r;
  }

  trackSocket(s: net.Socket): void {
    this.sockets.add(s);
  }

  /** Closes every tracked client socket (registrations included). */
  async closeSockets(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async cleanup(): Promise<void> {
    await this.closeSockets();
    const ds = this.daemons;
    this.daemons = [];
    await Promise.all(ds.map((d) => d.stop()));
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    this.procs.clear();
  }
}

export { exchange, frame, hex, type Exchange };

// ---------------------------------------------------------------------------------------------
// Running the implementation's command line directly (client mode, start-up errors).

export interface CmdResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** stdout as the separate chunks read from the pipe. */
  stdoutChunks: Buffer[];
  /** True if the process had to be killed because it ran longer than the time limit. */
  timedOut: boolean;
}

/**
 * Runs the implementation under test with these arguments and collects its output. Kills it by
 * PID (SIGKILL) if it is still running after timeoutMs, so a daemon that wrongly starts instead of
 * failing cannot hang the suite.
 */
export function runCmd(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CmdResult> {
  const [cmd, ...prefix] = daemonCommand();
  return new Promise((resolve) => {
    const proc = spawn(cmd!, [...prefix, ...args], { env: cleanEnv(opts.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let timedOut = false;
    proc.stdout!.on('data', (d: Buffer) => out.push(d));
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, opts.timeoutMs ?? 10_000);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err, stdoutChunks: out, timedOut });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Launching a daemon with a lowered fd limit and/or inherited listening sockets.

export interface LaunchOptions {
  args: string[];
  env?: Record<string, string>;
  /** RLIMIT_NOFILE (soft and hard) for the daemon. */
  nofile?: number;
  /** Listening sockets handed over as fds 3.. with LISTEN_FDS/LISTEN_PID (socket activation). */
  listenFds?: number[];
  /** Where to probe readiness (127.0.0.1). */
  probePort: number;
  /** This implementation's command instead of the one under test (daemonCommand()). */
  command?: string[];
}

/**
 * Starts the implementation under `sh -c '... exec'`, so the daemon keeps the shell's PID (needed
 * for LISTEN_PID) and inherits the requested fd limit, then waits until probePort accepts.
 */
export async function launchDaemon(o: LaunchOptions): Promise<Daemon> {
  const [cmd, ...prefix] = o.command ?? daemonCommand();
  let script = '';
  if (o.nofile !== undefined) script += `ulimit -n ${o.nofile} || exit 97; `;
  if (o.listenFds) script += `LISTEN_PID=$$; export LISTEN_PID; `;
  script += 'exec "$@"';
  const env = cleanEnv({ ...(o.env ?? {}), ...(o.listenFds ? { LISTEN_FDS: String(o.listenFds.length) } : {}) });
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe', ...(o.listenFds ?? [])];
  const proc = spawn('/bin/sh', ['-c', script, 'sh', cmd!, ...prefix, ...o.args], { env, stdio });
  const started = await awaitDaemon(proc, o.probePort);
  if (started instanceof Error) throw started;
  return started;
}

// ---------------------------------------------------------------------------------------------
// Listening sockets of a process, read from /proc (no traffic involved).

export interface Listener {
  family: 4 | 6;
  /** '0.0.0.0', '127.0.0.1', '::', '::1', '::ffff:127.0.0.1' or a full hex form for others. */
  address: string;
  port: number;
}

function decodeV4(h: string): string {
  // /proc/net/tcp prints the address as one host-order (little-endian) 32-bit word.
  const b = Buffer.from(h, 'hex');
  return [b[3], b[2], b[1], b[0]].join('.');
}

function decodeV6(h: string): string {
  const b = Buffer.alloc(16);
  for (let w = 0; w < 4; w++) {
    const word = Buffer.from(h.slice(w * 8, w * 8 + 8), 'hex');
    for (let i = 0; i < 4; i++) b[w * 4 + i] = word[3 - i]!;
  }
  if (b.every((x) => x === 0)) return '::';
  if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return '::1';
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  return b.toString('hex');
}

/** The TCP sockets in LISTEN state owned by process `pid`. */
export function listenersOf(pid: number): Listener[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // fd closed meanwhile
    }
  }
  return tcpSockets()
    .filter((s) => s.state === TCP_LISTEN && inodes.has(s.inode))
    .map(({ family, address, port }) => ({ family, address, port }));
}

/** Connections waiting to be accepted on the sockets listening on `port`. */
export function acceptQueued(port: number): number {
  return tcpSockets()
    .filter((s) => s.state === TCP_LISTEN && s.port === port)
    .reduce((n, s) => n + s.rxQueue, 0);
}

/** /proc/net/tcp's states (the kernel's TCP_* numbers, in hex). */
export const TCP_ESTABLISHED = '01';
const TCP_LISTEN = '0A';

/** A TCP socket as /proc/net/tcp and /proc/net/tcp6 list it (the local side's address and port). */
export interface ProcTcpSocket extends Listener {
  state: string;
  remotePort: number;
  inode: string;
  /** Listening: the connections waiting to be accepted. Connected: the bytes not yet read. */
  rxQueue: number;
}

/** Every TCP socket in this network namespace. */
export function tcpSockets(): ProcTcpSocket[] {
  const result: ProcTcpSocket[] = [];
  for (const [file, family] of [
    ['/proc/net/tcp', 4],
    ['/proc/net/tcp6', 6],
  ] as const) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const [addrHex, portHex] = cols[1]!.split(':');
      result.push({
        family,
        address: family === 4 ? decodeV4(addrHex!) : decodeV6(addrHex!),
        port: parseInt(portHex!, 16),
        remotePort: parseInt(cols[2]!.split(':')[1]!, 16),
        state: cols[3]!,
        inode: cols[9]!,
        rxQueue: parseInt(cols[4]!.split(':')[1]!, 16),
      });
    }
  }
  return result;
}

export function listenerKeys(pid: number): string[] {
  return listenersOf(pid)
    .map((l) => (l.family === 6 ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`))
    .sort();
}

export { freePort };

/** Runs fn with its own Resources and cleans them up afterwards (safe for it.concurrent). */
export async function withResources<T>(fn: (res: Resources) => Promise<T>): Promise<T> {
  const res = new Resources();
  try {
    return await fn(res);
  } finally {
    await res.cleanup();
  }
}

/** PIDs of processes that hold a listening TCP socket on `port` (found through /proc, no traffic). */
export function pidsListeningOn(port: number): number[] {
  const inodes = new Set(tcpSockets().filter((s) => s.state === TCP_LISTEN && s.port === port).map((s) => s.inode));
  const pids: number[] = [];
  if (inodes.size === 0) return pids;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) {
          pids.push(Number(entry));
          break;
        }
      } catch {
        // gone meanwhile
      }
    }
  }
  return pids;
}
