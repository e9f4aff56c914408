/**
 * The ticket key file reader (docs/protocol.md 15.6) holds to section 12's rules for every
 * pqmcp file: unknown fields are refused (at the top level too), and hex is accepted in
 * either case and written lowercase (review 13, R13-6).
 */
import { describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { TicketKeys } from '../../src/resumption/ticket-keys.js';

const backend = createNobleBackend();
const keys = TicketKeys.generate(backend, 0).rotate(backend, { nowMs: 1000 });
const json = keys.toJSON();

describe('ticket key file: section 12 rules', () => {
  it('an unknown top-level field is refused, naming it (a misspelt field is not silently ignored)', () => {
    expect(() => TicketKeys.fromJSON({ ...json, rotateEvery: 3600 })).toThrow(InvalidArgumentError);
    expect(() => TicketKeys.fromJSON(JSON.stringify({ ...json, rotateEvery: 3600 }))).toThrow(/unknown field "rotateEvery"/);
    expect(() => TicketKeys.fromJSON({ ...json, keys: [{ ...json.keys[0]!, note: 'x' }] })).toThrow(/keys\[0\] has unknown field "note"/);
  });

  it('a key id in uppercase (or mixed) hex is accepted, read as the same id, and written back lowercase', () => {
    // An id with at least one letter, so that the case matters.
    const id = 'A0b1C2d3E4f5a6B7';
    const upper = { ...json, keys: [{ ...json.keys[0]!, id }, { ...json.keys[1]!, id: json.keys[1]!.id.toUpperCase() }] };
    const read = TicketKeys.fromJSON(upper);
    expect(read.ids).toEqual([id.toLowerCase(), json.keys[1]!.id]);
    expect(read.toJSON().keys.map((k) => k.id)).toEqual([id.toLowerCase(), json.keys[1]!.id]);
    expect(read.toJSON().keys.map((k) => k.key)).toEqual(json.keys.map((k) => k.key));
    // The same id in two cases is one id: a duplicate.
    const twice = { ...json, keys: [json.keys[0]!, { ...json.keys[1]!, id: json.keys[0]!.id.toUpperCase() }] };
    expect(() => TicketKeys.fromJSON(twice)).toThrow(/duplicate/);
  });

  it('what toJSON writes still reads back as it was', () => {
    expect(TicketKeys.fromJSON(JSON.stringify(keys)).toJSON()).toEqual(json);
    expect(json.keys.every((k) => /^[0-9a-f]{16}$/.test(k.id))).toBe(true);
    expect(Object.keys(json)).toEqual(['version', 'keys']);
  });

  it('ids that are not 16 hex digits are still refused', () => {
    for (const id of ['0123456789abcde', '0123456789abcdefa', '0123456789abcdeg', ' 0123456789abcde', 7]) {
      expect(() => TicketKeys.fromJSON({ ...json, keys: [{ ...json.keys[0]!, id }] })).toThrow(/keys\[0\]\.id must be 16 hex digits/);
    }
  });
});
