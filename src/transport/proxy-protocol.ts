/**
 * The PROXY protocol header (HAProxy's spec, versions 1 and 2) that TCP load balancers
 * (HAProxy `send-proxy`/`send-proxy-v2`, AWS NLB, nginx stream `proxy_protocol on`) put in
 * front of a relayed connection to say whom it is from. Parsing only: the listener reads it
 * from trusted proxies before any HTTP (proxy-front.ts).
 *
 * `parseProxyHeader(bytes)` takes the bytes received so far and returns the header once it
 * is complete, `undefined` while the bytes are a proper prefix of one, and throws
 * ProxyProtocolError as soon as they cannot be the start of a valid header. Both versions
 * are recognised by their first bytes (they cannot be confused with each other or with
 * HTTP), so a listener accepts either.
 *
 *   v1 (text, at most 107 bytes with the CRLF):
 *     "PROXY TCP4 <src> <dst> <sport> <dport>\r\n"   IPv4 dotted, no leading zeros
 *     "PROXY TCP6 <src> <dst> <sport> <dport>\r\n"   IPv6 text
 *     "PROXY UNKNOWN[ <anything>]\r\n"                client unknown: the TCP peer stands
 *   v2 (binary, 16 + len bytes):
 *     sig[12]   0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
 *     u8        version (high nibble, must be 2) | command (0 LOCAL, 1 PROXY)
 *     u8        family (0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) | protocol (0 UNSPEC, 1 STREAM, 2 DGRAM)
 *     u16       len: the bytes that follow (addresses, then TLVs)
 *     INET:  src[4]  dst[4]  sport u16 dport u16    (12 bytes)
 *     INET6: src[16] dst[16] sport u16 dport u16    (36 bytes)
 *     UNIX:  src[108] dst[108]                      (216 bytes)
 *     TLVs:  { u8 type, u16 length, value[length] }* filling the rest exactly
 *
 * Sharp edges:
 * - Only TCP over IPv4/IPv6 (v1 TCP4/TCP6, v2 PROXY with INET/INET6 STREAM) names a
 *   client. LOCAL (the proxy's own connection, e.g. a health check), v1 UNKNOWN, and the
 *   other valid v2 combinations (UNSPEC, UNIX, DGRAM) give `source: undefined`: the TCP peer
 *   (the proxy) stands for the client, as the spec allows. Invalid nibbles are refused.
 * - v2 is bounded at MAX_V2_HEADER bytes (refused as soon as the length field says more);
 *   v1 at 107. A parser fed one byte at a time gives the same result as one fed everything.
 * - TLVs are checked for shape (each inside the declared length, nothing left over) and
 *   otherwise skipped; a CRC32C TLV is not verified (optional in the spec: what we trust
 *   is the TCP peer's address, not the header's integrity).
 * - Never trust this header from a peer that is not a configured trusted proxy: anyone can
 *   write one. This module does not know who sent the bytes.
 */
import { SocketAddress, isIP } from 'node:net';
import { ProxyProtocolError } from '../errors.js';

/** Bytes a v2 header may take at most (16 fixed + addresses + TLVs); AWS, GCP and HAProxy send far fewer. */
export const MAX_V2_HEADER = 4_096;
/** Bytes a v1 line may take at most, CRLF included (the spec's worst case). */
export const MAX_V1_HEADER = 107;

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

export interface ProxyEndpoint {
  readonly address: string;
  readonly port: number;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /** v2 LOCAL: a connection the proxy made for itself (a health check); the TCP peer stands. */
  readonly local: boolean;
  /** The client's TCP endpoint; undefined when the header names none (see the module doc). */
  readonly source: ProxyEndpoint | undefined;
  /** The address the client connected to (the proxy's frontend); undefined with `source`. */
  readonly destination: ProxyEndpoint | undefined;
  /** Bytes of the header: the connection's own data starts after them. */
  readonly length: number;
}

/**
 * The header at the start of `data`: complete (with its length), `undefined` while more
 * bytes are needed, or ProxyProtocolError once `data` cannot start a valid header.
 */
export function parseProxyHeader(data: Uint8Array): ProxyHeader | undefined {
  if (data.length === 0) return undefined;
  if (data[0] === V2_SIGNATURE[0]) return parseV2(data);
  if (data[0] === V1_PREFIX[0]) return parseV1(data);
  throw notAHeader();
}

function notAHeader(): ProxyProtocolError {
  return new ProxyProtocolError('malformed', 'the connection did not start with a PROXY protocol header (is the proxy configured to send one?)');
}

/** True if the first `n` bytes of `data` equal those of `expected` (n = the shorter length). */
function prefixMatches(data: Uint8Array, expected: Uint8Array): boolean {
  const n = Math.min(data.length, expected.length);
  for (let i = 0; i < n; i++) if (data[i] !== expected[i]) return false;
  return true;
}

// --- version 2 ----------------------------------------------------------------------------

/** Address block sizes of the v2 families (by the family nibble). */
const V2_ADDRESS_BYTES = [0, 12, 36, 216] as const;

function parseV2(data: Uint8Array): ProxyHeader | undefined {
  if (!prefixMatches(data, V2_SIGNATURE)) throw notAHeader();
  if (data.length < 16) {
    if (data.length > 12) checkV2Fixed(data);
    return undefined;
  }
  const { command, family, protocol } = checkV2Fixed(data);
  const declared = (data[14]! << 8) | data[15]!;
  const length = 16 + declared;
  if (length > MAX_V2_HEADER) throw new ProxyProtocolError('too-long', `PROXY v2 header of ${length} bytes refused (at most ${MAX_V2_HEADER})`);
  if (data.length < length) return undefined;
  const block = data.subarray(16, length);
  // LOCAL: the block (family included) is discarded, as the spec says.
  if (command === 0) return { version: 2, local: true, source: undefined, destination: undefined, length };
  // UNSPEC family or protocol: the block is not ours to read.
  if (family === 0 || protocol === 0) return { version: 2, local: false, source: undefined, destination: undefined, length };
  const addressBytes = V2_ADDRESS_BYTES[family as 1 | 2 | 3];
  if (block.length < addressBytes) throw new ProxyProtocolError('malformed', `PROXY v2 address block of ${block.length} bytes is shorter than its family's ${addressBytes}`);
  checkTlvs(block.subarray(addressBytes));
  if (family === 3 || protocol !== 1) return { version: 2, local: false, source: undefined, destination: undefined, length };
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const size = family === 1 ? 4 : 16;
  const source = { address: ipFromBytes(block.subarray(0, size)), port: view.getUint16(2 * size) };
  const destination = { address: ipFromBytes(block.subarray(size, 2 * size)), port: view.getUint16(2 * size + 2) };
  return { version: 2, local: false, source, destination, length };
}

/** Bytes 12 and 13 (when present): version 2, a known command, known family and protocol nibbles. */
function checkV2Fixed(data: Uint8Array): { command: number; family: number; protocol: number } {
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) throw new ProxyProtocolError('malformed', `PROXY v2 header with version ${versionCommand >> 4} refused (only 2)`);
  const command = versionCommand & 0x0f;
  if (command > 1) throw new ProxyProtocolError('malformed', `PROXY v2 header with unknown command ${command} refused`);
  if (data.length < 14) return { command, family: 0, protocol: 0 };
  const family = data[13]! >> 4;
  const protocol = data[13]! & 0x0f;
  if (family > 3 || protocol > 2) throw new ProxyProtocolError('malformed', `PROXY v2 header with unknown family/protocol 0x${data[13]!.toString(16).padStart(2, '0')} refused`);
  return { command, family, protocol };
}

/** TLVs must tile `bytes` exactly. Their contents are skipped. */
function checkTlvs(bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 3) throw new ProxyProtocolError('malformed', 'PROXY v2 header ends inside a TLV header');
    const length = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    at += 3 + length;
    if (at > bytes.length) throw new ProxyProtocolError('malformed', 'PROXY v2 TLV runs past the header');
  }
}

/** 4 or 16 bytes as the address's canonical text ("192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"). */
function ipFromBytes(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

// --- version 1 ----------------------------------------------------------------------------

const CR = 0x0d;
const LF = 0x0a;

function parseV1(data: Uint8Array): ProxyHeader | undefined {
  if (!prefixMatches(data, V1_PREFIX)) throw notAHeader();
  const limit = Math.min(data.length, MAX_V1_HEADER);
  let end = -1;
  for (let i = 0; i < limit; i++) {
    const b = data[i]!;
    if (b === CR) {
      // Its LF must fall within the first MAX_V1_HEADER bytes: a CR at the last of them is
      // a line too long whatever follows (and however the bytes arrived), not a bare CR.
      if (i + 1 >= limit) break;
      if (data[i + 1] !== LF) throw new ProxyProtocolError('malformed', 'PROXY v1 line has a CR without LF');
      end = i;
      break;
    } else if (b === LF) {
      throw new ProxyProtocolError('malformed', 'PROXY v1 line has an LF without CR');
    } else if (b < 0x20 || b > 0x7e) {
      throw new ProxyProtocolError('malformed', 'PROXY v1 line has a byte outside printable US-ASCII');
    }
  }
  if (end === -1) {
    if (data.length >= MAX_V1_HEADER) throw new ProxyProtocolError('too-long', `PROXY v1 line without CRLF in its first ${MAX_V1_HEADER} bytes`);
    return undefined;
  }
  const line = Buffer.from(data.buffer, data.byteOffset, end).toString('latin1');
  const length = end + 2;
  const fields = line.split(' ');
  if (fields[1] === 'UNKNOWN') return { version: 1, local: false, source: undefined, destination: undefined, length };
  const [, proto, src, dst, sport, dport, ...extra] = fields;
  if ((proto !== 'TCP4' && proto !== 'TCP6') || extra.length > 0 || dport === undefined) {
    throw new ProxyProtocolError('malformed', 'PROXY v1 line is not "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>" or "PROXY UNKNOWN"');
  }
  const family = proto === 'TCP4' ? 4 : 6;
  return { version: 1, local: false, source: { address: v1Address(src!, family), port: v1Port(sport!) }, destination: { address: v1Address(dst!, family), port: v1Port(dport) }, length };
}

/** A v1 address of the line's family: dotted IPv4 without leading zeros, or IPv6 text (no zone). */
function v1Address(text: string, family: 4 | 6): string {
  const chars = family === 4 ? /^[0-9.]+$/ : /^[0-9A-Fa-f:.]+$/;
  if (!chars.test(text) || isIP(text) !== family) throw new ProxyProtocolError('malformed', `PROXY v1 address is not an IPv${family} address`);
  return family === 4 ? text : new SocketAddress({ address: text, family: 'ipv6' }).address;
}

function v1Port(text: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text) || Number(text) > 65_535) throw new ProxyProtocolError('malformed', 'PROXY v1 port is not a number from 0 to 65535 without leading zeros');
  return Number(text);
}
