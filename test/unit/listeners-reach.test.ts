// Whom the listeners serve: the start-up/STATUS wording, the filter hand-over on real sockets
// (the addon, as root), unconfigured listed addresses, and own-address recognition.
import fs from 'node:fs';
import net from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { applyFilter, describeReach, listener, specificButThisHostOnly, unconfigured, type ListenAddress, type Listener } from '../../src/server/listeners.js';
import { isOwnAddress } from '../../src/server/locality.js';
import { loadNative, type SdNative } from '../../src/systemd/native.js';
import { ensureNativeBuilt } from '../helpers/sd-native.js';

const servers: net.Server[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

function listening(host: string): Promise<net.Server> {
  return new Promise((resolve) => {
    const s = net.createServer();
    servers.push(s);
    s.listen({ host, port: 0, ipv6Only: net.isIPv6(host) }, () => resolve(s));
  });
}

const lst = async (host: string, thisHostOnly: boolean): Promise<Listener> => listener(await listening(host), thisHostOnly, { filtered: thisHostOnly });

describe('describeReach', () => {
  it('wildcards for this host only: the port, and "this host only (every local address)"', async () => {
    const a = await lst('0.0.0.0', true);
    const port = (a.server.address() as net.AddressInfo).port;
    expect(describeReach([a])).toBe(`port ${port} for this host only (every local address)`);
  });

  it('loopback sockets: the addresses, "loopback only"', async () => {
    const a = await lst('127.0.0.1', false);
    const port = (a.server.address() as net.AddressInfo).port;
    expect(describeReach([a])).toBe(`127.0.0.1:${port}: loopback only`);
  });

  it('a listed address: the addresses, open to every host that reaches them', async () => {
    const a = await lst('127.0.0.1', false);
    const b = await lst('0.0.0.0', false);
    const pa = (a.server.address() as net.AddressInfo).port;
    const pb = (b.server.address() as net.AddressInfo).port;
    expect(describeReach([a, b])).toBe(`127.0.0.1:${pa}, 0.0.0.0:${pb}: open to every host that reaches them`);
  });
});

describe('this-host-only sockets on one specific address (a socket unit that lists them)', () => {
  // A host address no test may bind: the wording only reads server.address().
  const at = (address: string, family: 'IPv4' | 'IPv6', thisHostOnly: boolean): Listener =>
    listener({ address: () => ({ address, family, port: 4369 }) } as net.Server, thisHostOnly, { filtered: thisHostOnly });

  it('are named as addresses, not as "every local address"', () => {
    expect(describeReach([at('192.0.2.10', 'IPv4', true)])).toBe('192.0.2.10:4369: this host only');
    expect(describeReach([at('0.0.0.0', 'IPv4', true), at('2001:db8::1', 'IPv6', true)])).toBe('0.0.0.0:4369, [2001:db8::1]:4369: this host only');
    expect(describeReach([at('127.0.0.1', 'IPv4', false), at('192.0.2.10', 'IPv4', true)])).toBe('127.0.0.1:4369, 192.0.2.10:4369 (this host only): this host only');
    expect(describeReach([at('192.0.2.10', 'IPv4', true), at('192.0.2.11', 'IPv4', false)])).toBe('192.0.2.10:4369 (this host only), 192.0.2.11:4369: open to every host that reaches them');
  });

  it('are the ones the daemon warns about; wildcards and loopback are not', () => {
    expect(specificButThisHostOnly([at('0.0.0.0', 'IPv4', true), at('::', 'IPv6', true), at('127.0.0.1', 'IPv4', true), at('::1', 'IPv6', true)])).toEqual([]);
    expect(specificButThisHostOnly([at('192.0.2.10', 'IPv4', false)])).toEqual([]);
    expect(specificButThisHostOnly([at('0.0.0.0', 'IPv4', true), at('192.0.2.10', 'IPv4', true), at('2001:db8::1', 'IPv6', true)])).toEqual(['192.0.2.10:4369', '[2001:db8::1]:4369']);
  });
});

describe('unconfigured', () => {
  const addr = (host: string, freeBind: boolean): ListenAddress => ({ host, optional: false, thisHostOnly: false, freeBind });
  const interfaces = { lo: [{ address: '127.0.0.1' }, { address: '::1' }], eth0: [{ address: '192.0.2.1' }] } as never;

  it('names the listed (IP_FREEBIND) addresses no interface has', () => {
    expect(unconfigured([addr('192.0.2.1', true), addr('192.0.2.9', true), addr('127.0.0.1', false)], () => interfaces)).toEqual(['192.0.2.9']);
  });

  it('does not ask for the interfaces when no address is listed (the default start)', () => {
    const never = () => {
      throw new Error('interfaces read');
    };
    expect(unconfigured([addr('0.0.0.0', false), addr('::', false)], never)).toEqual([]);
  });
});

describe('isOwnAddress', () => {
  it('an interface address, also v4-mapped; nothing else', () => {
    expect(isOwnAddress('192.0.2.1', ['192.0.2.1'])).toBe(true);
    expect(isOwnAddress('::ffff:192.0.2.1', ['192.0.2.1'])).toBe(true);
    expect(isOwnAddress('192.0.2.2', ['192.0.2.1'])).toBe(false);
    expect(isOwnAddress('2001:db8::1', ['2001:db8::1'])).toBe(true);
  });
});

describe('applyFilter on real sockets (the addon)', () => {
  let native: SdNative;
  beforeAll(() => {
    ensureNativeBuilt();
    native = loadNative();
  });

  it('without the addon: not filtered, and says why', () => {
    expect(applyFilter(0, true, null)).toEqual({ filtered: false, because: 'the native addon is missing' });
    expect(applyFilter(0, false, null)).toEqual({ filtered: false, because: undefined });
  });

  it('attaches the filter, finds it already there, and removes it for a socket that serves every host', () => {
    if (process.getuid?.() !== 0) throw new Error('needs root: Linux 6.18+ wants CAP_NET_ADMIN to filter TCP sockets');
    const fd = native.listenTcp('127.0.0.1', 0, {});
    try {
      expect(native.filterState(fd)).toBe('none');
      expect(applyFilter(fd, true, native)).toEqual({ filtered: true });
      expect(native.filterState(fd)).toBe('this-host-only');
      expect(applyFilter(fd, true, native)).toEqual({ filtered: true });
      expect(applyFilter(fd, false, native)).toEqual({ filtered: false });
      expect(native.filterState(fd)).toBe('none');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('listenTcp with thisHostOnly attaches it before listening', () => {
    if (process.getuid?.() !== 0) throw new Error('needs root: Linux 6.18+ wants CAP_NET_ADMIN to filter TCP sockets');
    const fd = native.listenTcp('127.0.0.1', 0, { thisHostOnly: true });
    try {
      expect(native.filterState(fd)).toBe('this-host-only');
    } finally {
      fs.closeSync(fd);
    }
  });
});
