// Polls epmd with NAMES every INTERVAL ms until the file STOP exists, and writes one JSON line per
// poll to OUT: {"t": ms since start, "ms": duration, "host", "names": [...]} or {"t", "ms", "host",
// "error"}. The polls go to the HOSTS in turn (comma-separated, default 127.0.0.1).
// Runs inside the test container on Debian's Node 18 (plain CommonJS, no dependencies).
//   node names-poller.cjs OUT STOP [INTERVAL=50] [PORT=4369] [HOSTS=127.0.0.1]
'use strict';
const fs = require('fs');
const net = require('net');

const [out, stop, intervalText = '50', portText = '4369', hostsText = '127.0.0.1'] = process.argv.slice(2);
const hosts = hostsText.split(',');
const interval = Number(intervalText);
const port = Number(portText);
const fd = fs.openSync(out, 'w');
const start = Date.now();

function names(host) {
  return new Promise((resolve) => {
    const chunks = [];
    let settled = false;
    const done = (r) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const sock = net.connect(port, host, () => sock.write(Buffer.from([0, 1, 110])));
    const timer = setTimeout(() => done({ error: 'timeout' }), 5000);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => done({ error: e.code || e.message }));
    sock.on('close', () => {
      const b = Buffer.concat(chunks);
      if (b.length < 4) return done({ error: `short reply (${b.length} bytes)` });
      const text = b.subarray(4).toString('latin1');
      done({ port: b.readUInt32BE(0), names: [...text.matchAll(/^name (.*) at port \d+$/gm)].map((m) => m[1]).sort() });
    });
  });
}

(async () => {
  for (let i = 0; ; i++) {
    const t0 = Date.now();
    const host = hosts[i % hosts.length];
    const r = await names(host);
    fs.writeSync(fd, `${JSON.stringify({ t: t0 - start, ms: Date.now() - t0, host, ...r })}\n`);
    if (fs.existsSync(stop)) break;
    const wait = interval - (Date.now() - t0);
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
  }
  fs.closeSync(fd);
})();
