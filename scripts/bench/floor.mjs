// The floor for `npm run bench`: the least a Node.js server can do to answer ALIVE2 and
// PORT_PLEASE2 with the public net API. No framing rules, no limits, no timeouts, no logging;
// it assumes each request arrives in one chunk. Replies are written, then the socket is
// destroyed (cheaper than end(), which waits for a shutdown round). Usage: node floor.mjs PORT
import net from 'node:net';

const nodes = new Map();
let creation = 1;

const server = net.createServer((socket) => {
  socket.on('error', () => {});
  socket.once('data', (chunk) => {
    const code = chunk[2];
    if (code === 122) {
      const node = nodes.get(chunk.toString('latin1', 3));
      if (!node) {
        socket.write(Buffer.from([119, 1]));
      } else {
        const reply = Buffer.allocUnsafe(2 + node.length);
        reply[0] = 119;
        reply[1] = 0;
        node.copy(reply, 2);
        socket.write(reply);
      }
      socket.destroy();
    } else if (code === 120) {
      // ALIVE2: port, type, protocol, versions, name, extra are echoed by PORT2_RESP as they came.
      const nameLength = chunk.readUInt16BE(11);
      const key = chunk.toString('latin1', 13, 13 + nameLength);
      nodes.set(key, Buffer.from(chunk.subarray(3)));
      const reply = Buffer.allocUnsafe(6);
      reply[0] = 118;
      reply[1] = 0;
      reply.writeUInt32BE(creation++, 2);
      socket.write(reply);
      socket.on('close', () => nodes.delete(key));
    } else {
      socket.destroy();
    }
  });
});
server.listen(Number(process.argv[2]), '127.0.0.1');
