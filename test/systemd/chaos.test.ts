// Chaos on a real systemd 252 (scripts/sdh/): a churn of nodes that register once and never again
// (test/fixtures/churn.mjs) and of real Erlang nodes, while epmd-ng's main process is SIGKILLed at
// random moments, more than 20 times; Restart=on-failure brings it back each time. After each
// restart: it served again within 1 s of the kill; every client that holds its connection and got
// its ALIVE2 reply is listed with that creation; nothing is listed whose connection is gone, except
// provisional entries, marked as such, which leave within their TTL.
//
// CHAOS_SEED=<n> replays the moments of the kills (printed); CHAOS_KILLS=<n> changes their number.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng } from '../helpers/prng.js';
import { containerShell, creationsIn, waitFor } from './container.js';
import { epmdQueries, type ListedNode } from './epmd-queries.js';
import { installEpmdNg } from './install.js';
import { BOOT_TIMEOUT_MS, STOP_TIMEOUT_MS, bootContainer, containerName, isRoot, requireRoot, stopContainer } from './sdh.js';

const name = containerName('epmd-chaos');
const shell = containerShell(name);
const { sh, ok, show, journal } = shell;
const { listedJson } = epmdQueries(shell);

const seed = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31);
const KILLS = process.env.CHAOS_KILLS ? Number(process.env.CHAOS_KILLS) : 24;
/** The unit's default start limit is 5 starts in 10 s: kills at least this far apart stay under it. */
const MIN_KILL_SPACING_MS = 2600;
/** EPMD_NG_PROVISIONAL_TTL's default, and the probe interval that may come on top of it. */
const PROVISIONAL_TTL_MS = 30_000;
const PROBE_INTERVAL_MS = 5000;
const STABLE_ERL = ['a', 'b'];

interface ChurnState {
  registered: { name: string; port: number; creation: number }[];
  gone: string[];
  refused: string[];
  pending: string[];
}

/** Pauses the churn and reads what each of its clients holds once nothing is in flight. */
async function pauseChurn(): Promise<ChurnState> {
  await ok('rm -f /run/churn.json && systemctl kill -s USR1 churn.service');
  let state: ChurnState | undefined;
  await waitFor('the churn to pause', async () => {
    const r = await sh('cat /run/churn.json');
    if (r.code === 0) state = JSON.parse(r.stdout) as ChurnState;
    return state !== undefined;
  }, 10_000);
  return state!;
}

const unitActive = async (unit: string) => (await sh(`systemctl is-active --quiet ${unit}`)).code === 0;

describe(`chaos: SIGKILL epmd-ng at random moments during churn (seed ${seed})`, () => {
  if (!isRoot()) {
    it('runs as root', () => requireRoot('test/systemd/chaos.test.ts'));
    return;
  }

  beforeAll(async () => {
    console.log(`chaos: seed ${seed} (CHAOS_SEED=${seed} replays the kill moments), ${KILLS} kills`);
    await bootContainer(name);
    await installEpmdNg(name, ['test/fixtures/churn.mjs', 'test/fixtures/once-only-node.mjs', 'test/fixtures/kill-and-wait.mjs']);
    for (const n of STABLE_ERL) await ok(`systemd-run --unit=erl-${n} --setenv=HOME=/root erl -sname ${n} -start_epmd false -noshell -noinput -setcookie c`);
    await ok('systemd-run --unit=churn node /host/test/fixtures/churn.mjs /run/churn.json 60');
    await waitFor('the Erlang nodes registered', async () => {
      const names = (await listedJson()).map((n) => n.name);
      return STABLE_ERL.every((n) => names.includes(n));
    }, 30_000);
  }, BOOT_TIMEOUT_MS);

  afterAll(() => stopContainer(name), STOP_TIMEOUT_MS);

  it(`${KILLS} kills: served within 1 s each time, every held registration listed with its creation, nothing stale but provisional entries that expire`, async () => {
    const rand = prng(seed);
    /** When each provisional entry was first seen, by name. */
    const provisionalSince = new Map<string, number>();
    /** Erlang nodes started during the chaos and still running (oldest first), and those stopped. */
    const churnErl: string[] = [];
    const stoppedErl = new Set<string>();
    const servedMs: number[] = [];
    const restartsBefore = Number((await show('epmd-ng.service', 'NRestarts')).NRestarts);
    let lastKill = 0;
    let provisionalSeen = 0;
    let heldChecked = 0;

    for (let kill = 1; kill <= KILLS; kill++) {
      // The moment: a random time into the churn, but never so soon that the start limit trips.
      const wait = Math.max(Math.floor(200 + rand() * 1800), MIN_KILL_SPACING_MS - (Date.now() - lastKill));
      await new Promise((r) => setTimeout(r, wait));
      const before = (await show('epmd-ng.service', 'MainPID')).MainPID;
      lastKill = Date.now();
      const served = JSON.parse(await ok('node /host/test/fixtures/kill-and-wait.mjs')) as { servedMs: number };
      servedMs.push(served.servedMs);
      const pid = (await show('epmd-ng.service', 'MainPID')).MainPID;
      expect(pid, `kill ${kill}: a new process`).not.toBe(before);

      const churn = await pauseChurn();
      expect(churn.pending, `kill ${kill}: registrations still in flight`).toEqual([]);
      heldChecked += churn.registered.length;
      const erlRunning = [...STABLE_ERL, ...churnErl];
      let listing: ListedNode[] = [];
      let problems: string[] = [];
      // The daemon may still be noticing connections that closed while no process ran; give it a moment.
      await waitFor(`kill ${kill}: the listing to match the clients`, async () => {
        listing = await listedJson();
        const byName = new Map(listing.map((n) => [n.name, n]));
        problems = [];
        for (const c of churn.registered) {
          const entry = byName.get(c.name);
          if (!entry || entry.provisional || entry.port !== c.port) problems.push(`${c.name} holds its registration but is listed as ${JSON.stringify(entry)}`);
        }
        const holders = new Set([...churn.registered.map((c) => c.name), ...erlRunning]);
        for (const n of listing) if (!n.provisional && !holders.has(n.name)) problems.push(`${n.name} is listed but its connection is gone`);
        return problems.length === 0;
      }, 3000).catch(() => {
        throw new Error(`after kill ${kill} (seed ${seed}): ${problems.join('; ')}`);
      });
      // Each held registration carries the creation its client was given, in this very process.
      let creationProblems: string[] = [];
      await waitFor(`kill ${kill}: creations in the journal`, async () => {
        const own = (await journal('epmd-ng.service')).filter((e) => e._PID === pid);
        // Once-only names: a process either took a client's registration over or registered it.
        const adopted = creationsIn(own, 'adopt');
        const registered = creationsIn(own, 'register');
        const creations = new Map([...adopted, ...registered]);
        creationProblems = churn.registered.filter((c) => creations.get(c.name) !== c.creation).map((c) => `${c.name}: client has ${c.creation}, daemon ${creations.get(c.name)}`);
        return creationProblems.length === 0;
      }, 5000).catch(() => {
        throw new Error(`after kill ${kill} (seed ${seed}): ${creationProblems.join('; ')}`);
      });
      // Provisional entries: only for names no live client holds, and not past their time.
      const now = Date.now();
      for (const n of listing.filter((l) => l.provisional)) {
        provisionalSeen++;
        if (!provisionalSince.has(n.name)) provisionalSince.set(n.name, now);
        expect(churn.registered.some((c) => c.name === n.name), `${n.name} provisional although its client holds it`).toBe(false);
        expect(now - provisionalSince.get(n.name)!, `${n.name} provisional for too long`).toBeLessThanOrEqual(PROVISIONAL_TTL_MS + PROBE_INTERVAL_MS);
      }
      for (const seen of provisionalSince.keys()) if (!listing.some((l) => l.name === seen && l.provisional)) provisionalSince.delete(seen);
      // Erlang nodes come and go too: every fourth round one starts and the oldest started one stops.
      if (kill % 4 === 0) {
        const fresh = `e${kill}`;
        await ok(`systemd-run --unit=erl-${fresh} --setenv=HOME=/root erl -sname ${fresh} -start_epmd false -noshell -noinput -setcookie c`);
        churnErl.push(fresh);
        if (churnErl.length > 2) {
          const old = churnErl.shift()!;
          await ok(`systemctl stop erl-${old}.service`);
          stoppedErl.add(old);
        }
      }
      await ok('systemctl kill -s USR2 churn.service');
    }

    // Every kill restarted the service (none was lost to the start limit) and it served quickly.
    const after = await show('epmd-ng.service', 'NRestarts', 'ActiveState');
    expect(Number(after.NRestarts) - restartsBefore).toBe(KILLS);
    expect(after.ActiveState).toBe('active');
    // Once the kills stop: every running Erlang node is listed for real, stopped ones are not, and
    // provisional entries are all gone within their TTL.
    const churn = await pauseChurn();
    console.log(
      `chaos: served again ${Math.min(...servedMs)}–${Math.max(...servedMs)} ms after each kill (${servedMs.join(', ')}); ` +
        `${heldChecked} held registrations checked; clients: ${churn.registered.length + churn.gone.length + churn.refused.length} in all, ` +
        `${churn.gone.length} closed (by themselves or with a killed process), ${churn.refused.length} without a reply; ${provisionalSeen} provisional sightings`,
    );
    expect(servedMs.filter((ms) => ms > 1000)).toEqual([]);
    await waitFor('the running Erlang nodes listed', async () => {
      const live = (await listedJson()).filter((n) => !n.provisional).map((n) => n.name);
      const running = [];
      for (const n of [...STABLE_ERL, ...churnErl]) if (await unitActive(`erl-${n}`)) running.push(n);
      return running.every((n) => live.includes(n)) && running.length >= STABLE_ERL.length;
    }, 20_000);
    await waitFor('provisional entries to leave', async () => (await listedJson()).every((n) => !n.provisional), PROVISIONAL_TTL_MS + PROBE_INTERVAL_MS);
    const final = await listedJson();
    for (const old of stoppedErl) expect(final.some((n) => n.name === old), `${old} was stopped`).toBe(false);
    expect(final.map((n) => n.name).filter((n) => n.startsWith('k')).sort()).toEqual(churn.registered.map((c) => c.name).sort());
  }, 20 * 60_000);
});
