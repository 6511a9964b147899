import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built daemon; `npm test` builds it before running the suites. */
export const bundle = path.join(repoRoot, 'dist/epmd-ng.mjs');

/** Copies the built daemon (the bundle and its chunks) into `dir`; returns the copy's path. */
export function copyBundle(dir: string): string {
  const copy = path.join(dir, path.basename(bundle));
  fs.copyFileSync(bundle, copy);
  fs.cpSync(path.join(path.dirname(bundle), 'lib'), path.join(dir, 'lib'), { recursive: true });
  return copy;
}

/**
 * Which implementation the end-to-end suites talk to: epmd-ng (default) or, with EPMD_IMPL=otp,
 * OTP's own epmd from erlang-base, so the suites themselves can be checked against the reference.
 */
export const impl = process.env.EPMD_IMPL === 'otp' ? 'otp' : 'ng';

/** The command (argv prefix) that runs an implementation: by default the one under test. */
export function daemonCommand(which: 'ng' | 'otp' = impl): string[] {
  return which === 'otp' ? ['/usr/bin/epmd'] : [process.execPath, bundle];
}

/** Environment without any ERL_EPMD_* or systemd variables leaking in from the caller. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('ERL_EPMD_') || k.startsWith('LISTEN_') || k === 'NOTIFY_SOCKET' || k.startsWith('WATCHDOG_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export interface Daemon {
  port: number;
  pid: number;
  proc: ChildProcess;
  /** Everything the daemon wrote to stderr so far. */
  stderr(): string;
  stdout(): string;
  /** Resolves with the exit status once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM by PID, then SIGKILL after 3 s; resolves once the process is gone. */
  stop(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Use this port instead of a fresh free one. */
  port?: number;
  /** Do not pass -port; the caller's args or env choose it (port is still used for the readiness probe). */
  noPortFlag?: boolean;
  /** Command to run the daemon under, e.g. ['prlimit', '--nofile=100:100']. */
  wrapper?: string[];
  /** This implementation's command instead of the one under test (daemonCommand()). */
  command?: string[];
}

/**
 * Collects a just-spawned daemon's output and waits until `port` accepts on 127.0.0.1; returns
 * the handle, or an Error (the process is killed) if it exited or did not listen within 10 s.
 */
export async function awaitDaemon(proc: ChildProcess, port: number): Promise<Daemon | Error> {
  let err = '';
  let out = '';
  proc.stderr!.on('data', (d) => (err += d.toString()));
  proc.stdout!.on('data', (d) => (out += d.toString()));
  let gone = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      gone = true;
      resolve({ code, signal });
    }),
  );
  const deadline = Date.now() + 10_000;
  while (!gone && Date.now() < deadline && !(await canConnect(port))) await new Promise((r) => setTimeout(r, 20));
  // A daemon that found the port taken exits 0 without serving: make sure ours is the one answering.
  await new Promise((r) => setTimeout(r, 30));
  if (gone || Date.now() >= deadline) {
    proc.kill('SIGKILL');
    return new Error(`daemon did not start on port ${port}: ${err}`);
  }
  return {
    port,
    pid: proc.pid!,
    proc,
    stderr: () => err,
    stdout: () => out,
    exited,
    stop: async () => {
      if (gone) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Starts the implementation under test in the foreground on a free loopback port
 * (`-port P` first, then args) and waits until it accepts connections.
 */
export async function startDaemon(args: string[] = [], opts: StartOptions = {}): Promise<Daemon> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.port ?? (await freePort());
    const [cmd, ...prefix] = [...(opts.wrapper ?? []), ...(opts.command ?? daemonCommand())];
    const argv = [...prefix, ...(opts.noPortFlag ? [] : ['-port', String(port)]), ...args];
    const proc = spawn(cmd!, argv, { env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    const started = await awaitDaemon(proc, port);
    if (!(started instanceof Error)) return started;
    lastError = started;
    if (opts.port !== undefined) break;
  }
  throw lastError ?? new Error('daemon did not start');
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Runs the implementation's client mode (e.g. ['-port', '1234', '-names']) and collects its output. */
export function runCli(args: string[], env: Record<string, string> = {}, cmdOverride?: string[]): Promise<CliResult> {
  const [cmd, ...prefix] = cmdOverride ?? daemonCommand();
  return new Promise((resolve) => {
    const proc = spawn(cmd!, [...prefix, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    proc.stdout!.on('data', (d) => out.push(d));
    proc.stderr!.on('data', (d) => (err += d.toString()));
    proc.on('close', (code) => {
      const bytes = Buffer.concat(out);
      resolve({ code, stdout: bytes.toString('utf8'), stderr: err, stdoutBytes: bytes });
    });
  });
}
