import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng } from '../helpers/prng.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { garbage } from '../helpers/fuzz.js';
import { exchange, frame, register, type Registration } from '../helpers/wire.js';

describe('random garbage', () => {
  let daemon: Daemon;
  let node: Registration;

  beforeAll(async () => {
    daemon = await startDaemon(['-packet_timeout', '1']);
    node = await register(daemon.port, { port: 9100, name: 'survivor' });
  });
  afterAll(async () => {
    node?.socket.destroy();
    await daemon?.stop();
  });

  it('never stops the daemon from answering the next valid request', async () => {
    const rand = prng(20261121);
    for (let i = 0; i < 300; i++) {
      const junk = garbage(rand);
      await exchange(daemon.port, junk, { waitMs: 100 });
      if (i % 10 === 0) {
        const r = await exchange(daemon.port, frame(Buffer.from('zsurvivor')));
        expect(r.recv.readUInt16BE(2), `after garbage #${i}: ${junk.toString('hex')}`).toBe(9100);
      }
    }
    const names = await exchange(daemon.port, frame(Buffer.from('n')));
    expect(names.recv.subarray(4).toString()).toContain('name survivor at port 9100\n');
    expect(daemon.proc.exitCode).toBeNull();
  });
});

describe('log flooding', () => {
  let daemon: Daemon;
  beforeAll(async () => {
    daemon = await startDaemon();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('rate-limits protocol warnings instead of writing one line per bad packet', async () => {
    await Promise.all(Array.from({ length: 200 }, () => exchange(daemon.port, Buffer.from([0, 0]), { waitMs: 500 })));
    await new Promise((r) => setTimeout(r, 100));
    const warnings = daemon.stderr().split('\n').filter((l) => l.includes('invalid packet size'));
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.length).toBeLessThanOrEqual(20);
    // The daemon still answers after the flood.
    const names = await exchange(daemon.port, frame(Buffer.from('n')));
    expect(names.recv.length).toBe(4);
  });
});
