/**
 * Real Erlang nodes for the interop suites.
 *
 * Each node is a `erl -noshell` process (the `erl` script execs erlexec, which execs beam.smp, so the
 * spawned PID is the emulator itself — checked against os:getpid() at start-up). It runs a tiny agent
 * spawned by `-eval` that reads one request per line from stdin (`ID EXPR`), evaluates EXPR with
 * erl_eval and prints `@@ID ok TERM` / `@@ID error TERM` on one line. When stdin closes (the test
 * process went away) the agent halts the node, so a crashed test run cannot leave a beam behind.
 *
 * Nodes are always started with `-start_epmd false`, `-epmd_port P` and ERL_EPMD_PORT=P, so they can
 * only be talking to the epmd listening on P; their distribution listener is bound to 127.0.0.1 on a
 * fixed, pre-checked free port so that expected NAMES output is known in advance, and node names are
 * `NAME@localhost`, so distribution traffic stays on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { cleanEnv } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';

export const ERL = '/usr/bin/erl';

/**
 * Host part of every node name: `-sname NAME@localhost`, so that looking a node up and connecting to
 * it only ever uses 127.0.0.1, whatever the machine's host name resolves to.
 */
export const NODE_HOST = 'localhost';

/** A node name that is unique per call (letters/digits only, valid as an sname). */
export function uniqueName(prefix: string): string {
  return `${prefix}${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
}

export function randomCookie(): string {
  return `c${randomBytes(8).toString('hex')}`;
}

export interface NodeOptions {
  /** -sname, without the host part. */
  name: string;
  /** The epmd port the node must use. */
  epmdPort: number;
  cookie: string;
  hidden?: boolean;
  /** Distribution listen port; a free one is picked when omitted. */
  distPort?: number;
  extraArgs?: string[];
  /** How long to wait for the node to come up (default 15 s). */
  startTimeoutMs?: number;
  /** Command prefix to run the node under (e.g. nsenter into a test host: test/helpers/netlab.ts). */
  wrapper?: string[];
  /**
   * Name the node as on a real host instead of NAME@localhost on 127.0.0.1: true gives `-sname NAME`
   * (the host part is the host's own name, looked up like any other), a string `-name NAME@STRING`;
   * the distribution then listens on every address.
   */
  realHost?: true | string;
}

// The agent. Single expression, no newlines needed; erl_eval supports named funs.
const AGENT = [
  'Agent = fun Loop() ->',
  '  case io:get_line(\'\') of',
  '    eof -> erlang:halt(0);',
  '    {error, _} -> erlang:halt(0);',
  '    Line ->',
  '      {Id, Src} = case string:split(string:trim(Line), " ") of [I, S] -> {I, S}; [I] -> {I, ""} end,',
  '      {Tag, Val} = try',
  '          {ok, Ts, _} = erl_scan:string(Src),',
  '          {ok, Es} = erl_parse:parse_exprs(Ts),',
  '          {value, V, _} = erl_eval:exprs(Es, erl_eval:new_bindings()),',
  '          {ok, V}',
  '        catch C:R -> {error, {C, R}} end,',
  '      io:format("@@~s ~s ~s~n", [Id, Tag, io_lib:print(Val, 1, 16#FFFFFF, -1)]),',
  '      Loop()',
  '  end',
  'end,',
  'spawn(fun() ->',
  '  io:format("@@READY ~s ~w ~s~n", [node(), erlang:system_info(creation), os:getpid()]),',
  '  Agent()',
  'end)',
].join(' ');

function nodeNaming(opts: NodeOptions): string[] {
  if (opts.realHost === true) return ['-sname', opts.name];
  if (typeof opts.realHost === 'string') return ['-name', `${opts.name}@${opts.realHost}`];
  return ['-sname', `${opts.name}@${NODE_HOST}`, '-kernel', 'inet_dist_use_interface', '{127,0,0,1}'];
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<ErlNode>();

/** SIGKILL every node still running (used by afterEach/afterAll; safe to call repeatedly). */
export async function stopAllNodes(): Promise<void> {
  await Promise.all([...live].map((n) => n.stop()));
}

/** Last resort: if the test process exits without cleanup, kill whatever is left synchronously. */
process.on('exit', () => {
  for (const n of live) n.killNow();
});

export class ErlNode {
  readonly name: string;
  readonly distPort: number;
  readonly epmdPort: number;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Full node name (`name@host`), from node() once ready. */
  node = '';
  /** erlang:system_info(creation) at start-up. */
  creation = -1;
  /** os:getpid() of the emulator. */
  osPid = -1;
  /** Resolves once the agent is up; rejects if the process exits first or times out. */
  readonly ready: Promise<void>;
  readonly exited: Promise<ExitStatus>;

  private out = '';
  private err = '';
  private gone = false;
  private nextId = 1;
  private lineBuf = '';
  private pending = new Map<string, { resolve: (v: string) => void; reject: (e: Error) => void }>();

  constructor(opts: NodeOptions & { distPort: number }) {
    this.name = opts.name;
    this.distPort = opts.distPort;
    this.epmdPort = opts.epmdPort;
    const args = [
      '-noshell',
      '-start_epmd',
      'false',
      '-epmd_port',
      String(opts.epmdPort),
      ...nodeNaming(opts),
      '-setcookie',
      opts.cookie,
      ...(opts.hidden ? ['-hidden'] : []),
      '-kernel',
      'inet_dist_listen_min',
      String(opts.distPort),
      '-kernel',
      'inet_dist_listen_max',
      String(opts.distPort),
      ...(opts.extraArgs ?? []),
      '-eval',
      AGENT,
    ];
    const env = cleanEnv({
      ERL_EPMD_PORT: String(opts.epmdPort),
      // A node that fails to start must not drop erl_crash.dump files anywhere.
      ERL_CRASH_DUMP_SECONDS: '0',
    });
    for (const k of ['ERL_FLAGS', 'ERL_AFLAGS', 'ERL_ZFLAGS', 'ERL_LIBS']) delete env[k];
    const [cmd, ...prefix] = [...(opts.wrapper ?? []), ERL];
    this.proc = spawn(cmd!, [...prefix, ...args], { env, cwd: os.tmpdir(), stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.proc.pid!;
    live.add(this);
    this.proc.stdin!.on('error', () => {});
    this.proc.stderr!.on('data', (d) => (this.err += d.toString()));
    this.exited = new Promise<ExitStatus>((resolve) =>
      this.proc.on('exit', (code, signal) => {
        this.gone = true;
        live.delete(this);
        for (const p of this.pending.values()) p.reject(new Error(`node ${this.name} exited (${code ?? signal})`));
        this.pending.clear();
        resolve({ code, signal });
      }),
    );
    const timeoutMs = opts.startTimeoutMs ?? 15_000;
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`node ${this.name} not ready after ${timeoutMs} ms:\n${this.output()}`)),
        timeoutMs,
      );
      this.onReady = (line) => {
        const m = /^@@READY (\S+) (\d+) (\d+)$/.exec(line);
        if (!m) return;
        clearTimeout(timer);
        this.node = m[1]!;
        this.creation = Number(m[2]);
        this.osPid = Number(m[3]);
        resolve();
      };
      void this.exited.then((st) => {
        clearTimeout(timer);
        reject(new Error(`node ${this.name} exited before ready (${st.code ?? st.signal}):\n${this.output()}`));
      });
    });
    this.ready.catch(() => {});
    this.proc.stdout!.on('data', (d) => this.onStdout(d.toString()));
  }

  private onReady: (line: string) => void = () => {};

  private onStdout(chunk: string): void {
    this.out += chunk;
    this.lineBuf += chunk;
    let nl: number;
    while ((nl = this.lineBuf.indexOf('\n')) >= 0) {
      const line = this.lineBuf.slice(0, nl).replace(/\r$/, '');
      this.lineBuf = this.lineBuf.slice(nl + 1);
      if (line.startsWith('@@READY ')) {
        this.onReady(line);
        continue;
      }
      const m = /^@@(\d+) (ok|error) (.*)$/.exec(line);
      if (!m) continue;
      const p = this.pending.get(m[1]!);
      if (!p) continue;
      this.pending.delete(m[1]!);
      if (m[2] === 'ok') p.resolve(m[3]!);
      else p.reject(new Error(`${this.name}: evaluation failed: ${m[3]}`));
    }
  }

  /** Everything the node printed (stdout then stderr). */
  output(): string {
    return this.out + this.err;
  }

  get running(): boolean {
    return !this.gone;
  }

  /**
   * Evaluates an Erlang expression sequence (no trailing dot) on the node and returns the result
   * printed as with ~p, on one line (e.g. `pong`, `{ok,[{"a",41234}]}`).
   */
  eval(expr: string, timeoutMs = 20_000): Promise<string> {
    if (this.gone) return Promise.reject(new Error(`node ${this.name} is not running`));
    const id = String(this.nextId++);
    const src = expr.replace(/\s*\n\s*/g, ' ').trim().replace(/\.$/, '') + '.';
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no answer to ${expr} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.stdin!.write(`${id} ${src}\n`);
    });
  }

  /** Kills the emulator by PID (SIGKILL) and waits until it is gone. */
  async stop(): Promise<void> {
    if (this.gone) return;
    this.killNow();
    await this.exited;
  }

  killNow(): void {
    if (this.gone) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    // Should erl ever not exec into the emulator, make sure the emulator dies as well.
    if (this.osPid > 0 && this.osPid !== this.pid) {
      try {
        process.kill(this.osPid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

/** Spawns a node; await `node.ready` to know whether it came up. */
export async function launchNode(opts: NodeOptions): Promise<ErlNode> {
  const distPort = opts.distPort ?? (await freePort());
  return new ErlNode({ ...opts, distPort });
}

/** Spawns a node and waits until it is up (distribution started, registered with epmd). */
export async function startNode(opts: NodeOptions): Promise<ErlNode> {
  const node = await launchNode(opts);
  try {
    await node.ready;
  } catch (e) {
    await node.stop();
    throw e;
  }
  return node;
}

/** Polls `check` every `intervalMs` until it returns true or `timeoutMs` elapses; returns elapsed ms or -1. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start >= timeoutMs) return -1;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Parses `{ok,[{"a",1234},...]}` as printed for net_adm:names() into a name → port map. */
export function parseNames(printed: string): Map<string, number> | null {
  if (!printed.startsWith('{ok,[')) return null;
  const out = new Map<string, number>();
  for (const m of printed.matchAll(/\{"([^"]*)",(\d+)\}/g)) out.set(m[1]!, Number(m[2]));
  return out;
}
