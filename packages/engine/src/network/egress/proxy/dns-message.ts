/** The little of the DNS wire format the forwarder needs: the question's name, and a refusal. */

export interface DnsQuestion { id: number; name: string; end: number }

/** The first question of a query, or null if the message is not a well-formed query. */
export function parseDnsQuery(msg: Buffer): DnsQuestion | null {
  if (msg.length < 12) return null;
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) return null; // a response, not a query
  if (msg.readUInt16BE(4) !== 1) return null; // exactly one question
  const labels: string[] = [];
  let p = 12;
  for (;;) {
    if (p >= msg.length) return null;
    const len = msg[p]!;
    if (len === 0) { p += 1; break; }
    if (len > 63 || p + 1 + len > msg.length) return null; // no compression in a question
    labels.push(msg.subarray(p + 1, p + 1 + len).toString('latin1'));
    p += 1 + len;
  }
  if (p + 4 > msg.length) return null;
  return { id: msg.readUInt16BE(0), name: labels.join('.').toLowerCase(), end: p + 4 };
}

export const RCODE = { SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

/** An answer with no records and the given rcode, echoing the question. */
export function dnsErrorResponse(query: Buffer, q: DnsQuestion, rcode: number): Buffer {
  const out = Buffer.from(query.subarray(0, q.end));
  const rd = query.readUInt16BE(2) & 0x0100;
  out.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x7800) | rd | 0x0080 | rcode, 2); // QR, opcode, RD, RA, rcode
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6); // ANCOUNT, NSCOUNT
  out.writeUInt16BE(0, 10); // ARCOUNT
  return out;
}
