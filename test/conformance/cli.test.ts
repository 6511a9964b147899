// The command-line client (spec §11.3, golden section G-E F1/F2/F4/F5): output texts, output
// streams and exit statuses, against a running daemon, against a port where nothing listens,
// and against small fake servers on loopback that answer in unusual ways.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Resources, freePort, maskFd, runCmd, sleep, waitGone, waitUntil, listedNames } from './util.js';
import { impl } from '../helpers/daemon.js';

const res = new Resources();
afterEach(() => res.cleanup());

const header = (port: number): string => `epmd: up and running on port ${port} with data:\n`;

describe('F1 client commands with no epmd listening', () => {
  it.each([['-names'], ['-kill'], ['-stop', 'foo'], ['-dump']])('%s: "epmd: Cannot connect to local epmd" on stderr, exit 1', async (...cmd) => {
    const port = await freePort();
    const r = await runCmd(['-port', String(port), ...cmd]);
    expect(r.code).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toBe('epmd: Cannot connect to local epmd\n');
  });

  it('-started: exit 1 and completely silent', async () => {
    const port = await freePort();
    const r = await runCmd(['-port', String(port), '-started']);
    expect(r.code).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('the port can come from ERL_EPMD_PORT', async () => {
    const port = await freePort();
    const r = await runCmd(['-names'], { env: { ERL_EPMD_PORT: String(port) } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('epmd: Cannot connect to local epmd\n');
  });
});

describe('F2/F4 client commands against a running daemon', () => {
  it('-names, -dump and -started on an empty daemon', async () => {
    const d = await res.daemon();
    const names = await runCmd(['-port', String(d.port), '-names']);
    expect(names.code).toBe(0);
    expect(names.stdout.toString('latin1')).toBe(header(d.port));
    expect(names.stderr).toBe('');

    const dump = await runCmd(['-port', String(d.port), '-dump']);
    expect(dump.code).toBe(0);
    expect(dump.stdout.toString('latin1')).toBe(header(d.port));
    expect(dump.stderr).toBe('');

    const started = await runCmd(['-port', String(d.port), '-started']);
    expect(started.code).toBe(0);
    expect(started.stdout.length).toBe(0);
    expect(started.stderr).toBe('');
  });

  it('the client finds the daemon through ERL_EPMD_PORT', async () => {
    const d = await res.daemon();
    const r = await runCmd(['-names'], { env: { ERL_EPMD_PORT: String(d.port) } });
    expect(r.code).toBe(0);
    expect(r.stdout.toString('latin1')).toBe(header(d.port));
  });

  it('-port on the command line overrides ERL_EPMD_PORT', async () => {
    const d = await res.daemon();
    const other = await freePort();
    const r = await runCmd(['-port', String(d.port), '-names'], { env: { ERL_EPMD_PORT: String(other) } });
    expect(r.code).toBe(0);
    expect(r.stdout.toString('latin1')).toBe(header(d.port));
  });

  it('-names and -dump copy the registrations (DUMP records with their NULs)', async () => {
    const d = await res.daemon();
    await res.register(d.port, { port: 4242, name: 'clinode' });
    await res.register(d.port, { port: 4243, name: 'ünï' });
    const names = await runCmd(['-port', String(d.port), '-names']);
    expect(names.code).toBe(0);
    expect(names.stdout).toEqual(Buffer.from(`${header(d.port)}name ünï at port 4243\nname clinode at port 4242\n`, 'utf8'));

    const dump = await runCmd(['-port', String(d.port), '-dump']);
    expect(dump.code).toBe(0);
    expect(maskFd(dump.stdout)).toEqual(
      Buffer.from(
        `${header(d.port)}active name     <ünï> at port 4243, fd = 0\n\0active name     <clinode> at port 4242, fd = 0\n\0`,
        'utf8',
      ),
    );
  });

  it('-kill with a live node: "Killing not allowed..." exit 1; after the node leaves: "Killed", exit 0, daemon exits 0', async () => {
    const d = await res.daemon();
    const reg = await res.register(d.port, { port: 4242, name: 'clinode' });
    const refused = await runCmd(['-port', String(d.port), '-kill']);
    expect(refused.code).toBe(1);
    expect(refused.stdout.toString()).toBe('Killing not allowed - living nodes in database.\n');
    expect(refused.stderr).toBe('');
    await reg.close();
    expect(await waitGone(d.port, 'clinode')).toBe(true);
    const killed = await runCmd(['-port', String(d.port), '-kill']);
    expect(killed.code).toBe(0);
    expect(killed.stdout.toString()).toBe('Killed\n');
    expect(killed.stderr).toBe('');
    const ex = await Promise.race([d.exited, sleep(5000).then(() => 'running')]);
    expect(ex).toEqual({ code: 0, signal: null });
  });

  it('-stop against a daemon without relaxed checking: "epmd: local epmd responded with <>", exit 1', async () => {
    const d = await res.daemon();
    await res.register(d.port, { port: 4242, name: 'foo' });
    const r = await runCmd(['-port', String(d.port), '-stop', 'foo']);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('epmd: local epmd responded with <>\n');
    expect(r.stderr).toBe('');
    expect(await listedNames(d.port)).toEqual(['foo']);
  });

  it('-stop under -relaxed_command_check: STOPPED for a node, NOEXIST for an unknown name (exit 0 both)', async () => {
    const d = await res.daemon(['-relaxed_command_check']);
    const reg = await res.register(d.port, { port: 4242, name: 'foo' });
    const stopped = await runCmd(['-port', String(d.port), '-stop', 'foo']);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout.toString()).toBe('STOPPED\n');
    await reg.closed;
    expect(await listedNames(d.port)).toEqual([]);
    const unknown = await runCmd(['-port', String(d.port), '-stop', 'nobody']);
    expect(unknown.code).toBe(0);
    expect(unknown.stdout.toString()).toBe('NOEXIST\n');
  });

  it('-stop with a name longer than 1000 bytes: "epmd: Name too long!" (no newline), exit 1, nothing sent', async () => {
    const d = await res.daemon(['-relaxed_command_check']);
    const long = '\u{1F600}'.repeat(251); // 1004 bytes, 251 characters: registrable
    const edge = '\u{1F600}'.repeat(250); // exactly 1000 bytes: still accepted by the client
    await res.register(d.port, { port: 4244, name: long });
    const regEdge = await res.register(d.port, { port: 4245, name: edge });
    const r = await runCmd(['-port', String(d.port), '-stop', long]);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('epmd: Name too long!');
    expect(await listedNames(d.port)).toContain(Buffer.from(long).toString('latin1'));
    const ok = await runCmd(['-port', String(d.port), '-stop', edge]);
    expect(ok.code).toBe(0);
    expect(ok.stdout.toString()).toBe('STOPPED\n');
    await regEdge.closed;
  });
});

/** A loopback server that runs `onConn` for each connection (IPv4 only: the client falls back to it). */
async function fakeServer(onConn: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const port = await freePort();
  const server = net.createServer((s) => {
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port }, () => r()));
  return { port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('client reactions to unusual answers (fake servers on 127.0.0.1)', () => {
  const servers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of servers.splice(0)) await c();
  });

  it('-names: a server that closes without sending anything gives "epmd: no response from local epmd", exit 1', async () => {
    const srv = await fakeServer((s) => s.once('data', () => s.end()));
    servers.push(srv.close);
    const r = await runCmd(['-port', String(srv.port), '-names']);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('epmd: no response from local epmd\n');
  });

  it('-started: a server that closes without sending anything gives exit 1, silent', async () => {
    const srv = await fakeServer((s) => s.once('data', () => s.end()));
    servers.push(srv.close);
    const r = await runCmd(['-port', String(srv.port), '-started']);
    expect(r.code).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('-names prints the port from the reply, not the one it connected to, and copies the rest verbatim', async () => {
    const srv = await fakeServer((s) =>
      s.once('data', () => s.end(Buffer.concat([Buffer.from([0, 0, 0x11, 0x11]), Buffer.from('anything\0goes\n')]))),
    );
    servers.push(srv.close);
    const r = await runCmd(['-port', String(srv.port), '-names']);
    expect(r.code).toBe(0);
    expect(r.stdout).toEqual(Buffer.from('epmd: up and running on port 4369 with data:\nanything\0goes\n', 'latin1'));
  });

  it('-kill: an answer other than OK gives "Killing not allowed...", exit 1', async () => {
    const srv = await fakeServer((s) => s.once('data', () => s.end('XY')));
    servers.push(srv.close);
    const r = await runCmd(['-port', String(srv.port), '-kill']);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('Killing not allowed - living nodes in database.\n');
  });

  it('-kill: EOF without an answer gives "epmd: local epmd responded with <>", exit 1', async () => {
    const srv = await fakeServer((s) => s.once('data', () => s.end()));
    servers.push(srv.close);
    const r = await runCmd(['-port', String(srv.port), '-kill']);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('epmd: local epmd responded with <>\n');
  });

  // OTP's client fills its 7-byte buffer and, on EOF, prints an empty <> whatever arrived before
  // (spec §11.3 says "X = the bytes received"; observed: always empty on EOF).
  it('-stop: a short answer followed by EOF gives "epmd: local epmd responded with <>", exit 1; the request is "s" + NAME without NUL', async () => {
    let got = Buffer.alloc(0);
    const srv = await fakeServer((s) =>
      s.on('data', (b) => {
        got = Buffer.concat([got, b]);
        if (got.length >= 2 + got.readUInt16BE(0)) s.end('NOE');
      }),
    );
    servers.push(srv.close);
    const r = await runCmd(['-port', String(srv.port), '-stop', 'zap']);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('epmd: local epmd responded with <>\n');
    expect(got).toEqual(Buffer.from([0, 4, 0x73, 0x7a, 0x61, 0x70]));
  });

  it('client requests are the plain frames: -names sends 00 01 6e, -dump 00 01 64, -kill 00 01 6b, -started 00 01 6e', async () => {
    const seen: Buffer[] = [];
    const srv = await fakeServer((s) =>
      s.once('data', (b) => {
        seen.push(b);
        s.end();
      }),
    );
    servers.push(srv.close);
    for (const cmd of ['-names', '-dump', '-kill', '-started']) await runCmd(['-port', String(srv.port), cmd]);
    expect(await waitUntil(() => seen.length === 4, 2000)).toBe(true);
    expect(seen.map((b) => b.toString('hex'))).toEqual(['00016e', '000164', '00016b', '00016e']);
  });
});

describe('F5 argument errors: usage on stderr, exit 1', () => {
  const cases: string[][] = [
    ['-port', '0'],
    ['-port', 'abc'],
    ['-port'],
    ['-packet_timeout', '0'],
    ['-delay_write', '0'],
    ['-delay_accept', 'x'],
    ['-bogus'],
    ['-h'],
    ['-names', 'extra'],
    ['-kill', 'extra'],
    ['-started', 'extra'],
    ['-dump', 'extra'],
    ['-stop'],
    ['-stop', 'foo', 'bar'],
  ];

  it.each(cases)('epmd %s ...', async (...args) => {
    const r = await runCmd(args, { timeoutMs: 5000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr.trim().length).toBeGreaterThan(0);
  });

  it('--help: OTP has none (usage error, exit 1); epmd-ng prints its help on stdout, exit 0', async () => {
    const r = await runCmd(['--help'], { timeoutMs: 5000 });
    if (impl === 'otp') {
      expect(r.code).toBe(1);
      expect(r.stderr.trim().length).toBeGreaterThan(0);
    } else {
      expect(r.code).toBe(0);
      expect(r.stdout.toString()).toContain('names');
      expect(r.stdout.toString()).toContain('-relaxed_command_check');
    }
  });

  it('options after a client command are a usage error (no request is made)', async () => {
    const d = await res.daemon();
    await res.register(d.port, { port: 4242, name: 'foo' });
    for (const args of [
      ['-names', '-port', String(d.port)],
      ['-kill', '-port', String(d.port)],
      ['-stop', 'foo', '-port', String(d.port)],
    ]) {
      const r = await runCmd(args, { timeoutMs: 5000, env: { ERL_EPMD_PORT: String(d.port) } });
      expect(r.code).toBe(1);
      expect(r.stdout.length).toBe(0);
      expect(r.stderr.trim().length).toBeGreaterThan(0);
    }
    expect(await listedNames(d.port)).toEqual(['foo']);
  });
});
