import net from 'node:net';
import type { Request } from '../../src/protocol/requests.js';

/** How the server ended the connection, as the conformance transcripts record it. */
export type ConnectionEnd = 'FIN' | 'RST' | 'open';

export interface Exchange {
  recv: Buffer;
  end: ConnectionEnd;
  /** Milliseconds from the last write to the end of the connection (or to giving up). */
  elapsedMs: number;
}

export interface ExchangeOptions {
  host?: string;
  /** Local address to connect from (e.g. 127.0.0.5 to test locality rules). */
  localAddress?: string;
  /** Give up waiting for the server to close after this long and report 'open'. */
  waitMs?: number;
  /** Write the request in these pieces, pausing gapMs between them. */
  chunks?: Buffer[];
  gapMs?: number;
}

/**
 * Sends one request on a fresh connection and records every byte the server sends back and
 * how it ended the connection. Never throws for server behaviour (refused connections do throw).
 */
export function exchange(port: number, request: Buffer, opts: ExchangeOptions = {}): Promise<Exchange> {
  const { host = '127.0.0.1', waitMs = 3000, gapMs = 0 } = opts;
  const pieces = opts.chunks ?? [request];
  return new Promise((resolve, reject) => {
    const received: Buffer[] = [];
    let lastWrite = Date.now();
    let settled = false;
    const sock = net.connect({ host, port, localAddress: opts.localAddress });
    const finish = (end: ConnectionEnd): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ recv: Buffer.concat(received), end, elapsedMs: Date.now() - lastWrite });
    };
    const timer = setTimeout(() => finish('open'), waitMs + gapMs * pieces.length);
    sock.on('data', (d) => received.push(d));
    sock.on('end', () => finish('FIN'));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish('RST');
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    sock.on('connect', async () => {
      for (let i = 0; i < pieces.length; i++) {
        if (i > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (settled) return;
        sock.write(pieces[i]!);
        lastWrite = Date.now();
      }
    });
  });
}

/** Parses the spec's hex notation: "00 01 6e", with runs written "61×255" or "(c3 a9)×256". */
export function hex(text: string): Buffer {
  const out: number[] = [];
  const tokens = text.trim().match(/\([0-9a-f ]+\)×\d+|[0-9a-f]{2}(?:×\d+)?/gi) ?? [];
  for (const token of tokens) {
    const group = /^\(([0-9a-f ]+)\)×(\d+)$/i.exec(token);
    if (group) {
      const bytes = group[1]!.trim().split(/\s+/).map((b) => parseInt(b, 16));
      for (let i = 0; i < Number(group[2]); i++) out.push(...bytes);
      continue;
    }
    const [byte, times] = token.split('×');
    for (let i = 0; i < Number(times ?? 1); i++) out.push(parseInt(byte!, 16));
  }
  return Buffer.from(out);
}

/** Frames a payload with its 2-byte big-endian length. */
export function frame(payload: Buffer): Buffer {
  const header = Buffer.alloc(2);
  header.writeUInt16BE(payload.length);
  return Buffer.concat([header, payload]);
}

export interface Alive2Fields {
  port: number;
  name: Buffer | string;
  nodeType?: number;
  protocol?: number;
  high?: number;
  low?: number;
  extra?: Buffer;
}

/** ALIVE2_REQ payload (without the length header). */
export function alive2Payload(f: Alive2Fields): Buffer {
  const name = typeof f.name === 'string' ? Buffer.from(f.name, 'utf8') : f.name;
  const extra = f.extra ?? Buffer.alloc(0);
  const head = Buffer.alloc(11);
  head[0] = 120;
  head.writeUInt16BE(f.port, 1);
  head[3] = f.nodeType ?? 77;
  head[4] = f.protocol ?? 0;
  head.writeUInt16BE(f.high ?? 6, 5);
  head.writeUInt16BE(f.low ?? 5, 7);
  head.writeUInt16BE(name.length, 9);
  const elen = Buffer.alloc(2);
  elen.writeUInt16BE(extra.length);
  return Buffer.concat([head, name, elen, extra]);
}

/**
 * A client's encoding of a request (payload without the length header), written from the spec
 * independently of the daemon's decoder, so that the two can be checked against each other.
 */
export function requestPayload(r: Request): Buffer {
  switch (r.type) {
    case 'alive2':
      return alive2Payload({ ...r, high: r.highestVersion, low: r.lowestVersion });
    case 'port-please2':
      return Buffer.concat([Buffer.from([122]), r.name]);
    case 'stop':
      // The name runs to a NUL or the end; an empty one needs the NUL, or the frame is too short.
      return Buffer.concat([Buffer.from([115]), r.name, Buffer.alloc(r.name.length === 0 ? 1 : 0)]);
    case 'names':
      return Buffer.from([110]);
    case 'dump':
      return Buffer.from([100]);
    case 'kill':
      return Buffer.from([107]);
    case 'status':
      return Buffer.from([83, 1]); // `S` and the layout version
  }
}

/**
 * A registration that stays open, like a node's: connects, sends ALIVE2_REQ and resolves with the
 * reply once it is complete (4 or 6 bytes). close() unregisters by closing the connection.
 */
export interface Registration {
  reply: Buffer;
  socket: net.Socket;
  close(): Promise<void>;
  /** Resolves when the server closes the registration connection. */
  closed: Promise<void>;
}

export function register(port: number, f: Alive2Fields, host = '127.0.0.1'): Promise<Registration> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const chunks: Buffer[] = [];
    let done = false;
    let onClosed: () => void = () => {};
    const closed = new Promise<void>((r) => (onClosed = r));
    const want = (f.high ?? 6) >= 6 ? 6 : 4;
    socket.on('close', () => {
      onClosed();
      if (!done) {
        done = true;
        reject(new Error(`registration of ${String(f.name)} closed after ${Buffer.concat(chunks).toString('hex')}`));
      }
    });
    socket.on('error', () => {});
    socket.on('data', (d) => {
      chunks.push(d);
      const reply = Buffer.concat(chunks);
      if (!done && reply.length >= want) {
        done = true;
        resolve({
          reply,
          socket,
          closed,
          close: () => {
            socket.destroy();
            return closed;
          },
        });
      }
    });
    socket.on('connect', () => socket.write(frame(alive2Payload(f))));
  });
}
