/** Small epmd protocol helpers for the interop suites (built on test/helpers/wire.ts). */
import net from 'node:net';
import { exchange, frame, hex } from '../helpers/wire.js';

export interface NamesReply {
  /** The 4-byte port at the start of the reply. */
  port: number;
  /** `name X at port N` lines in the order received (most recent registration first). */
  entries: { name: string; port: number }[];
  /** The text after the port, verbatim. */
  text: string;
}

/** NAMES_REQ over the wire. */
export async function namesReq(port: number): Promise<NamesReply> {
  const ex = await exchange(port, hex('00 01 6e'));
  if (ex.recv.length < 4) throw new Error(`short NAMES reply: ${ex.recv.toString('hex')} (${ex.end})`);
  const text = ex.recv.subarray(4).toString('utf8');
  const entries = [...text.matchAll(/^name (.*) at port (\d+)$/gm)].map((m) => ({ name: m[1]!, port: Number(m[2]) }));
  return { port: ex.recv.readUInt32BE(0), entries, text };
}

/** Name → port map from NAMES_REQ; empty map if the daemon does not answer. */
export async function namesMap(port: number): Promise<Map<string, number>> {
  try {
    const r = await namesReq(port);
    return new Map(r.entries.map((e) => [e.name, e.port]));
  } catch {
    return new Map();
  }
}

/** PORT_PLEASE2_REQ over the wire; returns the raw reply bytes. */
export async function portPlease(port: number, name: string): Promise<Buffer> {
  const ex = await exchange(port, frame(Buffer.concat([Buffer.from([0x7a]), Buffer.from(name, 'utf8')])));
  return ex.recv;
}

/** The PORT2_RESP a node registered by OTP ≥ 23 produces: type, protocol 0, versions 6/5, empty extra. */
export function port2Resp(name: string, distPort: number, nodeType = 77): Buffer {
  const n = Buffer.from(name, 'utf8');
  const head = Buffer.alloc(12);
  head[0] = 119;
  head[1] = 0;
  head.writeUInt16BE(distPort, 2);
  head[4] = nodeType;
  head[5] = 0;
  head.writeUInt16BE(6, 6);
  head.writeUInt16BE(5, 8);
  head.writeUInt16BE(n.length, 10);
  return Buffer.concat([head, n, Buffer.from([0, 0])]);
}

export interface ProxyConn {
  id: number;
  /** Bytes client → daemon. */
  up: Buffer;
  /** Bytes daemon → client. */
  down: Buffer;
}

export interface RecordingProxy {
  port: number;
  conns: ProxyConn[];
  /** Creation from the ALIVE2_X_RESP to the ALIVE2_REQ for `name`, if one went through (first such). */
  alive2Creation(name: string): number | undefined;
  close(): Promise<void>;
}

/**
 * A transparent TCP proxy on 127.0.0.1 that forwards to 127.0.0.1:target and records both directions
 * of every connection (like the logging proxy of golden G-I). Used to see the creation the daemon
 * hands a real node in its ALIVE2 reply.
 */
export function recordingProxy(target: number): Promise<RecordingProxy> {
  const conns: ProxyConn[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const rec: ProxyConn = { id: conns.length + 1, up: Buffer.alloc(0), down: Buffer.alloc(0) };
    conns.push(rec);
    const upstream = net.connect({ host: '127.0.0.1', port: target });
    sockets.add(client);
    sockets.add(upstream);
    const shut = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (d) => {
      rec.up = Buffer.concat([rec.up, d]);
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      rec.down = Buffer.concat([rec.down, d]);
      client.write(d);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', shut);
    upstream.on('close', shut);
    client.on('error', shut);
    upstream.on('error', shut);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        conns,
        alive2Creation(name: string) {
          const want = Buffer.from(name, 'utf8');
          for (const c of conns) {
            // 2-byte length, 'x', port, type, proto, high, low, nlen, name
            if (c.up.length < 13 || c.up[2] !== 0x78) continue;
            const nlen = c.up.readUInt16BE(11);
            if (!c.up.subarray(13, 13 + nlen).equals(want)) continue;
            if (c.down.length >= 6 && c.down[0] === 0x76 && c.down[1] === 0) return c.down.readUInt32BE(2);
          }
          return undefined;
        },
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
