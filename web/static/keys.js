// Orville's E2EE key schedule on top of RFC 9605 SFrame: the same as the Go
// client's (client/e2ee.go), byte for byte.
//
// - A sender picks a generation of 48 random bits when it starts and again
//   whenever a participant leaves; KID = generation << 8 | ratchet step
//   (RFC 9605 §5.1 with R = 8). It ratchets when a participant joins; after
//   step 255 it starts a new generation instead.
// - The base key of step 0 of a generation is
//   HKDF(salt = "", IKM = call secret, info = "orville sender key" || KID as
//   8 bytes big-endian, L = Nh).
// - A receiver learns a sender's key from the SFrame header's KID: a new
//   generation is derived from the secret and ratcheted to its step, a later
//   step of a known generation is ratcheted forward. A derived key is kept
//   only once a frame authenticated under it.
import { SUITES, DEFAULT_SUITE, KeyState, hkdf, ratchet, concat, bytesBE, encryptFrame, frameHeaders } from './sframe.js';

export const RATCHET_BITS = 8n;
const MAX_STEP = 255;
const GENERATION_BYTES = 6; // 48 bits
const MAX_AHEAD = 16; // ratchet steps a known sender may skip
const KEEP_STEPS = 2; // steps kept per generation, for reordered frames
const MAX_GENERATIONS = 256;
const IDLE_MS = 30000; // a generation without frames this long is forgotten
export const MIN_SECRET = 16;

const enc = new TextEncoder();

export function senderBaseKey(suite, secret, gen) {
  const p = SUITES[suite];
  return hkdf(p.hash, secret, concat(enc.encode('orville sender key'), bytesBE(gen << RATCHET_BITS, 8)), p.nh);
}

function randomGeneration(not) {
  for (;;) {
    const b = crypto.getRandomValues(new Uint8Array(GENERATION_BYTES));
    let g = 0n;
    for (const x of b) g = g << 8n | BigInt(x);
    if (g !== 0n && g !== not) return g;
  }
}

export class E2EE {
  // create returns a context for secret (bytes) with a fresh send generation.
  static async create(secret, suite = DEFAULT_SUITE) {
    if (!(secret instanceof Uint8Array) || secret.length < MIN_SECRET) {
      throw new Error(`E2EE secret must be at least ${MIN_SECRET} bytes`);
    }
    if (!SUITES[suite]) throw new Error(`unknown SFrame suite ${suite}`);
    const e = new E2EE();
    e.secret = secret.slice();
    e.suite = suite;
    e.nt = SUITES[suite].nt;
    e.recv = new Map(); // KID → KeyState
    e.gens = new Map(); // generation → {step, base, kids, lastUsed}
    e.switches = 0;
    e.chain = Promise.resolve(); // serialises key switches and learning
    await e.newGeneration();
    e.switches = 0;
    return e;
  }

  get sendKid() { return this.send.kid; }

  serial(f) {
    const run = this.chain.then(f);
    this.chain = run.catch(() => {});
    return run;
  }

  async installSend(gen, step, base) {
    this.send = await KeyState.create(this.suite, gen << RATCHET_BITS | BigInt(step), base);
    this.sendKey = { gen, step, base };
    this.switches++;
    return this.send.kid;
  }

  // newGeneration switches to step 0 of a new random generation (on leave).
  newGeneration() {
    return this.serial(async () => {
      const gen = randomGeneration(this.sendKey?.gen);
      return this.installSend(gen, 0, await senderBaseKey(this.suite, this.secret, gen));
    });
  }

  // ratchet moves one step forward (on join), or to a new generation after
  // the last step. Serialised: two switches never compute the same KID, which
  // would restart its counter and repeat nonces.
  ratchet() {
    return this.serial(async () => {
      const k = this.sendKey;
      if (k.step >= MAX_STEP) {
        const gen = randomGeneration(k.gen);
        return this.installSend(gen, 0, await senderBaseKey(this.suite, this.secret, gen));
      }
      return this.installSend(k.gen, k.step + 1, await ratchet(this.suite, k.base));
    });
  }

  encrypt(codec, frame) {
    return encryptFrame(this.send, codec, frame);
  }

  // decrypt returns the plaintext frame or throws (no key, authentication
  // failure, malformed frame).
  async decrypt(codec, frame) {
    const tries = frameHeaders(codec, frame, this.nt);
    if (tries.length === 0) throw new Error('sframe: no SFrame header');
    let err;
    for (const { p, h } of tries) {
      const prefix = frame.subarray(0, p);
      try {
        const k = this.recv.get(h.kid);
        const pt = k ? await k.unprotect(prefix, frame.subarray(p), h)
          : await this.learn(h, prefix, frame.subarray(p));
        const g = this.gens.get(h.kid >> RATCHET_BITS);
        if (g) g.lastUsed = Date.now();
        return concat(prefix, pt);
      } catch (e) { err = e; }
    }
    throw err;
  }

  learn(h, prefix, body) {
    return this.serial(async () => {
      const known = this.recv.get(h.kid); // learnt meanwhile by another track
      if (known) return known.unprotect(prefix, body, h);
      this.expire();
      const gen = h.kid >> RATCHET_BITS;
      const low = Number(h.kid & BigInt(MAX_STEP));
      let g = this.gens.get(gen);
      let base, steps;
      if (g) {
        steps = (low - g.step) & MAX_STEP;
        if (steps > MAX_AHEAD) throw new Error('sframe: KID too many ratchet steps ahead');
        base = g.base;
      } else {
        if (this.gens.size >= MAX_GENERATIONS) throw new Error('sframe: too many sender generations');
        steps = low;
        base = await senderBaseKey(this.suite, this.secret, gen);
      }
      for (let i = 0; i < steps; i++) base = await ratchet(this.suite, base);
      const k = await KeyState.create(this.suite, h.kid, base);
      const pt = await k.unprotect(prefix, body, h); // throws: nothing kept
      if (!g) { g = { kids: [] }; this.gens.set(gen, g); }
      Object.assign(g, { step: low, base, lastUsed: Date.now() });
      this.recv.set(h.kid, k);
      g.kids.push(h.kid);
      while (g.kids.length > KEEP_STEPS) this.recv.delete(g.kids.shift());
      return pt;
    });
  }

  expire() {
    const cutoff = Date.now() - IDLE_MS;
    for (const [gen, g] of this.gens) {
      if (g.lastUsed < cutoff) {
        for (const kid of g.kids) this.recv.delete(kid);
        this.gens.delete(gen);
      }
    }
  }
}
