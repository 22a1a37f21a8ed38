// Orville web client. Opened as https://HOST/?token=TOKEN#key=SECRET: joins
// the call with the token over wss://HOST/v1/rtc (docs/signaling.md) and
// end-to-end encrypts media with the secret from the URL fragment, which the
// browser never sends to the server. signal.js keeps the session across
// dropped sockets, media.js the transports across network changes, ui.js
// draws the page, speakers.js finds who speaks, messages.js says what went
// wrong in plain words.
import * as ui from './ui.js';
import { Signaling } from './signal.js';
import { Media, scriptTransform, SCREEN_PREFIX } from './media.js';
import { Speakers } from './speakers.js';
import { ERRORS, errorFor, firewallText, loopbackText } from './messages.js';
import { runVectors, senderBaseKeyHex, interop } from './selftest.js';
import { layerStats } from './simulcast.js';
import { MIN_SECRET } from './keys.js';

const NO_MEDIA_AFTER_MS = 10000; // not connected this long after joining: say why
const LOOPBACK_AFTER_MS = 4000;
const firefox = /firefox/i.test(navigator.userAgent);

const call = {
  state: 'idle',
  token: '',
  secret: null,
  participantId: '',
  name: '',
  network: null,
  sig: null,
  media: null,
  local: null,
  worker: null,
  e2ee: false,
  roster: new Map(), // id → {id, name, tracks: Map trackId → {kind, muted}}
  failing: new Set(), // participants whose media does not decrypt
  joinedAt: 0,
  keyFrameOnSwitch: '',
  speakers: null,
  transport: '',
};

function setState(state, text) { call.state = state; ui.setState(state, text); }

// The E2EE worker answers requests carrying a seq number; it also reports
// participants whose frames stop (or start again) to decrypt.
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
    if (m.type === 'decrypt') { decryptState(m.participant, m.failing); return; }
    const p = pending.get(m.seq);
    if (!p) return;
    pending.delete(m.seq);
    if (m.type === 'error') p.reject(new Error(m.message)); else p.resolve(m);
  };
  return ask({ type: 'init', secret });
}

function nameOf(id) { return call.roster.get(id)?.name || id; }

function decryptState(participant, failing) {
  if (failing) call.failing.add(participant); else call.failing.delete(participant);
  ui.setDecrypt(participant, failing);
  updateBadge();
}

function updateBadge() {
  if (!call.e2ee) return;
  if (call.failing.size === 0) { ui.setE2EE('on'); return; }
  const who = [...call.failing].map(nameOf).join(', ');
  ui.setE2EE('mismatch', `media from ${who} can’t be decrypted (the keys don’t match)`);
}

// keySwitch ratchets on a join and starts a new generation on a leave
// (DESIGN.md "End-to-end encryption"), then makes the camera's encoder send
// a key frame: through the worker's RTCRtpScriptTransformer.generateKeyFrame
// where the browser has it, else by pausing the encoding for one frame.
function keySwitch(type) {
  if (!call.worker) return;
  ask({ type }).then(async (m) => {
    call.keyFrameOnSwitch = m.keyFrame ? 'generateKeyFrame' : await reactivateVideo();
  }).catch((err) => console.warn('key switch', err));
}

async function reactivateVideo() {
  const sender = call.media?.senders.video?.sender;
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

// Roster: who is in the call, with their tracks' mute state.

function addParticipant(p) {
  const tracks = new Map((p.tracks || []).map((t) => [t.id, { kind: t.kind, muted: t.muted }]));
  call.roster.set(p.id, { id: p.id, name: p.name || '', tracks });
  ui.tile(p.id);
  ui.setName(p.id, p.name || p.id);
  showTracks(p.id);
}

// showTracks sets a participant's indicators from its published tracks.
function showTracks(id) {
  const p = call.roster.get(id);
  if (!p) return;
  const camera = [...p.tracks.entries()].filter(([tid]) => !tid.startsWith(SCREEN_PREFIX));
  const audio = camera.find(([, t]) => t.kind === 'audio');
  const video = camera.find(([, t]) => t.kind === 'video');
  ui.setMuted(id, 'audio', !audio || audio[1].muted);
  ui.setMuted(id, 'video', !video || video[1].muted);
  if (![...p.tracks.keys()].some((tid) => tid.startsWith(SCREEN_PREFIX))) ui.removeTile(id, 'screen');
  refreshPeople();
}

function refreshPeople() {
  const self = { id: call.participantId, name: call.name, self: true, audioMuted: isMuted('audio'), videoMuted: isMuted('video') };
  const others = [...call.roster.values()].map((p) => {
    const t = [...p.tracks.entries()].filter(([tid]) => !tid.startsWith(SCREEN_PREFIX)).map(([, x]) => x);
    const a = t.find((x) => x.kind === 'audio'), v = t.find((x) => x.kind === 'video');
    return { id: p.id, name: p.name, audioMuted: !a || a.muted, videoMuted: !v || v.muted };
  }).sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
  ui.setPeople([self, ...others]);
  ui.setAlone(['connecting', 'connected', 'reconnecting'].includes(call.state) && call.roster.size === 0);
}

function isMuted(kind) {
  const t = call.local?.getTracks().find((x) => x.kind === kind);
  return !t || !t.enabled;
}

// Signaling events.

const handlers = {
  joined(m) {
    teardownMedia();
    call.participantId = m.participantId;
    call.name = m.name || '';
    call.network = m.network || null;
    call.joinedAt = Date.now();
    call.roster.clear();
    ui.removeAllTiles();
    setState('connecting', 'Connecting…');
    showSelf();
    for (const p of m.participants || []) addParticipant(p);
    refreshPeople();
    ui.banner('');
    startMedia(m.iceServers || []);
  },
  resumed(m) {
    ui.banner('');
    if (m.iceServers) call.media?.setICEServers(m.iceServers);
    setState(call.media?.connected() ? 'connected' : 'connecting', call.media?.connected() ? 'Connected' : 'Connecting…');
    call.media?.afterResume((kind) => isMuted(kind));
  },
  reconnecting() {
    setState('reconnecting', 'Reconnecting…');
    ui.banner('Reconnecting…', 'reconnecting');
  },
  rejoining() {
    setState('reconnecting', 'Rejoining…');
  },
  message(m, sock) {
    if (call.media?.handle(m, sock)) return;
    onCallMessage(m);
  },
  failed(code) { finish(code); },
  ended(reason) { finish(reason); },
};

function onCallMessage(m) {
  switch (m.type) {
    case 'participantJoined':
      if (m.participant.id === call.participantId) return;
      addParticipant(m.participant);
      ui.notice(`${nameOf(m.participant.id)} joined`);
      keySwitch('ratchet');
      break;
    case 'participantLeft': {
      if (!call.roster.has(m.participantId)) return;
      const name = nameOf(m.participantId);
      call.roster.delete(m.participantId);
      call.speakers?.remove(m.participantId);
      decryptState(m.participantId, false);
      ui.removeParticipant(m.participantId);
      refreshPeople();
      ui.notice(`${name} left`);
      keySwitch('newGeneration');
      break;
    }
    case 'trackPublished':
      call.roster.get(m.participantId)?.tracks.set(m.track.id, { kind: m.track.kind, muted: m.track.muted });
      showTracks(m.participantId);
      break;
    case 'trackUnpublished':
      call.roster.get(m.participantId)?.tracks.delete(m.trackId);
      showTracks(m.participantId);
      break;
    case 'mute': {
      const t = call.roster.get(m.participantId)?.tracks.get(m.trackId);
      if (t) t.muted = m.muted;
      showTracks(m.participantId);
      break;
    }
    case 'speakers':
      call.speakers?.fromServer(m);
      break;
    case 'error':
      console.warn(`server: ${m.code}: ${m.message}`);
      break;
    case 'iceServers': // fresh TURN credentials, for the next ICE gathering
      call.media?.setICEServers(m.iceServers || []);
      break;
  }
}

function showSelf() {
  ui.tile(call.participantId || 'self', 'camera', true);
  ui.setName(call.participantId || 'self', call.name, true);
  const v = call.local?.getVideoTracks()[0];
  if (v) ui.attachTrack(call.participantId, 'camera', v, true);
  ui.setMuted(call.participantId, 'audio', isMuted('audio'));
  ui.setMuted(call.participantId, 'video', isMuted('video'));
  const a = call.local?.getAudioTracks()[0];
  if (a) call.speakers?.add(call.participantId, a);
}

function startMedia(iceServers) {
  call.media = new Media({
    sig: call.sig, worker: call.worker, iceServers,
    onTrack(participant, source, track) {
      if (!call.roster.has(participant)) return;
      ui.attachTrack(participant, source, track);
      ui.setName(participant, nameOf(participant));
      if (track.kind === 'audio') call.speakers?.add(participant, track);
      showTracks(participant);
      if (call.failing.has(participant)) ui.setDecrypt(participant, true);
    },
    onState: mediaState,
  });
  call.media.start(call.local || new MediaStream()).catch((err) => console.warn('publish', err));
  const started = call.joinedAt;
  setTimeout(() => {
    if (call.joinedAt === started && call.media && !call.media.connected() && loopbackProblem()) {
      ui.banner(loopbackText(firefox), 'loopback');
    }
  }, LOOPBACK_AFTER_MS);
  setTimeout(() => {
    if (call.joinedAt === started && call.media && !call.media.connected() && call.state === 'connecting') {
      ui.banner(loopbackProblem() ? loopbackText(firefox) : firewallText(call.network), 'network');
    }
  }, NO_MEDIA_AFTER_MS);
}

// loopbackProblem: the server offers only loopback candidates, which
// Firefox's ICE ignores (a --dev server on 127.0.0.1).
function loopbackProblem() { return firefox && Boolean(call.media?.loopbackOnly); }

function mediaState() {
  const m = call.media;
  if (!m || call.state === 'reconnecting') return;
  if (m.connected()) {
    setState('connected', 'Connected');
    if (['network', 'loopback'].includes(document.getElementById('banner').dataset.kind)) ui.banner('');
    return;
  }
  const failed = m.pub.connectionState === 'failed' || m.sub.connectionState === 'failed';
  if (call.state === 'connected') setState('connecting', 'Reconnecting media…');
  if (failed && !m.everConnected.publish) {
    ui.banner(loopbackProblem() ? loopbackText(firefox) : firewallText(call.network), 'network');
  }
}

function teardownMedia() {
  call.media?.close();
  call.media = null;
}

// finish ends the call on this page with the message for code.
function finish(code) {
  if (['left', 'ended', 'error'].includes(call.state)) return;
  teardownMedia();
  call.sig?.leave();
  call.local?.getTracks().forEach((t) => t.stop());
  call.local = null;
  call.speakers?.stop();
  call.roster.clear();
  call.failing.clear();
  ui.removeAllTiles();
  ui.setAlone(false);
  ui.showControls(false);
  const msg = code === 'left' ? ERRORS.left : errorFor(code);
  setState(code === 'left' ? 'left' : (ERRORS[code] && !['unreachable', 'connection_lost', 'no_devices'].includes(code) ? 'ended' : 'error'), msg.title);
  ui.showScreen(code, msg, msg.rejoin && call.token ? () => join() : null);
}

// Local media and controls.

async function localMedia() {
  const video = { width: 640, height: 480 };
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video });
  } catch {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true }); // no camera
    } catch {
      return null;
    }
  }
}

function toggle(kind) {
  const track = call.local?.getTracks().find((t) => t.kind === kind);
  if (!track) return true;
  track.enabled = !track.enabled;
  call.media?.muteMessage(kind, !track.enabled);
  ui.setMuted(call.participantId, kind, !track.enabled);
  refreshPeople();
  return !track.enabled;
}

async function toggleShare() {
  if (call.media?.screen?.track) {
    await call.media.stopShare();
    ui.removeTile(call.participantId, 'screen');
    return false;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch {
    return false; // the user said no
  }
  const track = stream.getVideoTracks()[0];
  track.onended = () => { toggleShare().then((on) => ui.setShareState(on)); };
  ui.attachTrack(call.participantId, 'screen', track, true);
  ui.setName(call.participantId, call.name, true);
  await call.media.startShare(track, stream);
  return true;
}

async function openDevices() {
  const dlg = document.getElementById('devices');
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  for (const [kind, id] of [['audioinput', 'mic-select'], ['videoinput', 'cam-select']]) {
    const sel = document.getElementById(id);
    const current = call.local?.getTracks().find((t) => t.kind === kind.slice(0, 5))?.getSettings().deviceId;
    sel.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${kind === 'audioinput' ? 'Microphone' : 'Camera'} ${i + 1}`;
      o.selected = d.deviceId === current;
      return o;
    }));
    sel.disabled = sel.options.length === 0;
    sel.onchange = () => useDevice(kind === 'audioinput' ? 'audio' : 'video', sel.value);
  }
  dlg.showModal();
}

async function useDevice(kind, deviceId) {
  const err = document.getElementById('devices-error');
  err.hidden = true;
  try {
    const c = kind === 'audio' ? { audio: { deviceId: { exact: deviceId } } }
      : { video: { deviceId: { exact: deviceId }, width: 640, height: 480 } };
    const track = (await navigator.mediaDevices.getUserMedia(c)).getTracks()[0];
    const old = call.local.getTracks().find((t) => t.kind === kind);
    if (old) { track.enabled = old.enabled; call.local.removeTrack(old); old.stop(); }
    call.local.addTrack(track);
    await call.media?.replaceTrack(kind, track);
    if (kind === 'video') ui.attachTrack(call.participantId, 'camera', track, true);
    else call.speakers?.add(call.participantId, track);
  } catch (e) {
    err.textContent = `That device cannot be used: ${e.message || e}`;
    err.hidden = false;
  }
}

let bound = false;

async function join() {
  ui.hideScreen();
  call.roster.clear();
  call.failing.clear();
  if (call.e2ee) ui.setE2EE('on');
  setState('joining', 'Starting camera and microphone…');
  call.local = await localMedia();
  if (!call.local) { finish('no_devices'); return; }
  call.speakers = new Speakers((speaking, dominant) => ui.setSpeaking(speaking, dominant));
  call.speakers.start();
  if (!bound) {
    bound = true;
    ui.bindControls({ toggleAudio: () => toggle('audio'), toggleVideo: () => toggle('video'),
      toggleShare, openDevices, leave: () => finish('left') });
  }
  ui.setShareAvailable(Boolean(navigator.mediaDevices.getDisplayMedia));
  ui.showControls(true);
  for (const b of ['mic', 'cam']) {
    const el = document.getElementById(b);
    el.dataset.muted = 'no';
    el.setAttribute('aria-pressed', 'false');
  }
  ui.setShareState(false);
  setState('joining', 'Joining…');
  call.sig = new Signaling(`wss://${location.host}/v1/rtc`, handlers);
  call.sig.join(call.token);
}

// stats is window.orville.stats() (tests and diagnostics).
async function stats() {
  const w = call.worker ? await ask({ type: 'stats' }) : { counters: {} };
  const tracks = [];
  for (const [receiver, r] of call.media?.receivers || []) {
    const c = w.counters[r.id] || { failures: 0, done: 0 };
    const t = { kind: r.kind, participant: r.participant, source: r.source, framesDecoded: 0, packetsReceived: 0,
      framesReceived: 0, decryptFailures: c.failures, framesDecrypted: c.done };
    (await receiver.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      t.framesDecoded = s.framesDecoded || 0;
      t.packetsReceived = s.packetsReceived || 0;
      t.framesReceived = s.framesReceived || 0;
      Object.assign(t, { frameHeight: s.frameHeight || 0, keyFramesDecoded: s.keyFramesDecoded || 0,
        freezeCount: s.freezeCount || 0, pliCount: s.pliCount || 0 }); // simulcast tests
    });
    tracks.push(t);
  }
  const local = call.local ? call.local.getVideoTracks()[0]?.getSettings() : null;
  return { state: call.state, transport: call.transport, e2ee: call.e2ee, participantId: call.participantId,
    name: call.name, participants: [...call.roster.values()].map((p) => ({ id: p.id, name: p.name })),
    decryptFailing: [...call.failing], iceRestarts: call.media?.iceRestarts || 0, resumes: call.sig?.resumes || 0,
    loopbackOnly: call.media?.loopbackOnly || false, scriptTransform, keySwitches: w.switches || 0,
    keyFrameOnSwitch: call.keyFrameOnSwitch || '', speakerSource: call.speakers?.source || '',
    levels: call.speakers?.levels() || {}, camera: local ? { width: local.width, height: local.height } : null, tracks };
}

async function main() {
  const token = new URLSearchParams(location.search).get('token');
  const secret = new URLSearchParams(location.hash.slice(1)).get('key');
  ui.setE2EE('off', 'no key in the link');
  if (!token) { finish('no_link'); return; }
  call.token = token;
  if (typeof RTCPeerConnection !== 'function') { finish('unsupported'); return; }
  if (secret !== null) {
    if (new TextEncoder().encode(secret).length < MIN_SECRET) {
      ui.setE2EE('off', 'the key in the link is too short');
      finish('key_too_short');
      return;
    }
    if (!scriptTransform && !('createEncodedStreams' in RTCRtpSender.prototype)) { finish('unsupported'); return; }
    await startWorker(secret);
    call.e2ee = true;
    ui.setE2EE('on');
  }
  setInterval(async () => {
    call.transport = await call.media?.transportInUse().catch(() => '') || '';
    ui.setTransport(call.transport);
  }, 1000);
  await join();
}

window.orville = { stats, runVectors, senderBaseKeyHex, interop, leave: () => finish('left'),
  subscribe: (video) => call.sig?.send({ type: 'subscription', video }), // which videos, how large (tests)
  layers: () => layerStats(call.media?.senders.video?.sender),
  rejoin: () => join(),
  localTrack: (kind) => call.local?.getTracks().find((t) => t.kind === kind) };
main().catch((err) => { console.error(err); finish('unreachable'); });
