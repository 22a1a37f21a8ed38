// The signaling socket (docs/signaling.md) with session resume: when the
// socket drops, a new one resumes the session with the credential from
// `joined` and the seq of the last call message handled; the server replays
// what was missed. Messages are handed to the page with the socket they came
// on, so that an answer never goes out on a later socket than its offer.

const RETRY_FIRST = 250;
const RETRY_MAX = 2000;

export class Signaling {
  // url: wss://…/v1/rtc. h: {message(m, sock), joined(m), resumed(m),
  // reconnecting(), failed(code, message), ended(reason)}.
  constructor(url, h) {
    this.url = url;
    this.h = h;
    this.ws = null;
    this.token = '';
    this.resume = '';
    this.grace = 0;
    this.lastSeq = 0;
    this.state = 'idle'; // joining, joined, reconnecting, closed
    this.lostAt = 0;
    this.retry = RETRY_FIRST;
    this.pings = new Map();
    this.pingSeq = 0;
    this.resumes = 0;
  }

  join(token) {
    this.token = token;
    this.state = 'joining';
    this.open({ type: 'join', v: 1, token });
  }

  open(first) {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => { opened = true; ws.send(JSON.stringify(first)); };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      this.receive(m, ws, first.type);
    };
    ws.onclose = (ev) => { if (this.ws === ws) this.dropped(opened, ev); };
  }

  receive(m, ws, phase) {
    if (m.seq) this.lastSeq = m.seq;
    switch (m.type) {
      case 'joined':
        this.resume = m.resume || '';
        this.grace = (m.resumeGrace || 0) * 1000;
        this.lastSeq = 0;
        this.state = 'joined';
        this.retry = RETRY_FIRST;
        this.h.joined(m, ws);
        return;
      case 'resumed':
        this.state = 'joined';
        this.retry = RETRY_FIRST;
        this.resumes++;
        this.h.resumed(m, ws);
        return;
      case 'pong': {
        const p = this.pings.get(String(m.id));
        if (p) { this.pings.delete(String(m.id)); p(true); }
        return;
      }
      case 'ended':
        this.state = 'closed';
        this.h.ended(m.reason);
        return;
      case 'error':
        if (this.state === 'joining' || (this.state === 'reconnecting' && phase === 'resume')) {
          this.refused(m, phase);
          return;
        }
        break;
    }
    this.h.message(m, ws);
  }

  // refused: the server turned down our join or resume (it closes next).
  refused(m, phase) {
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    if (phase === 'resume' && m.code === 'resume_failed' && this.token) {
      // The session is gone: a fresh join with the link's token.
      this.resume = '';
      this.h.rejoining?.();
      this.join(this.token);
      return;
    }
    this.state = 'closed';
    this.h.failed(m.code, m.message);
  }

  dropped(opened, ev) {
    this.ws = null;
    if (this.state === 'closed') return;
    if (this.state === 'joining' && !this.resume) {
      this.state = 'closed';
      this.h.failed(opened ? 'connection_lost' : 'unreachable', `socket closed (${ev.code})`);
      return;
    }
    if (this.state !== 'reconnecting') {
      this.state = 'reconnecting';
      this.lostAt = Date.now();
      this.h.reconnecting();
    }
    if (Date.now() - this.lostAt > this.grace) {
      this.state = 'closed';
      this.h.failed('connection_lost', 'could not resume in time');
      return;
    }
    setTimeout(() => {
      if (this.state !== 'reconnecting') return;
      this.open({ type: 'resume', v: 1, resume: this.resume, lastSeq: this.lastSeq });
    }, this.retry);
    this.retry = Math.min(this.retry * 2, RETRY_MAX);
  }

  // send sends m on sock (default: the current socket) if it is the current
  // one and open; it reports whether it did.
  send(m, sock = this.ws) {
    if (!sock || sock !== this.ws || sock.readyState !== WebSocket.OPEN || this.state !== 'joined') return false;
    sock.send(JSON.stringify(m));
    return true;
  }

  // probe pings the server; a socket that does not answer within ms is
  // closed, which starts a resume. It resolves to whether the socket is fine.
  probe(ms = 2000) {
    const ws = this.ws;
    if (!ws || this.state !== 'joined') return Promise.resolve(false);
    const id = ++this.pingSeq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pings.delete(String(id));
        if (this.ws === ws) {
          // A dead connection's close handshake can take minutes: resume
          // now, and let the old socket close in the background.
          ws.close(4000, 'no pong');
          this.dropped(true, { code: 4000 });
        }
        resolve(false);
      }, ms);
      this.pings.set(String(id), () => { clearTimeout(timer); resolve(true); });
      if (!this.send({ type: 'ping', id })) { clearTimeout(timer); resolve(false); }
    });
  }

  // leave ends the session for good.
  leave() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.state === 'joined') {
      this.ws.send(JSON.stringify({ type: 'leave' }));
    }
    this.state = 'closed';
    const ws = this.ws;
    this.ws = null;
    ws?.close();
  }
}
