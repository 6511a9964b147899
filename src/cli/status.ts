// `epmd-ng status [--json|--prometheus] [-p PORT]`: asks the daemon over its own port with
// STATUS_REQ, a request code OTP does not use, answered only to peers on this host. So it needs no
// socket, file or permission beyond what NAMES needs, and works against the hardened unit
// (DynamicUser=, no writable paths); OTP's epmd or an older epmd-ng just close the connection.
import { RequestCode, STATUS_VERSION } from '../protocol/constants.js';
import { STATUS_FORMAT, type StatusDocument } from '../status/document.js';
import { renderPrometheus, renderText } from '../status/render.js';
import { ask, type ClientOutcome } from './client.js';

export type StatusOutput = 'text' | 'json' | 'prometheus';

const failure = (message: string): ClientOutcome => ({ code: 1, stdout: Buffer.alloc(0), stderr: `epmd-ng: ${message}\n` });

/** Reads the reply; a string is the one-line reason it is not a status document. */
export function parseStatusReply(reply: Buffer, port: number): StatusDocument | string {
  if (reply.length === 0) return `the daemon on port ${port} does not answer status requests (OTP's epmd or an older epmd-ng?)`;
  let doc: unknown;
  try {
    doc = JSON.parse(reply.toString('utf8'));
  } catch {
    return `the daemon on port ${port} sent an unreadable status reply (${reply.length} bytes)`;
  }
  const format = (doc as { format?: unknown } | null)?.format;
  if (format !== STATUS_FORMAT) return `the daemon on port ${port} sent a status document of format ${JSON.stringify(format)}, this epmd-ng reads ${STATUS_FORMAT}`;
  return doc as StatusDocument;
}

export async function runStatus(port: number, output: StatusOutput): Promise<ClientOutcome> {
  const answer = await ask(port, Buffer.from([RequestCode.STATUS_REQ, STATUS_VERSION]));
  if (!answer) return failure(`cannot connect to epmd on port ${port} (is it running?)`);
  const doc = parseStatusReply(answer.reply, port);
  if (typeof doc === 'string') return failure(doc);
  const text = output === 'json' ? `${JSON.stringify(doc)}\n` : output === 'prometheus' ? renderPrometheus(doc) : renderText(doc);
  return { code: 0, stdout: Buffer.from(text), stderr: '' };
}
