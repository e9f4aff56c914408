/**
 * The admission table (per-source accounting, eviction policy), source keys, the
 * trusted-proxy rule and the per-source rates, on their own: pure bookkeeping (the
 * refusals, on plain TCP sockets on 127.0.0.1).
 */
import { describe, expect, it } from 'vitest';
import { AdmissionTable, MAX_FORWARDED_HOPS, TrustedProxies, clientAddress, sourceKey } from '../../src/transport/admission.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { SourceRates } from '../../src/transport/rate.js';
import { Refusals } from '../../src/transport/refusals.js';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

describe('AdmissionTable', () => {
  it('a source at its cap evicts its own oldest silent entry, never another source', () => {
    const t = new AdmissionTable<string>({ maxPending: 10, maxPerSource: 2 });
    t.admit('A', 'a1');
    t.admit('B', 'b1');
    t.admit('A', 'a2');
    expect(t.admit('A', 'a3').evicted).toEqual(['a1']);
    expect(t.countFor('A')).toBe(2);
    expect(t.countFor('B')).toBe(1);
    expect(t.size).toBe(3);
  });

  it('a full table evicts from the source holding the most, preferring entries that have not progressed', () => {
    const t = new AdmissionTable<string>({ maxPending: 4, maxPerSource: 4 });
    const honest = t.admit('H', 'honest').ticket;
    t.progress(honest);
    const x1 = t.admit('X', 'x1').ticket;
    t.progress(x1);
    t.admit('X', 'x2');
    t.admit('X', 'x3');
    // X holds 3: its oldest silent entry (x2, not the progressed x1) goes.
    expect(t.admit('N', 'newcomer').evicted).toEqual(['x2']);
    expect(t.admit('N', 'n2').evicted).toEqual(['x3']);
    // Now X holds 1 (progressed), N holds 2: N is the largest holder and loses its oldest.
    expect(t.admit('M', 'm1').evicted).toEqual(['newcomer']);
    expect(honest.live).toBe(true);
    expect(t.size).toBe(4);
  });

  it('an honest entry is evicted only once every source holds a single entry (ties: the oldest)', () => {
    const t = new AdmissionTable<string>({ maxPending: 3, maxPerSource: 3 });
    t.progress(t.admit('H', 'honest').ticket);
    t.admit('A', 'a');
    t.admit('B', 'b');
    // All hold 1: the oldest candidate goes (the honest one, admitted first).
    expect(t.admit('C', 'c').evicted).toEqual(['honest']);
  });

  it('release is idempotent and after eviction a no-op; the counts return to zero', () => {
    const t = new AdmissionTable<number>({ maxPending: 1, maxPerSource: 1 });
    const first = t.admit('A', 1).ticket;
    const second = t.admit('A', 2);
    expect(second.evicted).toEqual([1]);
    t.release(first);
    t.release(second.ticket);
    t.release(second.ticket);
    expect(t.size).toBe(0);
    expect(t.countFor('A')).toBe(0);
  });

  it('flood from one source: the table never exceeds its caps and other sources keep their entries', () => {
    const t = new AdmissionTable<number>({ maxPending: 8, maxPerSource: 3 });
    const others = ['P', 'Q', 'R'].map((s, i) => t.admit(s, 100 + i).ticket);
    for (let i = 0; i < 10_000; i++) t.admit('X', i);
    expect(t.countFor('X')).toBe(3);
    expect(t.size).toBe(6);
    expect(others.every((o) => o.live)).toBe(true);
  });

  it('refuses bad limits', () => {
    expect(() => new AdmissionTable({ maxPending: 0, maxPerSource: 1 })).toThrow(InvalidArgumentError);
    expect(() => new AdmissionTable({ maxPending: 1, maxPerSource: 1.5 })).toThrow(/maxPerSource must be a positive integer/);
  });
});

describe('sourceKey', () => {
  it('IPv4 as is, mapped IPv4 unwrapped, IPv6 by its /64', () => {
    expect(sourceKey('127.0.0.5')).toBe('127.0.0.5');
    expect(sourceKey('::ffff:127.0.0.5')).toBe('127.0.0.5');
    expect(sourceKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:2:ffff::1')).toBe(sourceKey('2001:0db8:0001:0002:0::2'));
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(sourceKey(undefined)).toBe('unknown');
  });
});

describe('trusted proxies', () => {
  const trusted = new TrustedProxies(['127.0.0.2', '10.0.0.0/8', '::1']);

  it('believes X-Forwarded-For only from a trusted peer, read from the right past trusted hops', () => {
    expect(clientAddress('127.0.0.2', '127.0.0.77', trusted)).toBe('127.0.0.77');
    expect(clientAddress('127.0.0.2', '127.0.0.66, 127.0.0.77', trusted)).toBe('127.0.0.77');
    // A forged left-most entry behind a trusted chain is not believed.
    expect(clientAddress('127.0.0.2', '1.2.3.4, 127.0.0.77, 10.1.1.1', trusted)).toBe('127.0.0.77');
    expect(clientAddress('::ffff:127.0.0.2', '127.0.0.77', trusted)).toBe('127.0.0.77');
    expect(clientAddress('::1', '2001:db8::1', trusted)).toBe('2001:db8::1');
  });

  it('ignores the header from any other peer, and garbage from a trusted one', () => {
    expect(clientAddress('127.0.0.3', '127.0.0.77', trusted)).toBe('127.0.0.3');
    expect(clientAddress('127.0.0.2', 'not-an-ip', trusted)).toBe('127.0.0.2');
    expect(clientAddress('127.0.0.2', undefined, trusted)).toBe('127.0.0.2');
    expect(clientAddress('127.0.0.2', '127.0.0.77', new TrustedProxies([]))).toBe('127.0.0.2');
  });

  it('a chain of trusted hops only: the right-most (written by our peer), never the client-chosen left-most (review F9)', () => {
    expect(clientAddress('127.0.0.2', '10.0.0.1, 10.0.0.2', trusted)).toBe('10.0.0.2');
    // A client inside a trusted range prepending fresh trusted addresses gets no fresh source.
    const sources = new Set(Array.from({ length: 20 }, (_, i) => sourceKey(clientAddress('127.0.0.2', `10.9.${i}.1, 10.0.0.5`, trusted))));
    expect([...sources]).toEqual(['10.0.0.5']);
    // The limit of that (review 21, R21-2, documented: trust proxies, not client ranges): an
    // UNtrusted address written left of its own is taken for the client's.
    expect(clientAddress('127.0.0.2', '203.0.113.7, 10.0.0.5', trusted)).toBe('203.0.113.7');
  });

  it(`reads at most ${MAX_FORWARDED_HOPS} entries from the right, so a 16 KiB header costs no more than a short one (review 21, R21-3)`, () => {
    // The source is found where it is, however long the header left of it.
    expect(clientAddress('127.0.0.2', `${','.repeat(8000)}, 1.2.3.4`, trusted)).toBe('1.2.3.4');
    expect(clientAddress('127.0.0.2', `${'9.9.9.9, '.repeat(1500)}1.2.3.4, 10.0.0.1`, trusted)).toBe('1.2.3.4');
    // Within the bound, a chain all trusted is its right-most entry, empty items skipped.
    const chain = (n: number) => Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(', ');
    expect(clientAddress('127.0.0.2', chain(MAX_FORWARDED_HOPS), trusted)).toBe(`10.0.0.${MAX_FORWARDED_HOPS - 1}`);
    expect(clientAddress('127.0.0.2', `1.2.3.4,${','.repeat(10)}10.0.0.9`, trusted)).toBe('1.2.3.4');
    // Past it, all trusted (or empty): garbage, the proxy itself; never the left-most.
    expect(clientAddress('127.0.0.2', `1.2.3.4, ${chain(MAX_FORWARDED_HOPS)}`, trusted)).toBe('127.0.0.2');
    expect(clientAddress('127.0.0.2', chain(2000), trusted)).toBe('127.0.0.2');
    expect(clientAddress('127.0.0.2', `1.2.3.4${', '.repeat(40)}`, trusted)).toBe('127.0.0.2');
    // Several headers read as one list, as before.
    expect(clientAddress('127.0.0.2', ['1.2.3.4', '10.0.0.1'], trusted)).toBe('1.2.3.4');
  });

  it('entries with a port, and IPv4-mapped IPv6 in hex form, are the addresses they name', () => {
    expect(clientAddress('127.0.0.2', '1.2.3.4:5678', trusted)).toBe('1.2.3.4');
    expect(clientAddress('127.0.0.2', '[2001:db8::7]:443, 10.0.0.3:80', trusted)).toBe('2001:db8::7');
    expect(clientAddress('127.0.0.2', '[2001:db8::7]', trusted)).toBe('2001:db8::7');
    expect(sourceKey('::ffff:102:304')).toBe('1.2.3.4');
    expect(sourceKey('::ffff:7f00:2')).toBe(sourceKey('127.0.0.2'));
    expect(trusted.has('::ffff:a00:1')).toBe(true); // 10.0.0.1
    expect(clientAddress('::ffff:7f00:2', '1.2.3.4', trusted)).toBe('1.2.3.4');
  });

  it('refuses entries that are not addresses or CIDR blocks', () => {
    expect(() => new TrustedProxies(['nginx.local'])).toThrow(InvalidArgumentError);
    expect(() => new TrustedProxies(['10.0.0.0/33'])).toThrow(/bad prefix length/);
    expect(() => new TrustedProxies(['10.0.0.0/8/1'])).toThrow(InvalidArgumentError);
  });
});

describe('SourceRates (the per-source token buckets of the connection and handshake rates)', () => {
  it('a burst, then one token per 1/rate seconds; sources are independent; rate 0 never refuses', () => {
    let now = 0;
    const r = new SourceRates({ rate: 2, burst: 4, now: () => now });
    const takes = (source: string, n: number) => Array.from({ length: n }, () => r.take(source));
    expect(takes('A', 5)).toEqual([true, true, true, true, false]);
    expect(r.take('B')).toBe(true);
    now += 499;
    expect(r.take('A')).toBe(false);
    now += 1;
    expect(takes('A', 2)).toEqual([true, false]);
    now += 60_000; // refills to the burst, not past it
    expect(takes('A', 5)).toEqual([true, true, true, true, false]);
    const open = new SourceRates({ rate: 0 });
    expect(Array.from({ length: 1000 }, () => open.take('A')).every(Boolean)).toBe(true);
    expect(open.size).toBe(0);
  });

  it('bounded: past maxSources refilled buckets go first, then the least recently used (which start full again)', () => {
    let now = 0;
    const r = new SourceRates({ rate: 1, burst: 1, maxSources: 8, now: () => now });
    for (let i = 0; i < 100; i++) expect(r.take(`s${i}`)).toBe(true);
    expect(r.size).toBeLessThanOrEqual(8);
    // The most recent source is still remembered (empty), the oldest was forgotten (full).
    expect(r.take('s99')).toBe(false);
    expect(r.take('s0')).toBe(true);
    now += 1_000;
    expect(r.take('s99')).toBe(true);
  });

  it('refuses bad rates', () => {
    expect(() => new SourceRates({ rate: -1 })).toThrow(InvalidArgumentError);
    expect(() => new SourceRates({ rate: Number.NaN })).toThrow(InvalidArgumentError);
    expect(() => new SourceRates({ rate: 1, burst: 0.5 })).toThrow(InvalidArgumentError);
  });
});

describe('Refusals (429 after a hold, bounded)', () => {
  /** A socket pair on 127.0.0.1: the server side to refuse, and what the client side reads. */
  async function socketPair(): Promise<{ server: Socket; read: Promise<string>; close: () => void }> {
    const listener = createServer();
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const accepted = new Promise<Socket>((r) => listener.once('connection', r));
    const client = connect((listener.address() as AddressInfo).port, '127.0.0.1');
    const server = await accepted;
    listener.close();
    const read = new Promise<string>((resolve) => {
      let text = '';
      client.on('data', (d) => (text += d.toString()));
      client.on('close', () => resolve(text));
      client.on('error', () => {});
    });
    return { server, read, close: () => client.destroy() };
  }

  it('holds up to maxHeld sockets; past the bound, answers at once: 429 with Retry-After, then closes', async () => {
    const refusals = new Refusals({ delayMs: 60_000, maxHeld: 2 });
    const pairs = await Promise.all([socketPair(), socketPair(), socketPair()]);
    for (const p of pairs) refusals.refuse(p.server);
    expect(refusals.held).toBe(2);
    expect(refusals.refused).toBe(3);
    // The third was answered at once; the held two are still held (a minute).
    const third = await pairs[2]!.read;
    expect(third).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
    expect(third).toContain('Retry-After: 1\r\n');
    expect(refusals.held).toBe(2);
    refusals.close();
    for (const p of pairs.slice(0, 2)) expect(await p.read).toMatch(/^HTTP\/1\.1 429 /);
  });

  it('a held socket is answered when its hold ends (one timer for all)', async () => {
    const refusals = new Refusals({ delayMs: 20, maxHeld: 10 });
    const pairs = await Promise.all([socketPair(), socketPair()]);
    for (const p of pairs) refusals.refuse(p.server);
    expect(refusals.held).toBe(2);
    for (const p of pairs) expect(await p.read).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
    expect(refusals.held).toBe(0);
  });

  it('close() answers every held socket; a socket the client closed meanwhile is skipped', async () => {
    const refusals = new Refusals({ delayMs: 60_000, maxHeld: 10 });
    const [a, b] = await Promise.all([socketPair(), socketPair()]);
    refusals.refuse(a!.server);
    refusals.refuse(b!.server);
    b!.close();
    await new Promise((r) => b!.server.once('close', r));
    refusals.close();
    expect(await a!.read).toMatch(/^HTTP\/1\.1 429 /);
    expect(refusals.held).toBe(0);
  });
});
