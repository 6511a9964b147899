// Shell helpers for tests that drive a harness container: run commands, read unit properties and
// the journal, wait for conditions.
import { execIn, type ExecResult } from './sdh.js';

/** One entry of `journalctl -o json`: MESSAGE, PRIORITY, the daemon's EPMD_* fields, journald's own. */
export interface JournalEntry {
  MESSAGE?: string;
  PRIORITY?: string;
  __MONOTONIC_TIMESTAMP?: string;
  [field: string]: string | undefined;
}

export interface ContainerShell {
  sh(script: string, timeoutMs?: number): Promise<ExecResult>;
  /** Runs a command that must succeed; returns its stdout. */
  ok(script: string, timeoutMs?: number): Promise<string>;
  show(unit: string, ...props: string[]): Promise<Record<string, string>>;
  journal(unit: string, extra?: string): Promise<JournalEntry[]>;
}

export function containerShell(name: string): ContainerShell {
  const sh = (script: string, timeoutMs = 60_000) => execIn(name, ['bash', '-c', script], { timeoutMs });
  const ok = async (script: string, timeoutMs?: number) => {
    const r = await sh(script, timeoutMs);
    if (r.code !== 0) throw new Error(`\`${script}\` failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  return {
    sh,
    ok,
    async show(unit, ...props) {
      const out = await ok(`systemctl show ${unit} ${props.map((p) => `-p ${p}`).join(' ')}`);
      return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    },
    async journal(unit, extra = '') {
      const out = await ok(`journalctl --no-pager -u ${unit} -o json ${extra}`);
      return out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as JournalEntry);
    },
  };
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** creation per node from the daemon's register or adopt events in journal entries (the last one wins). */
export function creationsIn(entries: JournalEntry[], event: 'register' | 'adopt'): Map<string, number> {
  const out = new Map<string, number>();
  // The daemon's own entries carry EPMD_* fields; systemd's lines about the unit do not.
  for (const e of entries) if (e.EPMD_EVENT === event && e.EPMD_NODE !== undefined) out.set(e.EPMD_NODE, Number(e.EPMD_CREATION));
  return out;
}

/**
 * Shell command for the container: a fresh node looks `node` up by the container's host name, as
 * `rabbitmqctl` or `bin/app remote` would (wherever /etc/hosts maps that name), and prints `pong`
 * or `pang`.
 */
export function pingByHostName(node: string): string {
  return `erl -sname p$RANDOM -start_epmd false -noshell -setcookie c -eval 'io:format("~p~n", [net_adm:ping(list_to_atom("${node}@" ++ "'"$(hostname)"'"))]), halt().'`;
}
