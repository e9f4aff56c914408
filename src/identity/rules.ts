/**
 * Text and byte rules shared by the credential encoder (caller input: InvalidArgumentError),
 * the credential decoder (peer input: DecodeError) and the trust store's configuration.
 *
 * One rule table, two error classes: the encoder can never emit a string its own decoder
 * would refuse, because both run the same checks.
 *
 * Sharp edges:
 * - Strings are decoded with a fatal UTF-8 decoder that KEEPS a leading U+FEFF (the default
 *   TextDecoder silently strips it, which would let two byte strings decode to one value).
 *   Re-encoding must give back the exact bytes; anything else is refused.
 * - "Control character" means Unicode category Cc: U+0000-U+001F and U+007F-U+009F.
 *   Format characters (bidi overrides, zero-width joiners) are NOT refused: ids are matched
 *   byte for byte, so they cannot alias another id, but they can look like one on screen.
 * - Error messages name the field and the rule, never the offending value.
 */

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const WHITESPACE = /\s/;
const LONE_SURROGATE = /\p{Cs}/u;
/** A URI with a scheme and no whitespace, e.g. agent://acme/planner. */
const URI = /^[a-z][a-z0-9+.-]*:\S+$/i;
const ATTRIBUTE_KEY = /^[A-Za-z0-9_.-]+$/;

/** Length bounds (in UTF-8 bytes) and a content check returning the reason for refusal. */
export interface TextRule {
  readonly min: number;
  readonly max: number;
  readonly check: (s: string) => string | undefined;
}

function noNul(s: string): string | undefined {
  return s.includes('\u0000') ? 'contains a NUL character' : undefined;
}

function uri(s: string): string | undefined {
  if (CONTROL.test(s)) return 'contains a control character';
  if (!URI.test(s)) return 'must be a URI with a scheme and no whitespace (e.g. agent://org/name)';
  return undefined;
}

export const Rules = {
  /** agent_id and issuer_id. */
  id: { min: 1, max: 255, check: uri },
  displayName: { min: 0, max: 255, check: (s) => (CONTROL.test(s) ? 'contains a control character' : undefined) },
  scope: {
    min: 1,
    max: 255,
    check: (s) => (CONTROL.test(s) ? 'contains a control character' : WHITESPACE.test(s) ? 'contains whitespace' : undefined),
  },
  attributeKey: { min: 1, max: 64, check: (s) => (ATTRIBUTE_KEY.test(s) ? undefined : 'must match [A-Za-z0-9_.-]+') },
  attributeValue: { min: 0, max: 1024, check: noNul },
} as const satisfies Record<string, TextRule>;

/** The UTF-8 bytes of a caller's string that satisfies `rule`, or the reason it does not. */
export function textProblem(value: unknown, rule: TextRule): { reason: string } | { bytes: Uint8Array } {
  if (typeof value !== 'string') return { reason: 'must be a string' };
  if (LONE_SURROGATE.test(value)) return { reason: 'is not well-formed Unicode (lone surrogate)' };
  const bytes = utf8Encoder.encode(value);
  if (bytes.length < rule.min || bytes.length > rule.max) {
    return { reason: `must be ${rule.min}..${rule.max} bytes of UTF-8, got ${bytes.length}` };
  }
  const reason = noNul(value) ?? rule.check(value);
  return reason === undefined ? { bytes } : { reason };
}

/** Peer bytes decoded under `rule`, or the reason they are refused. */
export function decodeTextProblem(bytes: Uint8Array, rule: TextRule): { reason: string } | { value: string } {
  if (bytes.length < rule.min || bytes.length > rule.max) {
    return { reason: `length ${bytes.length} outside [${rule.min}, ${rule.max}]` };
  }
  let value: string;
  try {
    value = utf8Decoder.decode(bytes);
  } catch {
    return { reason: 'is not valid UTF-8' };
  }
  // Belt and braces: the decoded string must re-encode to exactly the bytes received.
  const again = utf8Encoder.encode(value);
  if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) return { reason: 'is not canonical UTF-8' };
  const reason = noNul(value) ?? rule.check(value);
  return reason === undefined ? { value } : { reason };
}

/** Lexicographic byte order: negative, zero or positive like a sort comparator. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** True if `s` is a valid agent or issuer id. */
export function isValidId(s: unknown): s is string {
  return 'bytes' in textProblem(s, Rules.id);
}

/** `value` as lowercase hex if it is hex of minBytes..maxBytes bytes (either case accepted), else undefined. */
export function parseHex(value: unknown, minBytes: number, maxBytes: number): string | undefined {
  if (typeof value !== 'string' || value.length % 2 !== 0) return undefined;
  if (value.length < 2 * minBytes || value.length > 2 * maxBytes) return undefined;
  if (!/^[0-9a-fA-F]*$/.test(value)) return undefined;
  return value.toLowerCase();
}
