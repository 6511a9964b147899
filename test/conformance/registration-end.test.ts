// A registration ends with its connection, and its name is free for the very next request the
// daemon reads: a node that stops and starts distribution at once (its old connection's end and
// its new ALIVE2 read by the daemon in one go) must not be refused as a duplicate of itself
// (erlang/otp#11083 reports such refusals). The daemon is stopped while both arrive, so that it
// reads them in the same turn, in the order they came.
import { afterEach, describe, expect, it } from 'vitest';
import { alive2Payload } from '../helpers/wire.js';
import { Resources, acceptQueued, frame, hex, listedNames, waitUntil } from './util.js';

const res = new Resources();
afterEach(() => res.cleanup());

describe('the end of a registration connection', () => {
  it.each(['127.0.0.1', '::1'])('frees the name for an ALIVE2 that the daemon reads right after it (over %s)', async (host) => {
    const d = await res.daemon();
    const first = await res.register(d.port, { name: 'again', port: 5101 }, host);
    expect(first.reply.subarray(0, 2)).toEqual(hex('76 00'));
    // The next connection is accepted before the daemon stops: only its request is still to come.
    const next = await res.conn(d.port, { host });
    expect(await waitUntil(() => acceptQueued(d.port) === 0), 'the daemon did not accept the connection').toBe(true);
    process.kill(d.pid, 'SIGSTOP');
    try {
      // The old connection's FIN, then the new ALIVE2, both in the daemon's socket queues.
      await new Promise<void>((r) => first.socket.end(r));
      await new Promise<void>((r) => next.socket.write(frame(alive2Payload({ name: 'again', port: 5102 })), () => r()));
    } finally {
      process.kill(d.pid, 'SIGCONT');
    }
    const reply = await next.waitBytes(6);
    expect(reply.subarray(0, 2), 'the second ALIVE2 was refused as a duplicate').toEqual(hex('76 00'));
    expect(await listedNames(d.port)).toEqual(['again']);
  });
});
