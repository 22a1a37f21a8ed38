// The E2EE worker: every encoded frame passes through here, between the
// encoder and the packetizer (encrypt) and between the depacketizer and the
// decoder (decrypt). Keys never leave this worker except the call secret the
// page hands it. Frames are attached by RTCRtpScriptTransform
// (rtctransform events) or, where that is missing, by the page posting the
// streams of createEncodedStreams.
import { E2EE } from './keys.js';

let e2ee = null;
const counters = new Map(); // transform id → counters reported to the page
const videoSenders = new Set(); // RTCRtpScriptTransformers of outgoing video

function reply(m) { self.postMessage(m); }

self.onmessage = async (ev) => {
  const m = ev.data;
  try {
    switch (m.type) {
      case 'init':
        e2ee = await E2EE.create(new TextEncoder().encode(m.secret));
        reply({ type: 'keys', kid: e2ee.sendKid.toString(16), seq: m.seq });
        break;
      case 'ratchet':
      case 'newGeneration':
        await (m.type === 'ratchet' ? e2ee.ratchet() : e2ee.newGeneration());
        reply({ type: 'keys', kid: e2ee.sendKid.toString(16), keyFrame: await keyFrame(), switched: true, seq: m.seq });
        break;
      case 'label': { // a receiver now carries another participant's track
        const c = counters.get(m.id);
        if (c) Object.assign(c, { participant: m.participant, run: 0, failing: false });
        break;
      }
      case 'streams': // createEncodedStreams fallback
        attach(m.readable, m.writable, m.options, null);
        break;
      case 'stats':
        reply({ type: 'stats', seq: m.seq, counters: Object.fromEntries(counters), switches: e2ee ? e2ee.switches : 0 });
        break;
    }
  } catch (err) {
    reply({ type: 'error', seq: m.seq, message: String(err) });
  }
};

self.onrtctransform = (ev) => {
  const t = ev.transformer;
  attach(t.readable, t.writable, t.options, t);
};

// keyFrame asks every video encoder for a key frame after a key switch
// (RTCRtpScriptTransformer.generateKeyFrame); it reports whether it could.
async function keyFrame() {
  let asked = false;
  for (const t of videoSenders) {
    if (typeof t.generateKeyFrame !== 'function') continue;
    try { await t.generateKeyFrame(); asked = true; } catch { /* encoder not running yet */ }
  }
  return asked;
}

// FAILING_RUN frames in a row that do not authenticate mean the sender's
// key is not ours (a wrong or rotated call secret): the page is told, and
// told again when frames decrypt again.
const FAILING_RUN = 5;

function decryptState(c, ok) {
  if (ok) {
    c.run = 0;
    if (c.failing) {
      c.failing = false;
      reply({ type: 'decrypt', id: c.id, participant: c.participant, failing: false });
    }
    return;
  }
  if (++c.run >= FAILING_RUN && !c.failing) {
    c.failing = true;
    reply({ type: 'decrypt', id: c.id, participant: c.participant, failing: true });
  }
}

function attach(readable, writable, o, transformer) {
  const c = { id: o.id, op: o.op, kind: o.kind, participant: o.participant || '', frames: 0, done: 0, failures: 0,
    run: 0, failing: false };
  counters.set(o.id, c);
  if (o.op === 'encrypt' && o.kind === 'video' && transformer) videoSenders.add(transformer);
  const codec = o.kind === 'video' ? 'vp8' : 'opus';
  const transform = o.op === 'encrypt'
    ? async (frame, ctl) => {
      c.frames++;
      if (!e2ee) return; // never send a frame in the clear
      frame.data = (await e2ee.encrypt(codec, new Uint8Array(frame.data))).buffer;
      c.done++;
      ctl.enqueue(frame);
    }
    : async (frame, ctl) => {
      c.frames++;
      try {
        frame.data = (await e2ee.decrypt(codec, new Uint8Array(frame.data))).buffer;
      } catch {
        c.failures++; // dropped: the decoder never sees a frame that did not authenticate
        decryptState(c, false);
        return;
      }
      c.done++;
      decryptState(c, true);
      ctl.enqueue(frame);
    };
  readable.pipeThrough(new TransformStream({ transform })).pipeTo(writable).catch(() => {
    videoSenders.delete(transformer); // the sender or receiver went away
  });
}
