// For `npm run bench`: holds KEEP registrations (keep0…) made one at a time, with CHURN
// registrations that come and go (fresh names, closed once answered, 16 at a time) after each:
// how a host with short-lived nodes (CLI tools, test runs) fills the registry over time. Prints
// "ready" once all are in place, then holds them until stdin closes.
// Usage: node interleaved-holder.mjs PORT KEEP CHURN
import { register } from '../lib/local.mjs';

const [port, keep, churn] = process.argv.slice(2).map(Number);
// No source address of its own: hundreds of thousands of registrations that come and go.
const connect = (name) => register(port, name, 5000);

const held = [];
let next = 0;
for (let i = 0; i < keep; i++) {
  held.push(await connect(`keep${i}`));
  for (let j = 0; j < churn; j += 16) await Promise.all(Array.from({ length: Math.min(16, churn - j) }, () => connect(`churn${next++}`).then((s) => s.destroy())));
}
console.log('ready');
process.stdin.resume();
process.stdin.once('end', () => process.exit(0));
