// Orville web client. Opened as https://HOST/?token=TOKEN#key=SECRET: joins
// the call with the token over wss://HOST/v1/rtc (docs/signaling.md: a
// publish transport the client offers, a subscribe transport the server
// offers) and end-to-end encrypts media with the secret from the URL
// fragment, which the browser never sends to the server.
import * as ui from './ui.js';
import { runVectors, senderBaseKeyHex, interop } from './selftest.js';
import { MIN_SECRET } from './keys.js';

const scriptTransform = typeof RTCRtpScriptTransform === 'function';

const call = {
  state: 'idle',
  transport: '',
  e2ee: false,
  participantId: '',
  ws: null,
  pub: null,
  sub: null,
  local: null,
  worker: null,
  receivers: new Map(), // RTCRtpReceiver → {id, kind, participant, trackId}
  offers: Promise.resolve(), // subscribe offers are answered in order
  nextId: 0,
  keyFrameOnSwitch: '', // how the last key switch got its key frame
};

function setState(s, detail) { call.state = s; ui.setState(s, detail); }

// The worker answers requests carrying a seq number.
const pending = new Map();
let seq = 0;
function ask(msg) {
  return new Promise((resolve, reject) => {
    const n = ++seq;
    pending.set(n, { resolve, reject });
    call.worker.postMessage({ ...msg, seq: n });
  });
}

function startWorker(secret) {
  call.worker = new Worker('worker.js', { type: 'module' });
  call.worker.onmessage = (ev) => {
    const m = ev.data;
    const p = pending.get(m.seq);
    if (!p) return;
    pending.delete(m.seq);
    if (m.type === 'error') p.reject(new Error(m.message)); else p.resolve(m);
    if (m.type === 'keys') ui.setE2EE(true, m.kid);
  };
  return ask({ type: 'init', secret });
}

// attachTransform routes a sender's or receiver's encoded frames through the
// worker: RTCRtpScriptTransform where available, else createEncodedStreams.
function attachTransform(senderOrReceiver, options) {
  if (!call.worker) return;
  if (scriptTransform) {
    senderOrReceiver.transform = new RTCRtpScriptTransform(call.worker, options);
    return;
  }
  const { readable, writable } = senderOrReceiver.createEncodedStreams();
  call.worker.postMessage({ type: 'streams', readable, writable, options }, [readable, writable]);
}

function send(m) {
  if (call.ws && call.ws.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify(m));
}

function newPC(iceServers) {
  const cfg = { iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };
  if (call.worker && !scriptTransform) cfg.encodedInsertableStreams = true;
  return new RTCPeerConnection(cfg);
}

// trickle sends our candidates once the description they belong to went out.
function trickle(pc, transport) {
  const early = [];
  let sent = false;
  pc.onicecandidate = (ev) => {
    if (!ev.candidate) return;
    const c = ev.candidate.toJSON();
    if (sent) send({ type: 'candidate', transport, candidate: c }); else early.push(c);
  };
  return () => { sent = true; early.splice(0).forEach((c) => send({ type: 'candidate', transport, candidate: c })); };
}

function preferCodec(transceiver, kind, mime) {
  const caps = RTCRtpReceiver.getCapabilities(kind);
  const codecs = caps ? caps.codecs.filter((c) => c.mimeType.toLowerCase() === mime) : [];
  if (codecs.length && transceiver.setCodecPreferences) transceiver.setCodecPreferences(codecs);
}

async function publish(iceServers) {
  call.pub = newPC(iceServers);
  const sent = trickle(call.pub, 'publish');
  call.pub.onconnectionstatechange = () => {
    const s = call.pub.connectionState;
    if (s === 'connected') setState('connected');
    if (s === 'failed') setState('failed', 'media connection failed');
  };
  for (const track of call.local.getTracks()) {
    const tr = call.pub.addTransceiver(track, { direction: 'sendonly', streams: [call.local] });
    preferCodec(tr, track.kind, track.kind === 'video' ? 'video/vp8' : 'audio/opus');
    attachTransform(tr.sender, { op: 'encrypt', kind: track.kind, id: `send-${track.kind}` });
    if (track.kind === 'video') {
      const p = tr.sender.getParameters();
      p.degradationPreference = 'maintain-resolution';
      tr.sender.setParameters(p).catch(() => {});
    }
  }
  const offer = await call.pub.createOffer();
  await call.pub.setLocalDescription(offer);
  send({ type: 'offer', transport: 'publish', sdp: offer.sdp });
  sent();
}

function subscribe(iceServers) {
  call.sub = newPC(iceServers);
  call.subSent = trickle(call.sub, 'subscribe');
  call.sub.ontrack = (ev) => {
    // The msid stream id is the publisher's participant id (docs/signaling.md).
    const participant = ev.streams[0] ? ev.streams[0].id : 'unknown';
    const id = `recv-${++call.nextId}`;
    // The track id is the publisher's own (msid), which `mute` names.
    call.receivers.set(ev.receiver, { id, kind: ev.track.kind, participant, trackId: ev.track.id });
    try {
      attachTransform(ev.receiver, { op: 'decrypt', kind: ev.track.kind, participant, id });
    } catch (err) {
      console.warn('no frame transform for a reused receiver', err);
    }
    ui.addRemoteTrack(participant, ev.track);
    ev.track.onended = () => call.receivers.delete(ev.receiver);
  };
}

function answerSubscribe(sdp) {
  call.offers = call.offers.then(async () => {
    await call.sub.setRemoteDescription({ type: 'offer', sdp });
    const answer = await call.sub.createAnswer();
    await call.sub.setLocalDescription(answer);
    send({ type: 'answer', transport: 'subscribe', sdp: answer.sdp });
    call.subSent();
  }).catch((err) => ui.showMessage(`subscribe: ${err}`));
}

// keySwitch ratchets on a join and starts a new generation on a leave
// (DESIGN.md "End-to-end encryption"), then makes the camera's encoder send
// a key frame: through the worker's RTCRtpScriptTransformer.generateKeyFrame
// where the browser has it, else by pausing and resuming the video encoding
// for one frame (a resumed encoding starts with a key frame).
function keySwitch(type) {
  if (!call.worker) return;
  ask({ type }).then(async (m) => {
    call.keyFrameOnSwitch = m.keyFrame ? 'generateKeyFrame' : await reactivateVideo();
  }).catch((err) => console.warn('key switch', err));
}

async function reactivateVideo() {
  const sender = call.pub?.getSenders().find((s) => s.track && s.track.kind === 'video');
  if (!sender) return '';
  const p = sender.getParameters();
  if (!p.encodings || !p.encodings.length) return '';
  p.encodings[0].active = false;
  await sender.setParameters(p);
  const q = sender.getParameters();
  q.encodings[0].active = true;
  await sender.setParameters(q);
  return 'reactivate';
}

async function onMessage(m) {
  switch (m.type) {
    case 'joined':
      call.participantId = m.participantId;
      setState('joining', 'connecting media');
      subscribe(m.iceServers || []);
      await publish(m.iceServers || []);
      break;
    case 'answer':
      await call.pub.setRemoteDescription({ type: 'answer', sdp: m.sdp });
      break;
    case 'offer':
      answerSubscribe(m.sdp);
      break;
    case 'candidate': {
      const pc = m.transport === 'publish' ? call.pub : call.sub;
      pc?.addIceCandidate(m.candidate).catch(() => {});
      break;
    }
    case 'participantJoined':
      keySwitch('ratchet');
      break;
    case 'participantLeft':
      ui.removeParticipant(m.participantId);
      keySwitch('newGeneration');
      break;
    case 'mute':
      for (const [, r] of call.receivers) {
        if (r.participant === m.participantId && r.trackId === m.trackId) ui.setRemoteMuted(m.participantId, r.kind, m.muted);
      }
      break;
    case 'error':
      ui.showMessage(`server: ${m.code}: ${m.message}`);
      break;
    case 'ended':
      hangUp('ended', m.reason);
      break;
    case 'iceServers': // fresh TURN credentials, for the next ICE gathering
      for (const pc of [call.pub, call.sub]) {
        try { pc?.setConfiguration({ ...pc.getConfiguration(), iceServers: m.iceServers || [] }); } catch (e) { console.warn('iceServers', e); }
      }
      break;
  }
}

function hangUp(state, detail) {
  if (call.state === 'left' || call.state === 'ended') return;
  send({ type: 'leave' });
  call.ws?.close();
  call.pub?.close();
  call.sub?.close();
  call.local?.getTracks().forEach((t) => t.stop());
  ui.removeAllTiles();
  ui.hideControls();
  setState(state, detail);
}

function toggle(kind) {
  const track = call.local.getTracks().find((t) => t.kind === kind);
  track.enabled = !track.enabled;
  send({ type: 'mute', trackId: track.id, muted: !track.enabled });
  return !track.enabled;
}

// transportInUse names the publish transport's selected path: udp, tcp, or
// turn/<protocol> when our side is a relay candidate.
async function transportInUse() {
  if (!call.pub) return '';
  const stats = await call.pub.getStats();
  let pair;
  stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
  const local = pair && stats.get(pair.localCandidateId);
  if (!local) return '';
  if (local.candidateType === 'relay') return `turn/${local.relayProtocol || local.protocol}`;
  return local.protocol;
}

// stats is window.orville.stats(): a promise of
// {state, transport, e2ee, participantId, tracks: [{kind, participant,
// framesDecoded, packetsReceived, decryptFailures, framesDecrypted}]}.
async function stats() {
  const w = call.worker ? await ask({ type: 'stats' }) : { counters: {} };
  const tracks = [];
  for (const [receiver, r] of call.receivers) {
    const c = w.counters[r.id] || { failures: 0, done: 0 };
    const t = { kind: r.kind, participant: r.participant, framesDecoded: 0, packetsReceived: 0,
      framesReceived: 0, decryptFailures: c.failures, framesDecrypted: c.done };
    (await receiver.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      t.framesDecoded = s.framesDecoded || 0;
      t.packetsReceived = s.packetsReceived || 0;
      t.framesReceived = s.framesReceived || 0;
    });
    tracks.push(t);
  }
  const local = call.local ? call.local.getVideoTracks()[0]?.getSettings() : null;
  return { state: call.state, transport: call.transport, e2ee: call.e2ee, participantId: call.participantId,
    scriptTransform, keySwitches: w.switches || 0, keyFrameOnSwitch: call.keyFrameOnSwitch || '',
    camera: local ? { width: local.width, height: local.height } : null, tracks };
}

async function main() {
  const token = new URLSearchParams(location.search).get('token');
  const secret = new URLSearchParams(location.hash.slice(1)).get('key');
  ui.setE2EE(false);
  if (!token) {
    ui.showMessage('Open this page with the link you were given: https://HOST/?token=TOKEN#key=SECRET');
    return;
  }
  if (secret !== null) {
    if (new TextEncoder().encode(secret).length < MIN_SECRET) {
      ui.setE2EE(false, '', '#key= too short');
      setState('error', `the #key= secret must be at least ${MIN_SECRET} bytes`);
      return;
    }
    await startWorker(secret);
    call.e2ee = true;
  }
  setState('joining', 'camera and microphone');
  call.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  ui.setLocalStream(call.local);
  ui.bindControls({ toggleAudio: () => toggle('audio'), toggleVideo: () => toggle('video'), leave: () => hangUp('left') });
  setState('joining', 'signaling');
  call.ws = new WebSocket(`wss://${location.host}/v1/rtc`);
  call.ws.onopen = () => send({ type: 'join', v: 1, token });
  call.ws.onmessage = (ev) => onMessage(JSON.parse(ev.data)).catch((err) => ui.showMessage(String(err)));
  call.ws.onclose = () => { if (call.state === 'joining' || call.state === 'connected') setState('disconnected'); };
  setInterval(async () => {
    call.transport = await transportInUse().catch(() => '');
    ui.setTransport(call.transport);
  }, 1000);
}

window.orville = { stats, runVectors, senderBaseKeyHex, interop, leave: () => hangUp('left') };
main().catch((err) => setState('error', String(err)));
