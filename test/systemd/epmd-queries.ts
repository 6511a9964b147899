// What epmd-ng inside a harness container lists: NAMES through OTP's client, and
// `epmd-ng names --json` with the provisional marks.
import type { ContainerShell } from './container.js';

export interface ListedNode {
  name: string;
  port: number;
  provisional: boolean;
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
  };
}
