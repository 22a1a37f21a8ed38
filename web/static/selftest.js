// Self-tests of the browser's SFrame: the RFC 9605 Appendix C vectors (the
// sframe-wg JSON, e2ee/testdata/test-vectors.json) and hooks that let the Go
// tests check that Go and the browser derive and encrypt alike.
import {
  SUITES, encodeHeader, parseHeader, deriveKeySalt, hkdfExtract, importAEAD, aeadEncrypt, aeadDecrypt, KeyState,
} from './sframe.js';
import { E2EE, senderBaseKey } from './keys.js';

export const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
export const unhex = (s) => new Uint8Array((s.match(/../g) || []).map((x) => parseInt(x, 16)));
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// runVectors checks every vector of the JSON text and returns
// {passed, failed, failures}. KIDs and CTRs up to 2^64-1 do not fit a JS
// number, so they are read as strings and turned into BigInts.
export async function runVectors(text) {
  const v = JSON.parse(text.replace(/"(kid|ctr)"\s*:\s*(\d+)/g, '"$1":"$2"'));
  const res = { passed: 0, failed: 0, failures: [], counts: {} };
  const check = (name, ok) => {
    if (ok) res.passed++; else { res.failed++; if (res.failures.length < 20) res.failures.push(name); }
  };
  res.counts = { header: v.header.length, aes_ctr_hmac: v.aes_ctr_hmac.length, sframe: v.sframe.length };

  for (const t of v.header) { // Appendix C.1
    const kid = BigInt(t.kid), ctr = BigInt(t.ctr);
    const name = `header kid=${t.kid} ctr=${t.ctr}`;
    const h = parseHeader(unhex(t.encoded));
    check(name + ' encode', hex(encodeHeader(kid, ctr)) === t.encoded);
    check(name + ' parse', h.kid === kid && h.ctr === ctr && h.len === t.encoded.length / 2);
  }
  for (const t of v.aes_ctr_hmac) { // Appendix C.2
    const name = `aes_ctr_hmac suite ${t.cipher_suite}`;
    const p = SUITES[t.cipher_suite];
    const key = unhex(t.key);
    check(name + ' subkeys', hex(key.slice(0, p.nka)) === t.enc_key && hex(key.slice(p.nka)) === t.auth_key);
    const a = await importAEAD(t.cipher_suite, key);
    check(name + ' encrypt', hex(await aeadEncrypt(a, unhex(t.nonce), unhex(t.aad), unhex(t.pt))) === t.ct);
    check(name + ' decrypt', hex(await aeadDecrypt(a, unhex(t.nonce), unhex(t.aad), unhex(t.ct))) === t.pt);
    const bad = unhex(t.ct); bad[0] ^= 1;
    check(name + ' rejects a modified ciphertext', await aeadDecrypt(a, unhex(t.nonce), unhex(t.aad), bad).then(() => false, () => true));
  }
  for (const t of v.sframe) { // Appendix C.3 and C.4
    const name = `sframe suite ${t.cipher_suite}`;
    const p = SUITES[t.cipher_suite];
    const kid = BigInt(t.kid), ctr = BigInt(t.ctr), base = unhex(t.base_key);
    check(name + ' sframe_secret', hex(await hkdfExtract(p.hash, base, p.nh)) === t.sframe_secret);
    const ks = await deriveKeySalt(t.cipher_suite, kid, base);
    check(name + ' key and salt', hex(ks.key) === t.sframe_key && hex(ks.salt) === t.sframe_salt);
    const k = await KeyState.create(t.cipher_suite, kid, base);
    check(name + ' nonce', hex(k.nonce(ctr)) === t.nonce);
    k.next = ctr;
    const md = unhex(t.metadata);
    const ct = await k.protect(md, unhex(t.pt));
    check(name + ' aad', hex(encodeHeader(kid, ctr)) + t.metadata === t.aad);
    check(name + ' encrypt', hex(ct) === t.ct);
    const h = parseHeader(unhex(t.ct));
    check(name + ' decrypt', same(await k.unprotect(md, unhex(t.ct), h), unhex(t.pt)));
  }
  return res;
}

// senderBaseKeyHex exposes the schedule's base key derivation.
export async function senderBaseKeyHex(secret, gen, suite = 4) {
  return hex(await senderBaseKey(suite, new TextEncoder().encode(secret), BigInt(gen)));
}

// interop encrypts plainHex under a fresh sender of the secret (for Go to
// decrypt) and decrypts goHex (a Go sender's frame).
export async function interop(secret, kind, plainHex, goHex) {
  const codec = kind === 'video' ? 'vp8' : 'opus';
  const s = new TextEncoder().encode(secret);
  const tx = await E2EE.create(s), rx = await E2EE.create(s);
  const out = { encrypted: hex(await tx.encrypt(codec, unhex(plainHex))) };
  try { out.decrypted = hex(await rx.decrypt(codec, unhex(goHex))); } catch (e) { out.error = String(e); }
  return out;
}
