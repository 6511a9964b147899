/**
 * Two hosts on one machine, as the host-name tests need them: network namespaces made by the test,
 * joined by a veth pair, with documentation-range addresses (nothing leaves the namespaces).
 *
 * - "host": its own network, UTS and mount namespaces: a host name, and an /etc/hosts of the
 *   test's choosing bind-mounted over the real one (rewritten in place, so every process started
 *   later sees the new text). The daemon and the Erlang nodes run here.
 * - "remote": another machine on the same link, network namespace only.
 *
 * Commands run inside through `nsenter`/`ip netns exec`, which exec the program: the PID a test
 * spawns is the program's own, and stopping it by that PID stops it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { repoRoot } from './daemon.js';

export const HOST_V4 = '192.0.2.1';
export const HOST_V6 = '2001:db8::1';
export const REMOTE_V4 = '192.0.2.2';
export const REMOTE_V6 = '2001:db8::2';

export interface ProbeResult {
  connected: boolean;
  /** Hex of every byte received. */
  recv: string;
  end: string;
}

export interface ProbeRequest {
  host: string;
  port: number;
  request: Buffer;
  localAddress?: string;
  waitMs?: number;
  connectMs?: number;
}

/** test/fixtures/ns-probe.mjs running inside a namespace, answering probes. */
export class ProbeAgent {
  private readonly pending = new Map<number, (r: ProbeResult) => void>();
  private nextId = 1;

  constructor(readonly proc: ChildProcess) {
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      const { id, ...result } = JSON.parse(line) as ProbeResult & { id: number };
      this.pending.get(id)?.(result);
      this.pending.delete(id);
    });
  }

  probe({ request, ...rest }: ProbeRequest): Promise<ProbeResult> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.proc.stdin!.write(`${JSON.stringify({ id, hex: request.toString('hex'), ...rest })}\n`);
    });
  }
}

export interface HostLab {
  hostname: string;
  /** argv prefix that runs a program on the host (network, host name, /etc/hosts). */
  onHost: string[];
  /** argv prefix that runs a program on the remote machine. */
  onRemote: string[];
  fromHost: ProbeAgent;
  fromRemote: ProbeAgent;
  /** Replaces the host's /etc/hosts. */
  setHosts(text: string): void;
  /** `ip ARGS` on the host, e.g. ['addr', 'add', '192.0.2.3/24', 'dev', lab.hostLink]. */
  ipOnHost(args: string[]): void;
  hostLink: string;
  /** Back to the host link being up with exactly HOST_V4 and HOST_V6, whatever a test changed. */
  restoreHostAddresses(): void;
  close(): Promise<void>;
}

/** The /etc/hosts of a host installed with Debian's installer, with the host name line given. */
export function debianHosts(nameLine: string): string {
  return [
    '127.0.0.1\tlocalhost',
    nameLine,
    '',
    '# The following lines are desirable for IPv6 capable hosts',
    '::1     localhost ip6-localhost ip6-loopback',
    'ff02::1 ip6-allnodes',
    'ff02::2 ip6-allrouters',
    '',
  ].join('\n');
}

function waitForLine(proc: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) {
        proc.stdout!.off('data', onData);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`namespace holder exited (${code}) before "${text}": ${seen}`)));
  });
}

export interface RemoteHost {
  /** argv prefix that runs a program on the remote machine. */
  onRemote: string[];
  fromRemote: ProbeAgent;
  /** Name of the link's end on the target side, up but without addresses: the caller gives it HOST_V4/HOST_V6. */
  targetLink: string;
  close(): Promise<void>;
}

const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const unique = () => `${process.pid % 100000}${Math.floor(Math.random() * 100)}`;

function startAgent(prefix: string[], started: ChildProcess[]): ProbeAgent {
  const [cmd, ...args] = [...prefix, process.execPath, path.join(repoRoot, 'test/fixtures/ns-probe.mjs')];
  const proc = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  started.push(proc);
  return new ProbeAgent(proc);
}

async function killAll(started: ChildProcess[]): Promise<void> {
  for (const p of started) p.kill('SIGKILL');
  await Promise.all(started.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : undefined)));
}

/**
 * Another machine on a link to `target`: a network namespace of the test's own, with REMOTE_V4 and
 * REMOTE_V6, joined by a veth pair to the network namespace `target` names (an `ip netns` name, or
 * the PID of a process in it, such as a container's init). Root only.
 */
export async function createRemote(target: string | number): Promise<RemoteHost> {
  const id = unique();
  const ns = `epmdng-r${id}`;
  const link = `er${id}`;
  const targetLink = `eh${id}`;
  const started: ChildProcess[] = [];
  const close = async () => {
    await killAll(started);
    try {
      ip(['netns', 'del', ns]); // takes the veth pair with it
    } catch {
      /* not created */
    }
  };
  try {
    ip(['netns', 'add', ns]);
    ip(['link', 'add', link, 'netns', ns, 'type', 'veth', 'peer', 'name', targetLink, 'netns', String(target)]);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    ip(['-n', ns, 'addr', 'add', `${REMOTE_V4}/24`, 'dev', link]);
    ip(['-n', ns, '-6', 'addr', 'add', `${REMOTE_V6}/64`, 'dev', link, 'nodad']);
    ip(['-n', ns, 'link', 'set', link, 'up']);
    const onRemote = ['ip', 'netns', 'exec', ns];
    return { onRemote, fromRemote: startAgent(onRemote, started), targetLink, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Builds the two hosts. Root only. */
export async function createLab(hostname = 'epmdhost'): Promise<HostLab> {
  const hostNs = `epmdng-h${unique()}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'epmdng-lab-'));
  const hostsFile = path.join(dir, 'hosts');
  fs.writeFileSync(hostsFile, debianHosts(`127.0.1.1\t${hostname}`));
  const inNs = (args: string[]) => ip(['-n', hostNs, ...args]);
  const started: ChildProcess[] = [];
  let remote: RemoteHost | undefined;
  const close = async () => {
    await killAll(started);
    await remote?.close();
    try {
      ip(['netns', 'del', hostNs]);
    } catch {
      /* not created */
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    ip(['netns', 'add', hostNs]);
    inNs(['link', 'set', 'lo', 'up']);
    remote = await createRemote(hostNs);
    const hostLink = remote.targetLink;
    const restoreHostAddresses = () => {
      inNs(['link', 'set', hostLink, 'up']);
      inNs(['addr', 'flush', 'dev', hostLink]);
      inNs(['addr', 'add', `${HOST_V4}/24`, 'dev', hostLink]);
      inNs(['-6', 'addr', 'add', `${HOST_V6}/64`, 'dev', hostLink, 'nodad']);
    };
    restoreHostAddresses();
    // The host's UTS and mount namespaces live as long as this holder process.
    const holder = spawn(
      'ip',
      ['netns', 'exec', hostNs, 'unshare', '--uts', '--mount', '--propagation', 'private', 'sh', '-c',
        `hostname ${hostname} && mount --bind ${hostsFile} /etc/hosts && echo ready && exec sleep 100000`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    started.push(holder);
    await waitForLine(holder, 'ready');
    const onHost = ['nsenter', '-t', String(holder.pid), '-n', '-u', '-m', '--'];
    return {
      hostname,
      onHost,
      onRemote: remote.onRemote,
      fromHost: startAgent(onHost, started),
      fromRemote: remote.fromRemote,
      // In place: the bind mount follows the inode, so a new file would not be seen.
      setHosts: (text) => fs.writeFileSync(hostsFile, text),
      ipOnHost: inNs,
      hostLink,
      restoreHostAddresses,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
