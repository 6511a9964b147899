// What epmd-ng inside a harness container says about its registrations: NAMES (OTP's client),
// `epmd-ng names --json` with the provisional marks, and the register/adopt events of its journal.
import type { ContainerShell } from './container.js';

export interface ListedNode {
  name: string;
  port: number;
  provisional: boolean;
}

export interface RegistryEvent {
  event: string;
  node: string;
  creation: number;
}

export function epmdQueries({ sh, ok }: ContainerShell) {
  return {
    /** The node names `epmd -names` lists right now, sorted (empty if it could not be asked). */
    async listed(): Promise<string[]> {
      const r = await sh('epmd -names');
      return [...r.stdout.matchAll(/^name (\S+) at port \d+$/gm)].map((m) => m[1]!).sort();
    },

    /** `epmd-ng names --json`, with the provisional marks. */
    async listedJson(): Promise<ListedNode[]> {
      return (JSON.parse(await ok('epmd-ng names --json')) as { nodes: ListedNode[] }).nodes;
    },

    /**
     * The daemon's register and adopt events in journal order, of every process of the unit or,
     * with `pid`, of that one process only.
     */
    async registryEvents(pid?: string): Promise<RegistryEvent[]> {
      const out = await ok(`journalctl --no-pager -o json ${pid ? `_PID=${pid}` : '-u epmd-ng.service'}`);
      const events: RegistryEvent[] = [];
      for (const line of out.split('\n')) {
        if (!line) continue;
        const message = (JSON.parse(line) as { MESSAGE?: unknown }).MESSAGE;
        // The daemon's own lines are JSON; systemd's lines about the unit are not.
        if (typeof message !== 'string' || !message.startsWith('{')) continue;
        const m = JSON.parse(message) as { event?: string; node?: string; creation?: number };
        if ((m.event === 'register' || m.event === 'adopt') && m.node) events.push({ event: m.event, node: m.node, creation: m.creation! });
      }
      return events;
    },
  };
}

/** The creation of each node's last event of the given kind. */
export function creationsOf(events: RegistryEvent[], event?: 'register' | 'adopt'): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events) if (!event || e.event === event) out.set(e.node, e.creation);
  return out;
}
