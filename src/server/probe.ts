import net from 'node:net';
import { UNKNOWN_CREATION } from '../registry/registry.js';

/**
 * What probing a node's distribution port found:
 * - confirmed: a node answered the handshake with the expected name and creation;
 * - alive: something accepts connections there (a node of that name with another creation, an
 *   old node that does not speak the OTP 23 handshake, or no answer in time);
 * - other-node: a node with another name answers on that port;
 * - gone: nothing listens there.
 */
export type ProbeResult = 'confirmed' | 'alive' | 'other-node' | 'gone';

/**
 * Distribution flags announced by the probe: every flag OTP 25 and 26 make mandatory, so the node
 * answers with its challenge instead of logging a refused connection. The probe never completes
 * the handshake (it has no cookie); it only reads the node's own name and creation.
 */
const PROBE_FLAGS =
  0x4n | 0x10n | 0x80n | 0x100n | 0x200n | 0x400n | 0x800n | 0x10000n | 0x20000n | 0x40000n | 0x1000000n | (1n << 25n) | (1n << 34n);
const PROBE_NAME = Buffer.from('epmd-ng-probe@localhost');

function sendName(): Buffer {
  const body = Buffer.alloc(1 + 8 + 4 + 2 + PROBE_NAME.length);
  body[0] = 0x4e; // 'N': the OTP 23+ send_name
  body.writeBigUInt64BE(PROBE_FLAGS, 1);
  body.writeUInt32BE(0, 9);
  body.writeUInt16BE(PROBE_NAME.length, 13);
  PROBE_NAME.copy(body, 15);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(body.length);
  return Buffer.concat([head, body]);
}

/** Splits 2-byte-length-prefixed handshake messages off the front of `buf`. */
function messages(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (buf.length - at >= 2 && buf.length - at >= 2 + buf.readUInt16BE(at)) {
    out.push(buf.subarray(at + 2, at + 2 + buf.readUInt16BE(at)));
    at += 2 + buf.readUInt16BE(at);
  }
  return out;
}

/**
 * Probes the node registered as `name` with `creation` on loopback `port` (UNKNOWN_CREATION: any
 * creation of that name confirms it). Never rejects.
 */
export function probeNode(port: number, name: Buffer, creation: number, timeoutMs = 2000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let connected = false;
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (result: ProbeResult): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(connected ? 'alive' : 'gone'), timeoutMs);
    socket.on('connect', () => {
      connected = true;
      socket.write(sendName());
    });
    socket.on('error', () => done(connected ? 'alive' : 'gone'));
    socket.on('close', () => done(connected ? 'alive' : 'gone'));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      const challenge = messages(received).find((m) => m[0] === 0x4e && m.length >= 19);
      if (!challenge) return;
      const nodeCreation = challenge.readUInt32BE(13);
      const full = challenge.subarray(19, 19 + challenge.readUInt16BE(17));
      const at = full.indexOf(0x40); // '@'
      const alive = at < 0 ? full : full.subarray(0, at);
      if (!alive.equals(name)) return done('other-node');
      done(creation === UNKNOWN_CREATION || nodeCreation === creation ? 'confirmed' : 'alive');
    });
  });
}
