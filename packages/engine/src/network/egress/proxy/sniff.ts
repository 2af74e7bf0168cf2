/**
 * What the guest asks for, read from the first bytes of a connection: the TLS ClientHello's SNI or
 * the HTTP request's Host header. 'more' = not enough bytes yet; null = no name in a complete header.
 */

/** Stop reading a connection's first bytes after this many (a ClientHello or request head fits). */
export const MAX_SNIFF_BYTES = 16 * 1024;

export type Sniffed = { name: string } | null | 'more';

export function sniffTlsSni(buf: Buffer): Sniffed {
  // Record header: type 22 (handshake), version, length; then handshake type 1 (ClientHello).
  if (buf.length < 5) return 'more';
  if (buf[0] !== 0x16) return null;
  const recordLen = buf.readUInt16BE(3);
  if (buf.length < 5 + recordLen) return buf.length >= MAX_SNIFF_BYTES ? null : 'more';
  const hs = buf.subarray(5, 5 + recordLen);
  if (hs.length < 4 || hs[0] !== 0x01) return null;
  const helloLen = hs.readUIntBE(1, 3);
  // A ClientHello split over several records is not read (clients send it in one).
  const hello = hs.subarray(4, 4 + helloLen);
  let p = 2 + 32; // client version, random
  const need = (n: number) => p + n <= hello.length;
  if (!need(1)) return null;
  p += 1 + hello[p]!; // session id
  if (!need(2)) return null;
  p += 2 + hello.readUInt16BE(p); // cipher suites
  if (!need(1)) return null;
  p += 1 + hello[p]!; // compression methods
  if (!need(2)) return null;
  const extEnd = Math.min(hello.length, p + 2 + hello.readUInt16BE(p));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = hello.readUInt16BE(p);
    const len = hello.readUInt16BE(p + 2);
    p += 4;
    if (type === 0 && p + len <= extEnd) {
      // server_name_list: length, then (type, length, name)*
      let q = p + 2;
      while (q + 3 <= p + len) {
        const nameType = hello[q]!;
        const nameLen = hello.readUInt16BE(q + 1);
        q += 3;
        if (nameType === 0 && q + nameLen <= p + len) return { name: hello.subarray(q, q + nameLen).toString('latin1') };
        q += nameLen;
      }
      return null;
    }
    p += len;
  }
  return null;
}

export function sniffHttpHost(buf: Buffer): Sniffed {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return buf.length >= MAX_SNIFF_BYTES ? null : 'more';
  const head = buf.subarray(0, end).toString('latin1');
  const m = /\r\nhost:[ \t]*([^\r\n]*)/i.exec(head);
  if (!m) return null;
  const host = m[1]!.trim();
  // Strip a port; keep a bracketed IPv6 literal whole (it will not match a name rule anyway).
  const name = host.startsWith('[') ? host : host.replace(/:\d+$/, '');
  return { name };
}
