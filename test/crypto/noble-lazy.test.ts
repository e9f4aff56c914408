/**
 * The portable backend is loaded only when a primitive needs it (src/crypto/noble-registry.ts):
 * a fresh Node process that imports the backend selector and runs the native backend's
 * handshake primitives never loads @noble/post-quantum where node:crypto has ML-KEM and
 * ML-DSA (Node 24); where it lacks them (Node 20) the same code loads noble synchronously
 * and works. Either way, caller-supplied randomness (known-answer tests) reaches noble, and
 * the lazily loaded backend gives the same bytes as the statically imported one.
 *
 * Each case runs in a child process of its own (`node --import tsx`), so nothing this test
 * file imports can preload the libraries; module loads are observed with module.registerHooks
 * where the runtime has it (Node >= 22.15) and in the CommonJS cache (require of ES modules).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function child(code: string): Record<string, unknown> {
  const prelude = `
    import * as nodeModule from 'node:module';
    const loaded = new Set();
    const observed = typeof nodeModule.registerHooks === 'function';
    if (observed) nodeModule.registerHooks({ load(url, ctx, next) { if (url.includes('/@noble/')) loaded.add(url.replace(/.*\\/@noble\\//, '@noble/')); return next(url, ctx); } });
    // require() of an ES module also lands in the CommonJS cache (hooks may not see it under tsx).
    const cache = nodeModule.createRequire(import.meta.url).cache;
    const nobleLoaded = () => {
      if (!observed) return undefined;
      const all = new Set([...loaded, ...Object.keys(cache).filter((k) => k.includes('/@noble/')).map((k) => k.replace(/.*\\/@noble\\//, '@noble/'))]);
      return [...all].filter((u) => u.startsWith('@noble/post-quantum') || u.startsWith('@noble/curves')).sort();
    };
    const hex = (b) => Buffer.from(b).toString('hex');
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `${prelude}\n${code}`], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe('the portable backend loads on demand', () => {
  it('the native backend runs a handshake’s primitives without noble where node:crypto has ML-KEM and ML-DSA', () => {
    const r = child(`
      const { selectBackend } = await import('./src/crypto/select.ts');
      const { compositeKeygen, compositeSign, compositeVerify } = await import('./src/crypto/composite.ts');
      const b = selectBackend('native');
      const kp = b.xwing.keygen(b.randomBytes(32));
      const enc = b.xwing.encapsulate(kp.publicKey);
      const same = hex(b.xwing.decapsulate(kp, enc.ciphertext)) === hex(enc.sharedSecret);
      const id = compositeKeygen(b, b.randomBytes(64));
      const msg = new Uint8Array([1, 2, 3]);
      const ctx = new Uint8Array([9]);
      const ok = compositeVerify(b, id.publicKey, msg, compositeSign(b, id, msg, ctx), ctx);
      console.log(JSON.stringify({ report: b.report, same, ok, loaded: nobleLoaded() }));
    `);
    expect(r.same).toBe(true);
    expect(r.ok).toBe(true);
    const report = r.report as { mlkem: string; mldsa: string };
    if (r.loaded !== undefined) {
      if (report.mlkem === 'native' && report.mldsa === 'native') expect(r.loaded).toEqual([]);
      else expect((r.loaded as string[]).length).toBeGreaterThan(0);
    }
  });

  it('caller-supplied randomness reaches noble, loaded then, with the same bytes as the static import', () => {
    const r = child(`
      const { selectBackend } = await import('./src/crypto/select.ts');
      const b = selectBackend('native');
      const seed = new Uint8Array(32).fill(7);
      const kp = b.xwing.keygen(seed);
      const before = nobleLoaded();
      const m = new Uint8Array(64).fill(3);
      const lazy = b.xwing.encapsulate(kp.publicKey, m);
      const lazyNoble = selectBackend('noble');
      const viaSelect = lazyNoble.xwing.encapsulate(kp.publicKey, m);
      const after = nobleLoaded();
      const { createNobleBackend } = await import('./src/crypto/noble.ts');
      const direct = createNobleBackend().xwing.encapsulate(kp.publicKey, m);
      console.log(JSON.stringify({ mlkem: b.report.mlkem, before, after, lazy: hex(lazy.ciphertext) + hex(lazy.sharedSecret), viaSelect: hex(viaSelect.ciphertext) + hex(viaSelect.sharedSecret), direct: hex(direct.ciphertext) + hex(direct.sharedSecret), name: lazyNoble.name }));
    `);
    expect(r.name).toBe('noble');
    expect(r.lazy).toBe(r.direct);
    expect(r.viaSelect).toBe(r.direct);
    expect(String(r.direct)).toMatch(/^[0-9a-f]{2304}$/);
    if (r.before !== undefined && r.mlkem === 'native') {
      expect(r.before).toEqual([]);
      expect((r.after as string[]).length).toBeGreaterThan(0);
    }
  });
});
