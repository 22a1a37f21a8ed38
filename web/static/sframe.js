// RFC 9605 SFrame on WebCrypto: the same format as the Go package e2ee.
// KIDs and CTRs are BigInts (they are 64-bit values); everything else is a
// Uint8Array. Works in window and worker scope.

// Cipher suites of RFC 9605 §4.5, Table 1 (IANA registry, §8.1).
export const SUITES = {
  1: { name: 'AES_128_CTR_HMAC_SHA256_80', hash: 'SHA-256', nh: 32, nka: 16, nk: 48, nt: 10, gcm: false },
  2: { name: 'AES_128_CTR_HMAC_SHA256_64', hash: 'SHA-256', nh: 32, nka: 16, nk: 48, nt: 8, gcm: false },
  3: { name: 'AES_128_CTR_HMAC_SHA256_32', hash: 'SHA-256', nh: 32, nka: 16, nk: 48, nt: 4, gcm: false },
  4: { name: 'AES_128_GCM_SHA256_128', hash: 'SHA-256', nh: 32, nka: 0, nk: 16, nt: 16, gcm: true },
  5: { name: 'AES_256_GCM_SHA512_128', hash: 'SHA-512', nh: 64, nka: 0, nk: 32, nt: 16, gcm: true },
};
export const DEFAULT_SUITE = 4;
const NONCE_SIZE = 12; // AEAD.Nn of every suite

const enc = new TextEncoder();
const subtle = crypto.subtle;

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

export function bytesBE(v, n) { // BigInt → n bytes big-endian
  const out = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n; }
  return out;
}

// compactLen: 0 for values 0..7 (in the config byte), else the minimal
// number of big-endian bytes (RFC 9605 §4.3).
function compactLen(v) {
  if (v < 8n) return 0;
  let n = 0;
  for (; v > 0n; v >>= 8n) n++;
  return n;
}

// encodeHeader returns the minimal SFrame header (RFC 9605 §4.3, Figure 3:
// |X| K |Y| C|).
export function encodeHeader(kid, ctr) {
  const kl = compactLen(kid), cl = compactLen(ctr);
  let cfg = kl === 0 ? Number(kid) << 4 : 0x80 | (kl - 1) << 4;
  cfg |= cl === 0 ? Number(ctr) : 0x08 | (cl - 1);
  return concat(Uint8Array.of(cfg), bytesBE(kid, kl), bytesBE(ctr, cl));
}

// parseHeader decodes the header at the start of b: {kid, ctr, len}. It
// throws on a truncated or non-minimal header, as the Go side rejects them.
export function parseHeader(b) {
  if (b.length < 1) throw new Error('sframe: truncated header');
  const cfg = b[0];
  let off = 1;
  const field = (ext, v) => {
    if (!ext) return BigInt(v);
    const l = v + 1;
    if (b.length - off < l) throw new Error('sframe: truncated header');
    let x = 0n;
    for (let i = 0; i < l; i++) x = x << 8n | BigInt(b[off + i]);
    if (compactLen(x) !== l) throw new Error('sframe: non-minimal header');
    off += l;
    return x;
  };
  const kid = field(cfg & 0x80, cfg >> 4 & 7);
  const ctr = field(cfg & 0x08, cfg & 7);
  return { kid, ctr, len: off };
}

// hkdf is HKDF-Extract(salt, ikm) then HKDF-Expand(info, n) (RFC 5869); an
// empty salt is HashLen zeros, as in the Go standard library.
export async function hkdf(hash, ikm, info, n, salt = new Uint8Array(0)) {
  const key = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await subtle.deriveBits({ name: 'HKDF', hash, salt, info }, key, n * 8));
}

// hkdfExtract is only used to check the vectors' sframe_secret.
export async function hkdfExtract(hash, ikm, nh) {
  const key = await subtle.importKey('raw', new Uint8Array(nh), { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', key, ikm));
}

// ratchet: base_key[i+1] = HKDF-Expand(HKDF-Extract("", base_key[i]),
// "SFrame 1.0 Ratchet", Nh) (RFC 9605 §5.1).
export function ratchet(suite, baseKey) {
  const p = SUITES[suite];
  return hkdf(p.hash, baseKey, enc.encode('SFrame 1.0 Ratchet'), p.nh);
}

// deriveKeySalt is derive_key_salt of RFC 9605 §4.4.2.
export async function deriveKeySalt(suite, kid, baseKey) {
  const p = SUITES[suite];
  const tail = concat(bytesBE(kid, 8), bytesBE(BigInt(suite), 2));
  const key = await hkdf(p.hash, baseKey, concat(enc.encode('SFrame 1.0 Secret key '), tail), p.nk);
  const salt = await hkdf(p.hash, baseKey, concat(enc.encode('SFrame 1.0 Secret salt '), tail), NONCE_SIZE);
  return { key, salt };
}

// importAEAD turns an Nk-byte sframe_key into WebCrypto keys; for the
// AES-CTR suites it splits enc_key and auth_key (derive_subkeys, §4.5.1).
export async function importAEAD(suite, key) {
  const p = SUITES[suite];
  if (p.gcm) return { suite, p, gcm: await subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']) };
  return {
    suite, p,
    enc: await subtle.importKey('raw', key.slice(0, p.nka), 'AES-CTR', false, ['encrypt', 'decrypt']),
    auth: await subtle.importKey('raw', key.slice(p.nka), { name: 'HMAC', hash: p.hash }, false, ['sign']),
  };
}

async function ctrHmacTag(a, nonce, aad, ct) {
  const lens = concat(bytesBE(BigInt(aad.length), 8), bytesBE(BigInt(ct.length), 8), bytesBE(BigInt(a.p.nt), 8));
  const mac = new Uint8Array(await subtle.sign('HMAC', a.auth, concat(lens, nonce, aad, ct)));
  return mac.slice(0, a.p.nt);
}

// aeadEncrypt / aeadDecrypt are AEAD.Encrypt / AEAD.Decrypt of §4.5
// (AES-GCM, or AES-CTR then truncated HMAC per §4.5.1).
export async function aeadEncrypt(a, nonce, aad, pt) {
  if (a.gcm) {
    return new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: a.p.nt * 8 }, a.gcm, pt));
  }
  const counter = concat(nonce, new Uint8Array(4));
  const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-CTR', counter, length: 128 }, a.enc, pt));
  return concat(ct, await ctrHmacTag(a, nonce, aad, ct));
}

export async function aeadDecrypt(a, nonce, aad, ct) {
  if (ct.length < a.p.nt) throw new Error('sframe: ciphertext shorter than the tag');
  if (a.gcm) {
    try {
      return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: a.p.nt * 8 }, a.gcm, ct));
    } catch { throw new Error('sframe: authentication failed'); }
  }
  const inner = ct.subarray(0, ct.length - a.p.nt);
  const tag = ct.subarray(ct.length - a.p.nt);
  const want = await ctrHmacTag(a, nonce, aad, inner);
  let diff = 0;
  for (let i = 0; i < tag.length; i++) diff |= tag[i] ^ want[i];
  if (diff !== 0) throw new Error('sframe: authentication failed');
  const counter = concat(nonce, new Uint8Array(4));
  return new Uint8Array(await subtle.decrypt({ name: 'AES-CTR', counter, length: 128 }, a.enc, inner));
}

// KeyState is one KID's key in an SFrame context (§4.4): the AEAD, the
// salt and, for a send key, the next counter.
export class KeyState {
  static async create(suite, kid, baseKey) {
    const { key, salt } = await deriveKeySalt(suite, kid, baseKey);
    const k = new KeyState();
    k.suite = suite; k.kid = kid; k.salt = salt; k.next = 0n;
    k.aead = await importAEAD(suite, key);
    return k;
  }

  // nonce = sframe_salt XOR encode_big_endian(CTR, Nn) (§4.4.3).
  nonce(ctr) {
    const n = this.salt.slice();
    const c = bytesBE(ctr, NONCE_SIZE);
    for (let i = 0; i < NONCE_SIZE; i++) n[i] ^= c[i];
    return n;
  }

  // protect is encrypt() of §4.4.3: header || ciphertext || tag, with
  // AAD = header || metadata. The counter is taken before any await, so
  // concurrent frames never share one.
  async protect(metadata, plaintext) {
    const ctr = this.next++;
    const header = encodeHeader(this.kid, ctr);
    const ct = await aeadEncrypt(this.aead, this.nonce(ctr), concat(header, metadata), plaintext);
    return concat(header, ct);
  }

  // unprotect is decrypt() of §4.4.4 for a frame whose header was parsed.
  unprotect(metadata, frame, h) {
    const header = frame.subarray(0, h.len);
    return aeadDecrypt(this.aead, this.nonce(h.ctr), concat(header, metadata), frame.subarray(h.len));
  }
}

// Codec clear prefixes (DESIGN.md "End-to-end encryption"): VP8 10 bytes
// for key frames (frame tag + start code + size, RFC 6386 §9.1) and 3 for
// delta frames (bit 0 of the first byte is 0 for a key frame); Opus 1 byte
// (the TOC, RFC 6716 §3.1); others 0.
export function nominalPrefix(codec, frame) {
  if (codec === 'opus') return 1;
  if (codec === 'vp8') return frame.length > 0 && (frame[0] & 1) ? 3 : 10;
  return 0;
}

export function clearPrefixLen(codec, frame) {
  return Math.min(nominalPrefix(codec, frame), frame.length);
}

// encryptFrame: [clear prefix][SFrame header][ciphertext+tag], the prefix
// authenticated as metadata (as e2ee.EncryptFrame).
export async function encryptFrame(key, codec, frame) {
  const p = clearPrefixLen(codec, frame);
  const prefix = frame.subarray(0, p);
  return concat(prefix, await key.protect(prefix, frame.subarray(p)));
}

// frameHeaders lists where the SFrame header of a protected frame may start,
// best guess first, as e2ee.DecryptFrame tries them: after the codec's
// prefix, or after a shorter one when the frame was shorter than its prefix
// (recognised by its exact length).
export function frameHeaders(codec, frame, nt) {
  const out = [];
  const n = nominalPrefix(codec, frame);
  if (frame.length >= n) {
    try { out.push({ p: n, h: parseHeader(frame.subarray(n)) }); } catch { /* try shorter prefixes */ }
  }
  for (let p = Math.min(n, frame.length + 1) - 1; p >= 0; p--) {
    try {
      const h = parseHeader(frame.subarray(p));
      if (p + h.len + nt === frame.length) out.push({ p, h });
    } catch { /* not here */ }
  }
  return out;
}
