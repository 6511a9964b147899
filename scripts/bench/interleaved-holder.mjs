// For `npm run bench`: holds KEEP registrations (keep0…) made one at a time, with CHURN
// registrations that come and go (fresh names, closed once answered, 16 at a time) after each:
// how a host with short-lived nodes (CLI tools, test runs) fills the registry over time. Prints
// "ready" once all are in place, then holds them until stdin closes.
// Usage: node interleaved-holder.mjs PORT KEEP CHURN
import net from 'node:net';

const [port, keep, churn] = process.argv.slice(2).map(Number);

function alive2(name) {
  const n = Buffer.from(name);
  const frame = Buffer.alloc(15 + n.length);
  frame.writeUInt16BE(frame.length - 2, 0);
  frame[2] = 120; // ALIVE2_REQ
  frame.writeUInt16BE(5000, 3);
  frame[5] = 77; // normal node
  frame.writeUInt16BE(6, 7); // highest version
  frame.writeUInt16BE(5, 9); // lowest version
  frame.writeUInt16BE(n.length, 11);
  n.copy(frame, 13); // then an empty extra
  return frame;
}

function register(name, hold) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => socket.write(alive2(name)));
    socket.once('data', (reply) => {
      if ((reply[0] !== 118 && reply[0] !== 121) || reply[1] !== 0) return reject(new Error(`ALIVE2 ${name} refused`));
      if (!hold) socket.destroy();
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

const held = [];
let next = 0;
for (let i = 0; i < keep; i++) {
  held.push(await register(`keep${i}`, true));
  for (let j = 0; j < churn; j += 16) await Promise.all(Array.from({ length: Math.min(16, churn - j) }, () => register(`churn${next++}`, false)));
}
console.log('ready');
process.stdin.resume();
process.stdin.once('end', () => process.exit(0));
