// The two WebRTC transports (docs/signaling.md): publish (we offer: the
// microphone, the camera and a screen share) and subscribe (the server
// offers everybody else's media). Frames pass through the E2EE worker.
// A transport that loses its path is recovered with an ICE restart: publish
// with a new offer of ours, subscribe by asking the server (`restartIce`).

import { simulcastEncodings, applyLayers } from './simulcast.js';

const scriptTransform = typeof RTCRtpScriptTransform === 'function';
export const SCREEN_PREFIX = 'screen-'; // track ids of screen shares, as the server sees them

// Watchdog timing (as in the Go client, client/icerestart.go).
const WATCH_MS = 500;
const RESTART_AFTER_MS = 3000; // disconnected this long: restart
const RESTART_EVERY_MS = 4000; // until it connects again
const ANSWER_TIMEOUT_MS = 10000;

export class Media {
  // o: {sig, worker, iceServers, onTrack(participant, source, track, trackId),
  // onState(), onDecrypt(participant, failing)}
  constructor(o) {
    Object.assign(this, o);
    this.receivers = new Map(); // RTCRtpReceiver → {id, kind, participant, trackId, source}
    this.nextId = 0;
    this.offers = Promise.resolve(); // subscribe offers, answered in order
    this.pubChain = Promise.resolve(); // publish offers, one at a time
    this.pubWait = null; // resolves the outstanding publish offer's answer
    this.senders = {}; // kind → {sender, serverId}
    this.screen = null; // {tr, track, serverId}
    this.loopbackOnly = false;
    this.everConnected = { publish: false, subscribe: false };
    this.watch = { publish: { bad: 0, restarted: 0 }, subscribe: { bad: 0, restarted: 0 } };
    this.iceRestarts = 0;
    this.closed = false;
  }

  // newPC makes a transport. The publish offer uses bundlePolicy
  // max-compat: with max-bundle Firefox offers every m-section after the
  // first as bundle-only (port 0, RFC 8843 §6), which the server reads as
  // rejected; max-compat gives each a port, and the server's answer still
  // bundles them on one transport.
  newPC(bundlePolicy = 'max-bundle') {
    const cfg = { iceServers: this.iceServers, bundlePolicy, rtcpMuxPolicy: 'require' };
    if (this.worker && !scriptTransform) cfg.encodedInsertableStreams = true;
    const pc = new RTCPeerConnection(cfg);
    return pc;
  }

  // trickle sends our candidates once the description they belong to went out.
  trickle(pc, transport) {
    let sent = false;
    const early = [];
    pc.onicecandidate = (ev) => {
      if (!ev.candidate || !ev.candidate.candidate) return;
      const c = ev.candidate.toJSON();
      if (sent) this.sig.send({ type: 'candidate', transport, candidate: c }); else early.push(c);
    };
    return () => { sent = true; early.splice(0).forEach((c) => this.sig.send({ type: 'candidate', transport, candidate: c })); };
  }

  attachTransform(senderOrReceiver, options) {
    if (!this.worker) return;
    if (scriptTransform) {
      senderOrReceiver.transform = new RTCRtpScriptTransform(this.worker, options);
      return;
    }
    const { readable, writable } = senderOrReceiver.createEncodedStreams();
    this.worker.postMessage({ type: 'streams', readable, writable, options }, [readable, writable]);
  }

  // start creates both transports and publishes local's tracks.
  async start(local) {
    this.sub = this.newPC();
    this.subSent = this.trickle(this.sub, 'subscribe');
    this.sub.ontrack = (ev) => this.onRemoteTrack(ev);
    this.pub = this.newPC('max-compat');
    this.pubSent = this.trickle(this.pub, 'publish');
    for (const pc of [this.pub, this.sub]) {
      const name = pc === this.pub ? 'publish' : 'subscribe';
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'connected') this.everConnected[name] = true;
        this.onState();
      };
    }
    for (const track of local.getTracks()) {
      const init = { direction: 'sendonly', streams: [local] };
      const layers = track.kind === 'video' && simulcastEncodings(track);
      if (layers) init.sendEncodings = layers;
      const tr = this.pub.addTransceiver(track, init);
      preferCodec(tr, track.kind);
      this.attachTransform(tr.sender, { op: 'encrypt', kind: track.kind, id: `send-${track.kind}` });
      this.senders[track.kind] = { sender: tr.sender, serverId: track.id };
      if (track.kind === 'video') {
        const p = tr.sender.getParameters();
        p.degradationPreference = 'maintain-resolution';
        tr.sender.setParameters(p).catch(() => {});
      }
    }
    this.timer = setInterval(() => this.watchdog(), WATCH_MS);
    if (this.pub.getTransceivers().length) await this.offerPublish();
  }

  // offerPublish sends a publish offer (one at a time) and waits for its answer.
  offerPublish(opts = {}) {
    const run = this.pubChain.then(() => this.doOffer(opts));
    this.pubChain = run.catch(() => {});
    return run;
  }

  async doOffer(opts) {
    if (this.closed) return;
    if (this.pub.signalingState === 'have-local-offer') {
      await this.pub.setLocalDescription({ type: 'rollback' }).catch(() => {});
    }
    const offer = await this.pub.createOffer(opts);
    await this.pub.setLocalDescription(offer);
    let sdp = offer.sdp;
    if (this.screen && this.screen.tr.mid) sdp = markScreen(sdp, this.screen.tr.mid);
    const answered = new Promise((resolve) => { this.pubWait = resolve; });
    if (!this.sig.send({ type: 'offer', transport: 'publish', sdp })) {
      this.pubWait = null;
      return; // no socket: the resume offers again
    }
    this.pubSent();
    const timeout = new Promise((resolve) => setTimeout(() => resolve(null), ANSWER_TIMEOUT_MS));
    const answer = await Promise.race([answered, timeout]);
    this.pubWait = null;
    if (!answer || this.closed) return;
    this.loopbackOnly = onlyLoopback(answer); // before ICE can fail on it
    await this.pub.setRemoteDescription({ type: 'answer', sdp: serverSDP(answer) });
  }

  // handle takes a signaling message for the transports; sock is the socket
  // it came on, which our answer must go out on.
  handle(m, sock) {
    switch (m.type) {
      case 'answer':
        if (this.pubWait) this.pubWait(m.sdp);
        return true;
      case 'offer':
        this.answerSubscribe(m.sdp, sock);
        return true;
      case 'candidate': {
        const pc = m.transport === 'publish' ? this.pub : this.sub;
        pc?.addIceCandidate(m.candidate).catch(() => {});
        return true;
      }
      case 'layers': { // simulcast encodings nobody receives stop (simulcast.js)
        const s = this.senders.video;
        if (s && s.serverId === m.trackId) applyLayers(s.sender, m.rids || []).catch((err) => console.warn('layers', err));
        return true;
      }
    }
    return false;
  }

  answerSubscribe(sdp, sock) {
    this.offers = this.offers.then(async () => {
      if (this.closed) return;
      this.loopbackOnly = onlyLoopback(sdp);
      await this.sub.setRemoteDescription({ type: 'offer', sdp: serverSDP(sdp) });
      const answer = await this.sub.createAnswer();
      await this.sub.setLocalDescription(answer);
      if (this.sig.send({ type: 'answer', transport: 'subscribe', sdp: answer.sdp }, sock)) this.subSent();
    }).catch((err) => console.warn('subscribe offer', err));
  }

  onRemoteTrack(ev) {
    const msid = msidOf(this.sub.remoteDescription?.sdp || '', ev.transceiver.mid);
    const participant = msid ? msid.stream : (ev.streams[0] ? ev.streams[0].id : 'unknown');
    const trackId = msid ? msid.track : ev.track.id;
    const source = ev.track.kind === 'video' && trackId.startsWith(SCREEN_PREFIX) ? 'screen' : 'camera';
    let r = this.receivers.get(ev.receiver);
    if (!r) {
      r = { id: `recv-${++this.nextId}`, kind: ev.track.kind };
      this.receivers.set(ev.receiver, r);
      try {
        this.attachTransform(ev.receiver, { op: 'decrypt', kind: ev.track.kind, participant, id: r.id });
      } catch (err) {
        console.warn('no frame transform for the receiver', err);
      }
    }
    // A receiver the server reuses for another publisher's track.
    if (r.participant && r.participant !== participant) this.worker?.postMessage({ type: 'label', id: r.id, participant });
    Object.assign(r, { participant, trackId, source });
    this.onTrack(participant, source, ev.track, trackId);
  }

  // restartIce restarts one transport's ICE (RFC 8445 §9).
  restartIce(name, why) {
    if (this.closed) return;
    this.watch[name].restarted = Date.now();
    this.iceRestarts++;
    console.info(`restarting ICE on ${name}: ${why}`);
    if (name === 'subscribe') {
      this.sig.send({ type: 'restartIce', transport: 'subscribe' });
      return;
    }
    this.offerPublish({ iceRestart: true }).catch((err) => console.warn('ICE restart offer', err));
  }

  // afterResume: what the server may have missed, and ICE restarts for the
  // transports that lost their path.
  afterResume(muted) {
    for (const [kind, s] of Object.entries(this.senders)) {
      this.sig.send({ type: 'mute', trackId: s.serverId, muted: muted(kind) });
    }
    for (const [name, pc] of [['publish', this.pub], ['subscribe', this.sub]]) {
      if (!pc) continue;
      if (name === 'publish' && pc.signalingState === 'have-local-offer') this.restartIce(name, 'offer unanswered at the resume');
      else if (pc.connectionState !== 'connected') this.restartIce(name, 'not connected after the resume');
    }
  }

  watchdog() {
    const now = Date.now();
    for (const [name, pc] of [['publish', this.pub], ['subscribe', this.sub]]) {
      const w = this.watch[name];
      const s = pc.connectionState;
      if (s === 'connected' || !this.everConnected[name]) { w.bad = 0; continue; }
      if (s === 'closed') continue;
      if (!w.bad) {
        w.bad = now;
        if (s === 'disconnected' || s === 'failed') this.sig.probe(); // a dead socket resumes first
      }
      const due = (s === 'failed' || now - w.bad >= RESTART_AFTER_MS) && now - w.restarted >= RESTART_EVERY_MS;
      if (due && this.sig.state === 'joined') this.restartIce(name, `transport ${s}`);
    }
  }

  // setICEServers takes fresh TURN credentials for the next gathering (an
  // ICE restart): the server sends them before the old ones expire.
  setICEServers(servers) {
    this.iceServers = servers;
    for (const pc of [this.pub, this.sub]) {
      try { pc?.setConfiguration({ ...pc.getConfiguration(), iceServers: servers }); } catch (e) { console.warn('iceServers', e); }
    }
  }

  // connected reports whether both transports are connected.
  connected() {
    return this.pub?.connectionState === 'connected' && this.sub?.connectionState === 'connected';
  }

  muteMessage(kind, muted) {
    const s = this.senders[kind];
    if (s) this.sig.send({ type: 'mute', trackId: s.serverId, muted });
  }

  // replaceTrack switches a device without renegotiating.
  async replaceTrack(kind, track) {
    const s = this.senders[kind];
    if (s) await s.sender.replaceTrack(track);
  }

  // startShare publishes a screen share as a second, encrypted video track.
  async startShare(track, stream) {
    let tr = this.screen?.tr;
    if (tr) {
      await tr.sender.replaceTrack(track);
      tr.sender.setStreams?.(stream);
      tr.direction = 'sendonly';
    } else {
      tr = this.pub.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      preferCodec(tr, 'video');
      this.attachTransform(tr.sender, { op: 'encrypt', kind: 'video', id: 'send-screen' });
    }
    this.screen = { tr, track };
    await this.offerPublish();
  }

  async stopShare() {
    if (!this.screen || !this.screen.track) return;
    this.screen.track.stop();
    this.screen.track = null;
    this.screen.tr.direction = 'inactive';
    await this.screen.tr.sender.replaceTrack(null);
    await this.offerPublish();
  }

  // transportInUse names the publish transport's path: udp, tcp, or
  // turn/<protocol> when our side is a relay candidate.
  async transportInUse() {
    if (!this.pub) return '';
    const stats = await this.pub.getStats();
    let pair;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    const local = pair && stats.get(pair.localCandidateId);
    if (!local) return '';
    if (local.candidateType === 'relay') return `turn/${local.relayProtocol || local.protocol}`;
    return local.protocol;
  }

  close() {
    this.closed = true;
    clearInterval(this.timer);
    this.pubWait?.(null);
    this.pub?.close();
    this.sub?.close();
  }
}

function preferCodec(transceiver, kind) {
  const mime = kind === 'video' ? 'video/vp8' : 'audio/opus';
  const caps = RTCRtpReceiver.getCapabilities(kind);
  const codecs = caps ? caps.codecs.filter((c) => c.mimeType.toLowerCase() === mime) : [];
  if (codecs.length && transceiver.setCodecPreferences) transceiver.setCodecPreferences(codecs);
}

// serverSDP makes the server's SDP acceptable to every browser: RFC 8122 §5
// writes fingerprints in upper-case hex, and Firefox refuses lower case.
export function serverSDP(sdp) {
  return sdp.replace(/^(a=fingerprint:\S+ )(\S+)/gm, (_, k, v) => k + v.toUpperCase());
}

// sections splits SDP into its session part and m-sections.
function sections(sdp) {
  return sdp.split(/\r\n(?=m=)/);
}

// msidOf reads the a=msid of the m-section with that mid.
export function msidOf(sdp, mid) {
  for (const s of sections(sdp)) {
    if (!new RegExp(`\\r\\na=mid:${escapeRe(mid)}(\\r\\n|$)`).test(s)) continue;
    const m = s.match(/\r\na=msid:(\S+) (\S+)/);
    return m ? { stream: m[1], track: m[2] } : null;
  }
  return null;
}

// markScreen prefixes the screen share's msid track id in the SDP sent to
// the server (never set locally), so that every receiver knows the track is
// a screen: the server names tracks by their msid (docs/signaling.md).
export function markScreen(sdp, mid) {
  return sections(sdp).map((s) => {
    if (!new RegExp(`\\r\\na=mid:${escapeRe(mid)}(\\r\\n|$)`).test(s)) return s;
    return s.replace(/((?:\r\na=|\r\na=ssrc:\d+ )msid:\S+ )(?!screen-)(\S+)/g, `$1${SCREEN_PREFIX}$2`);
  }).join('\r\n');
}

function escapeRe(s) { return String(s).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

// onlyLoopback reports whether every candidate of the server's SDP is a
// loopback address (a server started with --dev on 127.0.0.1).
export function onlyLoopback(sdp) {
  const addrs = [...sdp.matchAll(/a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ/g)].map((m) => m[1]);
  return addrs.length > 0 && addrs.every((a) => a.startsWith('127.') || a === '::1');
}

export { scriptTransform };
