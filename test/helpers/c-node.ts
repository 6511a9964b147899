import net from 'node:net';

/**
 * A stand-in for a C node (erl_interface) or any client that registers once and never again: it
 * listens on a port and answers the first steps of the OTP 23+ distribution handshake (status "ok"
 * and a challenge carrying its full name and creation), as a real node does. Not a mock of epmd:
 * it plays the node side that epmd-ng's probe talks to.
 */
export interface FakeNode {
  port: number;
  probes: number;
  close(): Promise<void>;
}

export async function fakeCNode(fullName: string, creation: () => number): Promise<FakeNode> {
  const node: FakeNode = { port: 0, probes: 0, close: () => Promise.resolve() };
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      node.probes++;
      const status = Buffer.from([0, 3, 0x73, 0x6f, 0x6b]); // "sok"
      const name = Buffer.from(fullName);
      const challenge = Buffer.alloc(2 + 19 + name.length);
      challenge.writeUInt16BE(19 + name.length, 0);
      challenge[2] = 0x4e; // 'N'
      challenge.writeBigUInt64BE(0x1000000n, 3);
      challenge.writeUInt32BE(0x12345678, 11);
      challenge.writeUInt32BE(creation() >>> 0, 15);
      challenge.writeUInt16BE(name.length, 19);
      name.copy(challenge, 21);
      socket.write(Buffer.concat([status, challenge]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  node.port = (server.address() as net.AddressInfo).port;
  node.close = () => new Promise((resolve) => server.close(() => resolve()));
  return node;
}
