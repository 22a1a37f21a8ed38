// Who is speaking. The server's `speakers` events (at most 3 a second:
// {"speakers":[{"participantId","level"}],"dominant":"id"}) decide once the
// first one arrived: the server sends one whenever who speaks changes, so
// its latest event stays true until the next. Before any (a server that
// does not send them, or a call nobody has spoken in yet) the page measures
// the audio it plays itself with WebAudio.
const TICK_MS = 200;
const SPEAKING_LEVEL = 0.015; // RMS of the decoded signal, 0..1
const HOLD_MS = 800; // a speaker stays highlighted through short pauses

export class Speakers {
  // onChange(speaking Set, dominant id) is called when either changes.
  constructor(onChange) {
    this.onChange = onChange;
    this.ctx = null;
    this.meters = new Map(); // participant id → {analyser, source, buf, last, avg}
    this.serverAt = 0;
    this.server = { speaking: new Set(), dominant: '' };
    this.shown = '';
    this.timer = null;
    this.source = 'local'; // which source decided last: local or server
  }

  start() {
    if (this.timer) return;
    try {
      this.ctx = new AudioContext();
    } catch {
      this.ctx = null; // no WebAudio: only server events
    }
    const resume = () => this.ctx?.resume?.().catch(() => {});
    addEventListener('pointerdown', resume);
    addEventListener('keydown', resume);
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    for (const id of [...this.meters.keys()]) this.remove(id);
    this.ctx?.close?.().catch(() => {});
    this.ctx = null;
  }

  // add measures a participant's audio track (the self view's microphone too).
  add(id, track) {
    this.remove(id);
    if (!this.ctx) return;
    try {
      const source = this.ctx.createMediaStreamSource(new MediaStream([track]));
      const analyser = this.ctx.createAnalyser();
      analyser.fftSize = 512;
      source.connect(analyser);
      this.meters.set(id, { analyser, source, buf: new Float32Array(analyser.fftSize), last: 0, avg: 0 });
    } catch {
      // a track WebAudio cannot read: the server's events still work
    }
  }

  remove(id) {
    const m = this.meters.get(id);
    if (!m) return;
    m.source.disconnect();
    this.meters.delete(id);
  }

  // fromServer applies a `speakers` event.
  fromServer(ev) {
    this.serverAt = Date.now();
    const speaking = new Set((ev.speakers || []).filter((s) => (s.level ?? 1) > 0).map((s) => s.participantId));
    this.server = { speaking, dominant: ev.dominant || '' };
    this.publish(speaking, this.server.dominant, 'server');
  }

  tick() {
    if (this.serverAt) return;
    if (this.ctx?.state === 'suspended') this.ctx.resume().catch(() => {});
    const now = Date.now();
    const speaking = new Set();
    let dominant = '';
    let loudest = 0;
    for (const [id, m] of this.meters) {
      m.analyser.getFloatTimeDomainData(m.buf);
      let sum = 0;
      for (const x of m.buf) sum += x * x;
      const rms = Math.sqrt(sum / m.buf.length);
      m.avg = 0.7 * m.avg + 0.3 * rms;
      if (rms > SPEAKING_LEVEL) m.last = now;
      if (now - m.last < HOLD_MS) {
        speaking.add(id);
        if (m.avg > loudest) { loudest = m.avg; dominant = id; }
      }
    }
    this.publish(speaking, dominant, 'local');
  }

  publish(speaking, dominant, source) {
    const sig = [...speaking].sort().join(',') + '|' + dominant;
    this.source = source;
    if (sig === this.shown) return;
    this.shown = sig;
    this.onChange(speaking, dominant);
  }

  // levels reports the last measured levels (tests and diagnostics).
  levels() {
    const out = {};
    for (const [id, m] of this.meters) out[id] = Math.round(m.avg * 1000) / 1000;
    return out;
  }
}
