// Socket activation: LISTEN_* parsing (pure), fd classification by sockInfo and by /proc, and the
// whole start-up path in a child process that really inherits fds 3.. (run from an esbuild bundle,
// like the daemon, which also checks that the bundled loader finds the addon).
import { spawn } from 'node:child_process';
import { buildSync } from 'esbuild';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/daemon.js';
import { ensureNativeBuilt } from '../helpers/sd-native.js';
import {
  classifyFd,
  kindFromProc,
  kindFromSockInfo,
  listenFds,
  takeActivationFds,
  unsetListenEnv,
} from '../../src/systemd/activation.js';
import { loadNative, type SdNative } from '../../src/systemd/native.js';

function osFd(h: net.Socket | net.Server): number {
  return (h as unknown as { _handle: { fd: number } })._handle.fd;
}

describe('listenFds', () => {
  it('returns nothing unless LISTEN_PID is ours', () => {
    expect(listenFds({}, 42)).toEqual([]);
    expect(listenFds({ LISTEN_PID: '41', LISTEN_FDS: '2' }, 42)).toEqual([]);
    expect(listenFds({ LISTEN_PID: '42' }, 42)).toEqual([]);
  });

  it('numbers fds from 3 and names them', () => {
    expect(listenFds({ LISTEN_PID: '42', LISTEN_FDS: '3', LISTEN_FDNAMES: 'epmd.socket:epmd.socket:conn-1' }, 42)).toEqual([
      { fd: 3, name: 'epmd.socket' },
      { fd: 4, name: 'epmd.socket' },
      { fd: 5, name: 'conn-1' },
    ]);
  });

  it("names them 'unknown' without LISTEN_FDNAMES", () => {
    expect(listenFds({ LISTEN_PID: '42', LISTEN_FDS: '2' }, 42)).toEqual([
      { fd: 3, name: 'unknown' },
      { fd: 4, name: 'unknown' },
    ]);
  });

  it('treats LISTEN_FDS=0 as no fds', () => {
    expect(listenFds({ LISTEN_PID: '42', LISTEN_FDS: '0', LISTEN_FDNAMES: '' }, 42)).toEqual([]);
  });

  it('throws on malformed variables instead of silently dropping sockets', () => {
    expect(() => listenFds({ LISTEN_PID: 'x', LISTEN_FDS: '1' }, 42)).toThrow(/LISTEN_PID/);
    expect(() => listenFds({ LISTEN_PID: '42', LISTEN_FDS: '-1' }, 42)).toThrow(/LISTEN_FDS/);
    expect(() => listenFds({ LISTEN_PID: '42', LISTEN_FDS: 'two' }, 42)).toThrow(/LISTEN_FDS/);
    expect(() => listenFds({ LISTEN_PID: '42', LISTEN_FDS: '2', LISTEN_FDNAMES: 'a' }, 42)).toThrow(/LISTEN_FDNAMES/);
    expect(() => listenFds({ LISTEN_PID: '42', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a:b' }, 42)).toThrow(/LISTEN_FDNAMES/);
  });

  it('unsetListenEnv removes exactly the three variables', () => {
    const env = { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'x', NOTIFY_SOCKET: '/run/n', PATH: '/bin' };
    unsetListenEnv(env);
    expect(env).toEqual({ NOTIFY_SOCKET: '/run/n', PATH: '/bin' });
  });

  it('takeActivationFds unsets the variables even when they are not for us', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '1', LISTEN_FDS: '1' };
    expect(takeActivationFds(env, 42)).toEqual([]);
    expect(env).toEqual({});
  });
});

describe('fd classification', () => {
  let native: SdNative;
  let server: net.Server;
  let server6: net.Server | null = null;
  let client: net.Socket;
  let accepted: net.Socket;
  let unixServer: net.Server;
  let unixClient: net.Socket;
  let tmp: string;
  let fileFd: number;

  beforeAll(async () => {
    ensureNativeBuilt();
    native = loadNative();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-activation-'));
    server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const acceptedP = new Promise<net.Socket>((r) => server.once('connection', r));
    client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    accepted = await acceptedP;
    server6 = await new Promise<net.Server | null>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(null)); // no IPv6 on this machine
      s.listen(0, '::1', () => resolve(s));
    });
    unixServer = net.createServer();
    await new Promise<void>((r) => unixServer.listen(path.join(tmp, 'u.sock'), r));
    unixClient = net.connect(path.join(tmp, 'u.sock'));
    await new Promise<void>((r) => unixClient.once('connect', r));
    fileFd = fs.openSync(path.join(tmp, 'regular'), 'w');
  });
  afterAll(() => {
    client.destroy();
    accepted.destroy();
    unixClient.destroy();
    server.close();
    server6?.close();
    unixServer.close();
    fs.closeSync(fileFd);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('sockInfo tells listening, connected and non-socket fds apart', () => {
    expect(native.sockInfo(osFd(server))).toEqual({ domain: 2, type: 1, protocol: 6, acceptConn: true, reusePort: false });
    expect(native.sockInfo(osFd(client))).toEqual({ domain: 2, type: 1, protocol: 6, acceptConn: false, reusePort: false });
    expect(native.sockInfo(osFd(accepted))).toEqual({ domain: 2, type: 1, protocol: 6, acceptConn: false, reusePort: false });
    if (server6) expect(native.sockInfo(osFd(server6))).toMatchObject({ domain: 10, acceptConn: true, reusePort: false });
    expect(native.sockInfo(osFd(unixServer))).toEqual({ domain: 1, type: 1, protocol: 0, acceptConn: true, reusePort: false });
    expect(native.sockInfo(fileFd)).toBeNull();
  });

  it('listenBacklog tells the backlog of a listening TCP socket, null for every other fd', async () => {
    // Node listens with 511 unless told; the kernel caps a larger request at net.core.somaxconn.
    expect(native.listenBacklog(osFd(server))).toBe(511);
    const small = net.createServer();
    await new Promise<void>((r) => small.listen({ port: 0, host: '127.0.0.1', backlog: 77 }, r));
    try {
      expect(native.listenBacklog(osFd(small))).toBe(77);
    } finally {
      small.close();
    }
    if (server6) expect(native.listenBacklog(osFd(server6))).toBe(511);
    for (const fd of [osFd(client), osFd(accepted), osFd(unixServer), osFd(unixClient), fileFd]) expect(native.listenBacklog(fd)).toBeNull();
    expect(() => native.listenBacklog(60_000)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('sockInfo throws EBADF for an fd that is not open', () => {
    const fd = 60_000; // not a just-closed fd, which another thread could reuse meanwhile
    expect(() => fs.fstatSync(fd)).toThrow();
    expect(() => native.sockInfo(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('the /proc fallback agrees with sockInfo', () => {
    const fds = [osFd(server), osFd(client), osFd(accepted), osFd(unixServer), osFd(unixClient), fileFd];
    if (server6) fds.push(osFd(server6));
    const viaProc = fds.map((fd) => kindFromProc(fd));
    const viaSockInfo = fds.map((fd) => kindFromSockInfo(native.sockInfo(fd)));
    expect(viaProc).toEqual(viaSockInfo);
    expect(viaProc.slice(0, 6)).toEqual(['listening', 'stream', 'stream', 'listening', 'stream', 'other']);
    expect(classifyFd(osFd(server), null)).toBe('listening');
    expect(classifyFd(osFd(accepted), native)).toBe('stream');
  });

  it('a memfd is "other"', () => {
    const fd = native.memfdCreate('state');
    try {
      expect(kindFromProc(fd)).toBe('other');
      expect(kindFromSockInfo(native.sockInfo(fd))).toBe('other');
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('takeActivationFds in a socket-activated child (bundled)', () => {
  let tmp: string;
  let bundle: string;

  beforeAll(() => {
    ensureNativeBuilt();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-activation-child-'));
    // Bundled into build/ (inside the repo) with the daemon's own banner, like dist/epmd-ng.mjs.
    bundle = path.join(repoRoot, 'build', `activation-child-${process.pid}.mjs`);
    buildSync({
      stdin: {
        contents: `
          import { takeActivationFds, kindFromProc } from './src/systemd/activation.ts';
          const fds = takeActivationFds();
          const proc = fds.map((f) => kindFromProc(f.fd));
          const env = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'].filter((k) => k in process.env);
          console.log(JSON.stringify({ pid: process.pid, fds, proc, env }));`,
        resolveDir: repoRoot,
        sourcefile: 'activation-child.ts',
        loader: 'ts',
      },
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node18',
      banner: {
        js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
      },
      logLevel: 'error',
    });
  });
  afterAll(() => {
    fs.rmSync(bundle, { force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('finds, classifies and hands over the inherited fds', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const acceptedP = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const accepted = await acceptedP;
    const fileFd = fs.openSync(path.join(tmp, 'state'), 'w');
    try {
      // LISTEN_PID must be the child's pid, which is only known inside it: let sh set it, then exec node.
      const child = spawn('sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$1"', process.execPath, bundle], {
        env: {
          PATH: process.env.PATH,
          LISTEN_FDS: '3',
          LISTEN_FDNAMES: 'epmd.socket:conn-1:state',
        },
        stdio: ['ignore', 'pipe', 'inherit', osFd(server), osFd(accepted), fileFd],
      });
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(code).toBe(0);
      const result = JSON.parse(out) as { pid: number; fds: unknown[]; proc: string[]; env: string[] };
      expect(result.fds).toEqual([
        { fd: 3, name: 'epmd.socket', kind: 'listening' },
        { fd: 4, name: 'conn-1', kind: 'stream' },
        { fd: 5, name: 'state', kind: 'other' },
      ]);
      expect(result.proc).toEqual(['listening', 'stream', 'other']);
      expect(result.env).toEqual([]);
    } finally {
      client.destroy();
      accepted.destroy();
      server.close();
      fs.closeSync(fileFd);
    }
  });
});
