/**
 * How keys cross into and out of node:crypto for the native backend (native.ts): the
 * 32-byte X25519 / Ed25519 keys in the fastest format this runtime handles correctly
 * (`CurveMode`, detected once), the Node >= 24.7 raw and seed formats for ML-KEM / ML-DSA,
 * and the small conversions the backend shares.
 *
 * Sharp edges:
 * - In 'jwk' mode a private key's secret passes through a base64url string, which (unlike
 *   a Uint8Array) cannot be wiped.
 * - Outputs are plain Uint8Arrays (u8), never Buffers (whose `slice` aliases memory).
 */
import type * as NodeCrypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';

export type NodeCryptoModule = typeof NodeCrypto;

/** A plain Uint8Array for a Node Buffer: a view when the Buffer owns its memory, else a copy. */
export function u8(b: Uint8Array): Uint8Array {
  if (b.constructor === Uint8Array) return b;
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return new Uint8Array(b.buffer, 0, b.byteLength);
  return new Uint8Array(b);
}

export function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

const hexBytes = (hex: string): Uint8Array => Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));

/** Fixed DER wrappers for 32-byte X25519 / Ed25519 keys (RFC 8410), for Node without raw formats. */
const DER = {
  x25519: { pkcs8: hexBytes('302e020100300506032b656e04220420'), spki: hexBytes('302a300506032b656e032100') },
  ed25519: { pkcs8: hexBytes('302e020100300506032b657004220420'), spki: hexBytes('302a300506032b6570032100') },
} as const;
type CurveName = keyof typeof DER;

/**
 * How 32-byte X25519 / Ed25519 keys enter and leave node:crypto on this runtime:
 * - 'raw': the `raw-private` / `raw-public` formats (Node >= 24.7);
 * - 'jwk': JWK (Node 20/22). OpenSSL 3.0's DER decoders cost ~300 us per private key on
 *   Node 20; JWK import is ~20 us. Node builds a private OKP key from `d` alone and only
 *   type-checks `x`, so we pass a placeholder `x` for private keys. curveModeWorks checks
 *   that at start-up against the DER path: a runtime that checked or used `x` gets 'der'.
 *   The secret passes through a base64url string, which (unlike a Uint8Array) cannot be
 *   wiped; noble's own BigInt scalars have the same limit;
 * - 'der': fixed PKCS#8 / SPKI wrappers (RFC 8410), the always-working fallback.
 */
export type CurveMode = 'raw' | 'jwk' | 'der';
const JWK_CRV = { x25519: 'X25519', ed25519: 'Ed25519' } as const;
const JWK_PLACEHOLDER_X = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'; // 32 zero bytes

function base64url(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64url(s: string): Uint8Array {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
}

/** Key import/export for 32-byte curve keys and the PQ seed formats. */
export class Keys {
  constructor(
    private readonly c: NodeCryptoModule,
    readonly mode: CurveMode,
  ) {}

  curvePrivate(type: CurveName, secret: Uint8Array): KeyObject {
    if (this.mode === 'raw') return this.raw('private', 'raw-private', type, secret);
    if (this.mode === 'jwk') {
      return this.c.createPrivateKey({ key: { kty: 'OKP', crv: JWK_CRV[type], d: base64url(secret), x: JWK_PLACEHOLDER_X }, format: 'jwk' });
    }
    const der = concat2(DER[type].pkcs8, secret);
    try {
      return this.c.createPrivateKey({ key: der as Buffer, format: 'der', type: 'pkcs8' });
    } finally {
      der.fill(0);
    }
  }

  curvePublic(type: CurveName, pub: Uint8Array): KeyObject {
    if (this.mode === 'raw') return this.raw('public', 'raw-public', type, pub);
    if (this.mode === 'jwk') return this.c.createPublicKey({ key: { kty: 'OKP', crv: JWK_CRV[type], x: base64url(pub) }, format: 'jwk' });
    return this.c.createPublicKey({ key: concat2(DER[type].spki, pub) as Buffer, format: 'der', type: 'spki' });
  }

  /** The raw 32-byte public key of a private curve key. */
  curvePublicBytes(priv: KeyObject): Uint8Array {
    const pub = this.c.createPublicKey(priv);
    if (this.mode === 'raw') return exportRawPublic(pub);
    if (this.mode === 'jwk') return fromBase64url(String(pub.export({ format: 'jwk' }).x));
    const der = pub.export({ format: 'der', type: 'spki' });
    return new Uint8Array(der.subarray(der.length - 32));
  }

  /** Node >= 24.7 raw formats ('raw-seed' for ML-KEM / ML-DSA, 'raw-private' / 'raw-public'). */
  raw(kind: 'private' | 'public', format: string, type: string, key: Uint8Array): KeyObject {
    const input = { key, format, asymmetricKeyType: type } as unknown as NodeCrypto.PublicKeyInput;
    return kind === 'private' ? this.c.createPrivateKey(input as unknown as NodeCrypto.PrivateKeyInput) : this.c.createPublicKey(input);
  }
}

export function exportRawPublic(pub: KeyObject): Uint8Array {
  return u8((pub as unknown as { export(o: { format: string }): Uint8Array }).export({ format: 'raw-public' }));
}

export function probe(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}

/** Whether `mode` works here and agrees with the DER path. */
export function curveModeWorks(c: NodeCryptoModule, mode: CurveMode): boolean {
  const secret = new Uint8Array(32).fill(1);
  const der = new Keys(c, 'der');
  return probe(() => {
    const k = new Keys(c, mode);
    return (['x25519', 'ed25519'] as const).every((t) => {
      const expected = der.curvePublicBytes(der.curvePrivate(t, secret));
      const got = k.curvePublicBytes(k.curvePrivate(t, secret));
      const viaDerExport = der.curvePublicBytes(k.curvePrivate(t, secret));
      return c.timingSafeEqual(got, expected) && c.timingSafeEqual(viaDerExport, expected) && k.curvePublic(t, expected).asymmetricKeyType === t;
    });
  });
}

/** The fastest CurveMode that works. For 'jwk' the key must come from `d`, not the placeholder `x`. */
export function detectCurveMode(c: NodeCryptoModule): CurveMode {
  if (curveModeWorks(c, 'raw')) return 'raw';
  if (curveModeWorks(c, 'jwk')) return 'jwk';
  return 'der';
}
