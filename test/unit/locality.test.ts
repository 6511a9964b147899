// isLocalPeer: who may register, dump, kill and stop (spec §7, Q12, G-G, G-F G2); isLocalSocket:
// which of the addon's verdict and Node's address strings decides.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { isLocalPeer, isLocalSocket } from '../../src/server/locality.js';
import { socketFd } from '../../src/server/socket-fd.js';

describe('IPv4 loopback: any 127.x.y.z is local (spec §7 rule 1)', () => {
  it('127.0.0.1 -> 127.0.0.1', () => expect(isLocalPeer('127.0.0.1', () => '127.0.0.1')).toBe(true));
  it('G-G: 127.0.0.5 -> 127.0.0.1', () => expect(isLocalPeer('127.0.0.5', () => '127.0.0.1')).toBe(true));
  it('127.255.255.254 -> 127.0.0.1', () => expect(isLocalPeer('127.255.255.254', () => '127.0.0.1')).toBe(true));
  it('127.0.0.2 connecting to a non-loopback local address is still local', () => expect(isLocalPeer('127.0.0.2', () => '192.0.2.1')).toBe(true));
  it('a loopback peer is local even when the local address is unknown', () => expect(isLocalPeer('127.0.0.1', () => undefined)).toBe(true));
  it('128.0.0.1 and 126.255.255.255 are not loopback', () => {
    expect(isLocalPeer('128.0.0.1', () => '127.0.0.1')).toBe(false);
    expect(isLocalPeer('126.255.255.255', () => '127.0.0.1')).toBe(false);
  });
  it('"1.127.0.0" is not 127/8', () => expect(isLocalPeer('1.127.0.0', () => '127.0.0.1')).toBe(false));
});

describe('IPv6 loopback: exactly ::1 (spec §7 rule 2)', () => {
  it('G-F G3: ::1 -> ::1', () => expect(isLocalPeer('::1', () => '::1')).toBe(true));
  it('::1 with the local address unknown', () => expect(isLocalPeer('::1', () => undefined)).toBe(true));
  it('::2 is not loopback', () => expect(isLocalPeer('::2', () => '::1')).toBe(false));
  it(':: (unspecified) is not loopback', () => expect(isLocalPeer('::', () => '::1')).toBe(false));
});

describe('equality rule: peer address == connection\'s local address (spec §7 rule 3, G-G)', () => {
  it('G-G: 192.0.2.1 -> 192.0.2.1 is local', () => expect(isLocalPeer('192.0.2.1', () => '192.0.2.1')).toBe(true));
  it('G-G: 192.0.2.2 -> 192.0.2.1 is not', () => expect(isLocalPeer('192.0.2.2', () => '192.0.2.1')).toBe(false));
  it('G-G: 2001:db8::1 -> 2001:db8::1 is local', () => expect(isLocalPeer('2001:db8::1', () => '2001:db8::1')).toBe(true));
  it('G-G: 2001:db8::2 -> 2001:db8::1 is not', () => expect(isLocalPeer('2001:db8::2', () => '2001:db8::1')).toBe(false));
  it('G-G: 192.0.2.2 -> 127.0.0.1 is not', () => expect(isLocalPeer('192.0.2.2', () => '127.0.0.1')).toBe(false));
  it('a non-loopback peer with an unknown local address is not local', () => expect(isLocalPeer('192.0.2.1', () => undefined)).toBe(false));
  it('v4-mapped equality on a dual-stack socket: ::ffff:192.0.2.1 -> ::ffff:192.0.2.1 is local', () => {
    expect(isLocalPeer('::ffff:192.0.2.1', () => '::ffff:192.0.2.1')).toBe(true);
  });
  it('v4-mapped non-loopback peers that differ are not local', () => {
    expect(isLocalPeer('::ffff:192.0.2.2', () => '::ffff:192.0.2.1')).toBe(false);
  });
});

describe('v4-mapped loopback on dual-stack sockets (spec §7, Q12 fix)', () => {
  it('G-F G1: ::ffff:127.0.0.1 -> ::ffff:127.0.0.1 is local (OTP too, by equality)', () => {
    expect(isLocalPeer('::ffff:127.0.0.1', () => '::ffff:127.0.0.1')).toBe(true);
  });
  it('G-F G2 / Q12: ::ffff:127.0.0.2 -> ::ffff:127.0.0.1 is local here (OTP refused it)', () => {
    expect(isLocalPeer('::ffff:127.0.0.2', () => '::ffff:127.0.0.1')).toBe(true);
  });
  it('::ffff:127.1.2.3 with an unknown local address is local', () => {
    expect(isLocalPeer('::ffff:127.1.2.3', () => undefined)).toBe(true);
  });
  it('::ffff:128.0.0.1 is not loopback', () => {
    expect(isLocalPeer('::ffff:128.0.0.1', () => '::ffff:127.0.0.1')).toBe(false);
  });
  it('a prefix that is not exactly ::ffff: does not count (::fffe:127.0.0.1, 64:ff9b::127.0.0.1)', () => {
    expect(isLocalPeer('::fffe:127.0.0.1', () => '::1')).toBe(false);
    expect(isLocalPeer('64:ff9b::127.0.0.1', () => '::1')).toBe(false);
  });
});

describe('unknown peer (spec §7 rule 4: getpeername failed -> non-local)', () => {
  it('undefined peer is never local', () => {
    expect(isLocalPeer(undefined, () => '127.0.0.1')).toBe(false);
    expect(isLocalPeer(undefined, () => undefined)).toBe(false);
  });
  it('an empty peer string is never local, even with an empty local string', () => {
    expect(isLocalPeer('', () => '')).toBe(false);
  });
});

describe('the local address is read only when the rule needs it', () => {
  it('a loopback peer never asks for it; another peer asks once', () => {
    let asked = 0;
    const local = () => (asked++, '192.0.2.1');
    expect(isLocalPeer('127.0.0.1', local)).toBe(true);
    expect(isLocalPeer('::1', local)).toBe(true);
    expect(asked).toBe(0);
    expect(isLocalPeer('192.0.2.1', local)).toBe(true);
    expect(isLocalPeer('192.0.2.2', local)).toBe(false);
    expect(asked).toBe(2);
  });
});

describe('isLocalSocket: the addon decides when it can, Node\'s address strings otherwise', () => {
  /** A real loopback connection; `use` gets the server's side of it. */
  async function withLoopbackPeer(use: (socket: net.Socket) => void): Promise<void> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const socket = await accepted;
    try {
      use(socket);
    } finally {
      socket.destroy();
      client.destroy();
      server.close();
    }
  }

  it('takes the check\'s verdict, given the socket\'s descriptor', async () => {
    await withLoopbackPeer((socket) => {
      const asked: number[] = [];
      // A verdict the strings would never give for 127.0.0.1: it must come from the check.
      expect(isLocalSocket(socket, (fd) => (asked.push(fd), false))).toBe(false);
      expect(asked).toEqual([socketFd(socket)]);
      expect(asked[0]).toBeGreaterThanOrEqual(0);
    });
  });

  it('falls back to the address strings when the check cannot tell, or there is none', async () => {
    await withLoopbackPeer((socket) => {
      expect(isLocalSocket(socket, () => null)).toBe(true);
      expect(isLocalSocket(socket, undefined)).toBe(true);
    });
  });

  it('a closed socket has no descriptor and no address: not local', async () => {
    let closed!: net.Socket;
    await withLoopbackPeer((socket) => (closed = socket));
    await new Promise((r) => setImmediate(r));
    let asked = false;
    expect(isLocalSocket(closed, () => ((asked = true), true))).toBe(false);
    expect(asked).toBe(false);
  });
});
