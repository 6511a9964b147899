// Decodes journald's native protocol (the receiving side of src/log/journal.ts), written from
// systemd's JOURNAL_NATIVE_PROTOCOL.md so the tests check our encoder against the format itself.

/** Every field of one entry in order; a field may repeat. */
export function decodeJournalEntry(entry: Buffer): [string, Buffer][] {
  const fields: [string, Buffer][] = [];
  let at = 0;
  while (at < entry.length) {
    const nl = entry.indexOf(0x0a, at);
    const eq = entry.indexOf(0x3d, at);
    if (nl < 0) throw new Error(`field at ${at} has no newline`);
    if (eq >= 0 && eq < nl) {
      fields.push([entry.toString('ascii', at, eq), entry.subarray(eq + 1, nl)]);
      at = nl + 1;
      continue;
    }
    const name = entry.toString('ascii', at, nl);
    const length = Number(entry.readBigUInt64LE(nl + 1));
    const start = nl + 9;
    if (entry[start + length] !== 0x0a) throw new Error(`binary field ${name} does not end with a newline`);
    fields.push([name, entry.subarray(start, start + length)]);
    at = start + length + 1;
  }
  return fields;
}

/** The entry as name → text (last value wins). */
export function journalText(entry: Buffer): Record<string, string> {
  return Object.fromEntries(decodeJournalEntry(entry).map(([k, v]) => [k, v.toString('utf8')]));
}
