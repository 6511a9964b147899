// The addon's notify() and the Notifier against a fake NOTIFY_SOCKET (test/fixtures/notify_receiver.py).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureNativeBuilt, startNotifyReceiver, type NotifyReceiver } from '../helpers/sd-native.js';
import { loadNative, type SdNative } from '../../src/systemd/native.js';
import { formatState, monotonicUsec, Notifier, startWatchdog } from '../../src/systemd/notify.js';

/** The OS fd behind a net.Socket/net.Server (undocumented but stable on Unix). */
function osFd(h: net.Socket | net.Server): number {
  return (h as unknown as { _handle: { fd: number } })._handle.fd;
}

let native: SdNative;
let tmp: string;
const savedNotifySocket = process.env.NOTIFY_SOCKET;

beforeAll(() => {
  ensureNativeBuilt();
  native = loadNative();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'epmd-ng-notify-'));
});
afterEach(() => {
  if (savedNotifySocket === undefined) delete process.env.NOTIFY_SOCKET;
  else process.env.NOTIFY_SOCKET = savedNotifySocket;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function abstractName(): string {
  return `@epmd-ng-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
}

/** A TCP server on 127.0.0.1 with one accepted connection. */
async function tcpPair(): Promise<{ server: net.Server; client: net.Socket; accepted: net.Socket; close(): void }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const acceptedP = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  const accepted = await acceptedP;
  return {
    server,
    client,
    accepted,
    close() {
      client.destroy();
      accepted.destroy();
      server.close();
    },
  };
}

describe.each([
  ['filesystem path', () => path.join(tmp, 'notify.sock')],
  ['abstract name', abstractName],
])('notify() to a %s', (_kind, makeAddress) => {
  let rx: NotifyReceiver;
  beforeAll(async () => {
    rx = await startNotifyReceiver(makeAddress());
  });
  afterAll(() => rx.stop());

  it('sends one datagram from our pid, reading NOTIFY_SOCKET at call time', async () => {
    process.env.NOTIFY_SOCKET = rx.address;
    expect(native.notify('READY=1\nSTATUS=up')).toBe(true);
    const d = await rx.next();
    expect(d.data).toBe('READY=1\nSTATUS=up');
    expect(d.pid).toBe(process.pid);
    expect(d.fds).toEqual([]);
  });

  it('an explicit address overrides the environment', async () => {
    delete process.env.NOTIFY_SOCKET;
    expect(native.notify('WATCHDOG=1', null, rx.address)).toBe(true);
    expect((await rx.next()).data).toBe('WATCHDOG=1');
  });

  it('passes fds with SCM_RIGHTS: the receiver gets the very TCP sockets', async () => {
    const p = await tcpPair();
    try {
      process.env.NOTIFY_SOCKET = rx.address;
      expect(native.notify('FDSTORE=1\nFDNAME=conn-1', [osFd(p.accepted), osFd(p.server)])).toBe(true);
      const d = await rx.next();
      expect(d.fields).toEqual({ FDSTORE: '1', FDNAME: 'conn-1' });
      expect(d.ctrunc).toBe(false);
      expect(d.fds).toHaveLength(2);
      const [conn, listener] = d.fds;
      expect(conn).toMatchObject({
        mode: 'socket',
        family: 'AF_INET',
        type: 'SOCK_STREAM',
        listening: false,
        local: ['127.0.0.1', p.accepted.localPort],
        peer: ['127.0.0.1', p.client.localPort],
      });
      expect(listener).toMatchObject({
        mode: 'socket',
        listening: true,
        local: ['127.0.0.1', (p.server.address() as net.AddressInfo).port],
        peer: null,
      });
      // Our own fds are untouched by sending: the connection still works.
      const echoed = new Promise<string>((r) => p.accepted.once('data', (b) => r(b.toString())));
      p.client.write('still here');
      expect(await echoed).toBe('still here');
    } finally {
      p.close();
    }
  });
});

describe('notify() errors and the unset case', () => {
  it('returns false and sends nothing when NOTIFY_SOCKET is unset or empty', () => {
    delete process.env.NOTIFY_SOCKET;
    expect(native.notify('READY=1')).toBe(false);
    process.env.NOTIFY_SOCKET = '';
    expect(native.notify('READY=1')).toBe(false);
  });

  it.each([
    ['a missing path', () => path.join(tmp, 'missing', 'notify.sock'), 'ENOENT'],
    ['an abstract name nobody bound', abstractName, 'ECONNREFUSED'],
    ['a regular file', () => (fs.writeFileSync(path.join(tmp, 'file'), ''), path.join(tmp, 'file')), 'ECONNREFUSED'],
    ['a relative path', () => 'notify.sock', 'EAFNOSUPPORT'],
    ['a vsock address (systemd 254+)', () => 'vsock:2:1234', 'EAFNOSUPPORT'],
    ['an over-long path', () => `/${'x'.repeat(107)}`, 'ENAMETOOLONG'],
  ])('throws for %s', (_what, address, code) => {
    process.env.NOTIFY_SOCKET = address();
    let err: NodeJS.ErrnoException | undefined;
    try {
      native.notify('READY=1');
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err?.code).toBe(code);
    expect(err?.message).toContain(code);
    expect(err?.message).toContain(process.env.NOTIFY_SOCKET);
    expect(err?.errno).toBeLessThan(0);
  });

  it('throws EPROTOTYPE for a stream socket', async () => {
    const sockPath = path.join(tmp, 'stream.sock');
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(sockPath, r));
    try {
      expect(() => native.notify('READY=1', null, sockPath)).toThrow(expect.objectContaining({ code: 'EPROTOTYPE' }));
    } finally {
      server.close();
    }
  });

  it('rejects bad arguments with TypeError', () => {
    expect(() => native.notify(1 as unknown as string)).toThrow(TypeError);
    expect(() => native.notify('X', [1.5])).toThrow(TypeError);
    expect(() => native.notify('X', [-1])).toThrow(TypeError);
    expect(() => native.notify('X', 3 as unknown as number[])).toThrow(TypeError);
  });

  it('reports EBADF for an fd that is not open', async () => {
    const rx = await startNotifyReceiver(abstractName());
    try {
      // A number far above any fd in use (a just-closed fd could be reused by another thread).
      const fd = 60_000;
      expect(() => fs.fstatSync(fd)).toThrow();
      expect(() => native.notify('FDSTORE=1', [fd], rx.address)).toThrow(expect.objectContaining({ code: 'EBADF' }));
      await rx.expectNothing();
    } finally {
      await rx.stop();
    }
  });
});

describe('Notifier', () => {
  let rx: NotifyReceiver;
  let n: Notifier;
  beforeAll(async () => {
    rx = await startNotifyReceiver(abstractName());
    // A private env object, not process.env: the Notifier hands the address to the addon itself.
    n = new Notifier({ NOTIFY_SOCKET: rx.address });
  });
  afterAll(() => rx.stop());

  it('is a no-op that never loads the addon outside systemd', () => {
    const load = (): never => {
      throw new Error('addon must not be loaded');
    };
    const off = new Notifier({}, load);
    expect(off.isEnabled()).toBe(false);
    expect(off.ready('x')).toBe(false);
    expect(off.status('x')).toBe(false);
    expect(off.reloading()).toBe(false);
    expect(off.stopping()).toBe(false);
    expect(off.watchdog()).toBe(false);
    expect(off.storeFd('conn-1', 0)).toBe(false);
    expect(off.removeFd('conn-1')).toBe(false);
    expect(off.extendTimeout(1)).toBe(false);
    expect(new Notifier({ NOTIFY_SOCKET: '' }, load).isEnabled()).toBe(false);
  });

  it('surfaces a missing addon once NOTIFY_SOCKET is set', () => {
    const missing = new Notifier({ NOTIFY_SOCKET: rx.address }, () => {
      throw new Error('systemd notification support (sd_native.node) is missing: test');
    });
    expect(missing.isEnabled()).toBe(true);
    expect(() => missing.ready()).toThrow(/sd_native\.node\) is missing/);
  });

  it('sends the helper messages', async () => {
    expect(n.isEnabled()).toBe(true);
    n.ready('serving\non 4369');
    expect((await rx.next()).data).toBe('READY=1\nSTATUS=serving on 4369');
    n.ready();
    expect((await rx.next()).data).toBe('READY=1');
    n.status('3 nodes');
    expect((await rx.next()).data).toBe('STATUS=3 nodes');
    n.stopping();
    expect((await rx.next()).data).toBe('STOPPING=1');
    n.watchdog();
    expect((await rx.next()).data).toBe('WATCHDOG=1');
    n.extendTimeout(5_000_000);
    expect((await rx.next()).data).toBe('EXTEND_TIMEOUT_USEC=5000000');
    n.removeFd('conn-7');
    expect((await rx.next()).data).toBe('FDSTOREREMOVE=1\nFDNAME=conn-7');
    n.send({ MAINPID: String(process.pid) });
    const d = await rx.next();
    expect(d.data).toBe(`MAINPID=${process.pid}`);
    expect(d.pid).toBe(process.pid);
  });

  it('reloading() carries MONOTONIC_USEC on the same clock as systemd (CLOCK_MONOTONIC)', async () => {
    const before = monotonicUsec();
    n.reloading();
    const d = await rx.next();
    expect(d.fields.RELOADING).toBe('1');
    const sent = BigInt(d.fields.MONOTONIC_USEC ?? '');
    expect(sent).toBeGreaterThanOrEqual(before);
    // python's time.monotonic_ns() on receipt: same clock, so slightly later and close.
    expect(BigInt(d.monotonic_usec)).toBeGreaterThanOrEqual(sent);
    expect(BigInt(d.monotonic_usec) - sent).toBeLessThan(5_000_000n);
  });

  it('storeFd() passes the fd under its name', async () => {
    const p = await tcpPair();
    try {
      n.storeFd('conn-42', osFd(p.accepted));
      const d = await rx.next();
      expect(d.fields).toEqual({ FDSTORE: '1', FDNAME: 'conn-42' });
      expect(d.fds).toHaveLength(1);
      expect(d.fds[0]).toMatchObject({ mode: 'socket', peer: ['127.0.0.1', p.client.localPort] });
    } finally {
      p.close();
    }
  });

  it('rejects names and values systemd would refuse or misparse', () => {
    expect(() => n.storeFd('a:b', 0)).toThrow(TypeError);
    expect(() => n.storeFd('', 0)).toThrow(TypeError);
    expect(() => n.storeFd('x'.repeat(256), 0)).toThrow(TypeError);
    expect(() => n.removeFd('tab\there')).toThrow(TypeError);
    expect(() => n.send({ STATUS: 'a\nREADY=1' })).toThrow(TypeError);
    expect(() => n.send({ 'BAD=KEY': '1' })).toThrow(TypeError);
    expect(() => n.extendTimeout(-1)).toThrow(RangeError);
    expect(() => n.extendTimeout(1.5)).toThrow(RangeError);
    expect(formatState({ A: '1', B: 'two words' })).toBe('A=1\nB=two words');
  });

  it('startWatchdog() pings WATCHDOG=1 through the notifier', async () => {
    const wd = startWatchdog(n, { env: { WATCHDOG_USEC: '100000', WATCHDOG_PID: String(process.pid) } });
    expect(wd).not.toBeNull();
    try {
      expect((await rx.next(2000)).data).toBe('WATCHDOG=1');
      expect((await rx.next(2000)).data).toBe('WATCHDOG=1');
    } finally {
      wd?.stop();
    }
    await new Promise((r) => setTimeout(r, 100));
    while (await rx.next(10).catch(() => null)); // drain anything sent before stop()
    await rx.expectNothing(200);
  });
});
