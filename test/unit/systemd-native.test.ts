// The addon's helpers other than notify(), the memfd state file, and the loader.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';
import { ensureNativeBuilt } from '../helpers/sd-native.js';
import { createMemfd, readMemfd, writeMemfd } from '../../src/systemd/memfd.js';
import { addonCandidates, loadNative, resetNativeForTests, SYSTEM_ADDON_PATH } from '../../src/systemd/native.js';
import { isLocalPeer } from '../../src/server/locality.js';
import { socketFd } from '../../src/server/socket-fd.js';

const O_CLOEXEC = 0o2000000;

/** The fd's flags as the kernel reports them (close-on-exec shows as O_CLOEXEC). */
function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return parseInt(m?.[1] ?? 'x', 8);
}

beforeAll(() => ensureNativeBuilt());

describe('addon helpers', () => {
  it('setCloexec toggles FD_CLOEXEC', () => {
    const native = loadNative();
    const fd = fs.openSync(os.devNull, 'r');
    try {
      native.setCloexec(fd, false);
      expect(fdFlags(fd) & O_CLOEXEC).toBe(0);
      native.setCloexec(fd, true);
      expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('getRlimitNofile reports the limits', () => {
    const { soft, hard } = loadNative().getRlimitNofile();
    expect(soft).toBeGreaterThan(0);
    expect(hard).toBeGreaterThanOrEqual(soft);
    // Cross-check with the shell's view of this process's limit (inherited by children).
    const fromProc = /^Max open files\s+(\S+)\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    expect(String(soft)).toBe(fromProc?.[1] === 'unlimited' ? 'Infinity' : fromProc?.[1]);
  });
});

describe('steerReuseport', () => {
  // Node 20 cannot set SO_REUSEPORT, so python3 makes the group (two sockets on one port) and runs
  // node with both; node steers, then counts which socket gets 30 connections.
  const counts = (index: number): number[] => {
    const child =
      "const net=require('net');const [addon,index,a,b,port]=process.argv.slice(1);require(addon).steerReuseport(+b,+index);" +
      'const counts=[0,0];[+a,+b].forEach((fd,i)=>net.createServer((s)=>{counts[i]++;s.destroy()}).listen({fd}));' +
      "(async()=>{for(let i=0;i<30;i++)await new Promise((r)=>{const c=net.connect(+port,'127.0.0.1');c.on('close',r);c.on('error',r)});console.log(JSON.stringify(counts));process.exit(0)})()";
    const python = [
      'import socket, subprocess, sys',
      'socks = []',
      'for _ in range(2):',
      '    s = socket.socket()',
      '    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)',
      '    s.bind(("127.0.0.1", socks[0].getsockname()[1] if socks else 0))',
      '    s.listen(64)',
      '    socks.append(s)',
      'fds = [s.fileno() for s in socks]',
      'sys.exit(subprocess.run([sys.argv[1], "-e", sys.argv[2], sys.argv[3], sys.argv[4], *map(str, fds), str(socks[0].getsockname()[1])], pass_fds=fds).returncode)',
    ].join('\n');
    const out = execFileSync('python3', ['-c', python, process.execPath, child, path.join(repoRoot, 'build/sd_native.node'), String(index)], { encoding: 'utf8' });
    return JSON.parse(out) as number[];
  };

  it('sends every new connection of the group to the socket at the index, in the order they joined', () => {
    expect(counts(1)).toEqual([0, 30]);
    expect(counts(0)).toEqual([30, 0]);
  });

  it('throws a system error naming the option for what is not a socket', () => {
    const fd = fs.openSync(os.devNull, 'r');
    try {
      expect(() => loadNative().steerReuseport(fd, 0)).toThrow(/ENOTSOCK.*SO_ATTACH_REUSEPORT_CBPF/);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('setReusePort', () => {
  it('lets a socket with SO_REUSEPORT bind beside one that was bound without it', async () => {
    const native = loadNative();
    const port = await freePort();
    const fd = native.listenTcp('127.0.0.1', port, {});
    try {
      const bindBeside = () =>
        execFileSync('python3', ['-c', [
          'import socket',
          's = socket.socket()',
          'for opt in (socket.SO_REUSEADDR, socket.SO_REUSEPORT): s.setsockopt(socket.SOL_SOCKET, opt, 1)',
          'try:',
          `  s.bind(("127.0.0.1", ${port})); s.listen(); print("bound")`,
          'except OSError as e:',
          '  print(e.strerror)',
        ].join('\n')], { encoding: 'utf8' }).trim();
      expect(native.sockInfo(fd)?.reusePort).toBe(false);
      expect(bindBeside()).toBe('Address already in use');
      native.setReusePort(fd);
      expect(native.sockInfo(fd)?.reusePort).toBe(true);
      expect(bindBeside()).toBe('bound');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('throws a system error naming the option for what is not a socket', () => {
    const fd = fs.openSync(os.devNull, 'r');
    try {
      expect(() => loadNative().setReusePort(fd)).toThrow(/ENOTSOCK.*SO_REUSEPORT/);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('peerIsLocal', () => {
  interface Verdict {
    listener: string;
    from: string;
    to: string;
    native: boolean | null;
    remote: string;
    local: string;
  }
  // What spec §7 says of each connection test/fixtures/peer-check.mjs makes.
  const expected: Record<string, boolean> = {
    'v4 127.0.0.1 -> 127.0.0.1': true,
    'v4 127.0.0.5 -> 127.0.0.1': true,
    'v4 127.0.0.2 -> 192.0.2.1': true,
    'v4 192.0.2.1 -> 192.0.2.1': true,
    'v4 192.0.2.2 -> 192.0.2.1': false,
    'v4 192.0.2.2 -> 127.0.0.1': false,
    'dual-stack 127.0.0.1 -> 127.0.0.1': true,
    'dual-stack 127.0.0.2 -> 127.0.0.1': true,
    'dual-stack 192.0.2.1 -> 192.0.2.1': true,
    'dual-stack 192.0.2.2 -> 192.0.2.1': false,
    'dual-stack ::1 -> ::1': true,
    'dual-stack 2001:db8::1 -> 2001:db8::1': true,
    'dual-stack 2001:db8::2 -> 2001:db8::1': false,
    'dual-stack 2001:db8::2 -> ::1': false,
  };

  it('decides as the rule on Node\'s address strings does: loopback, own and other addresses, IPv4, IPv6, dual-stack (private network namespace)', () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root for unshare -n; run the test command as root');
    const out = execFileSync('unshare', ['-n', process.execPath, path.join(repoRoot, 'test/fixtures/peer-check.mjs'), path.join(repoRoot, 'build/sd_native.node')], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const verdicts = out.trim().split('\n').map((l) => JSON.parse(l) as Verdict);
    expect(verdicts.map((v) => `${v.listener} ${v.from} -> ${v.to}`)).toEqual(Object.keys(expected));
    for (const v of verdicts) {
      const name = `${v.listener} ${v.from} -> ${v.to} (${v.remote} -> ${v.local})`;
      expect(v.native, name).toBe(expected[`${v.listener} ${v.from} -> ${v.to}`]);
      expect(v.native, name).toBe(isLocalPeer(v.remote, () => v.local));
    }
  });

  it('is null for a descriptor without a peer: not a socket, or a listening socket', async () => {
    const fd = fs.openSync(os.devNull, 'r');
    try {
      expect(loadNative().peerIsLocal(fd)).toBeNull();
    } finally {
      fs.closeSync(fd);
    }
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      expect(loadNative().peerIsLocal(socketFd(server))).toBeNull();
    } finally {
      server.close();
    }
  });
});

describe('memfd state file', () => {
  it('round-trips contents with plain fs calls, shrinking too', () => {
    const fd = createMemfd('epmd-state');
    try {
      expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe('/memfd:epmd-state (deleted)');
      expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
      expect(readMemfd(fd).length).toBe(0);
      const big = JSON.stringify({ nodes: Array.from({ length: 2000 }, (_, i) => `node${i}`) });
      writeMemfd(fd, big);
      expect(readMemfd(fd).toString()).toBe(big);
      writeMemfd(fd, '{"nodes":[]}');
      expect(readMemfd(fd).toString()).toBe('{"nodes":[]}');
      // The file offset is not used (it is shared with systemd's dup): a dup sees the same contents.
      const dup = fs.openSync(`/proc/self/fd/${fd}`, 'r');
      try {
        expect(fs.readFileSync(dup, 'utf8')).toBe('{"nodes":[]}');
      } finally {
        fs.closeSync(dup);
      }
      writeMemfd(fd, Buffer.from([0, 1, 2]));
      expect([...readMemfd(fd)]).toEqual([0, 1, 2]);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('loader', () => {
  const saved = process.env.EPMD_NG_NATIVE;
  afterEach(() => {
    if (saved === undefined) delete process.env.EPMD_NG_NATIVE;
    else process.env.EPMD_NG_NATIVE = saved;
    resetNativeForTests();
  });

  it('looks at EPMD_NG_NATIVE, next to the module, the repo build and the system path, in that order', () => {
    expect(addonCandidates({ EPMD_NG_NATIVE: 'rel/x.node' })).toEqual([
      path.resolve('rel/x.node'),
      path.join(repoRoot, 'src/systemd/sd_native.node'),
      path.join(repoRoot, 'build/sd_native.node'),
      SYSTEM_ADDON_PATH,
    ]);
  });

  it('skips candidates that do not exist', () => {
    process.env.EPMD_NG_NATIVE = path.join(os.tmpdir(), 'no-such-dir', 'sd_native.node');
    resetNativeForTests();
    expect(typeof loadNative().notify).toBe('function');
  });

  it('reports a broken addon clearly instead of skipping it', () => {
    const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-native-')), 'sd_native.node');
    fs.writeFileSync(bad, 'not an ELF file');
    process.env.EPMD_NG_NATIVE = bad;
    resetNativeForTests();
    expect(() => loadNative()).toThrow(/^the native addon \(sd_native\.node: systemd notification, socket filter\) is missing: loading .* failed/);
    fs.rmSync(path.dirname(bad), { recursive: true });
  });
});
