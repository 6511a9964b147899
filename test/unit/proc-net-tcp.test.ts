// listeningInodes: which sockets of /proc/net/tcp{,6} listen on a port (take-over --share-port-of).
import { describe, expect, it } from 'vitest';
import { listeningInodes } from '../../src/cli/take-over.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1111 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41348414 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1111 0100007F:A3F2 01 00000000:00000000 00:00000000 00000000   106        0 41348608 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:2222 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1111 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41348415 1 0000000000000000 100 0 0 10 0
`;

describe('listeningInodes', () => {
  it('takes the listening sockets (state 0A) on the port, not its connections or other ports', () => {
    expect(listeningInodes(TCP, 4369)).toEqual(['41348414']);
    expect(listeningInodes(TCP, 0x2222)).toEqual(['555']);
    expect(listeningInodes(TCP6, 4369)).toEqual(['41348415']);
  });
  it('nothing on the port, an empty or truncated file: none', () => {
    expect(listeningInodes(TCP, 4370)).toEqual([]);
    expect(listeningInodes('', 4369)).toEqual([]);
    expect(listeningInodes(TCP.split('\n').slice(0, 1).join('\n') + '\n   0: 00000000:1111', 4369)).toEqual([]);
  });
});
