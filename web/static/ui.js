// The page: status badges, the tile grid (one tile per participant, yours
// included, plus a spotlight for a screen share), indicators, the people
// list, notices, banners and the full-page screens (left, errors).
// Display names are text, never markup: only textContent is used.
import { icon, fillIcons } from './icons.js';

const $ = (id) => document.getElementById(id);

export function setState(state, text) {
  const el = $('state');
  el.dataset.state = state;
  el.textContent = text;
}

// setE2EE: mode 'on' (every participant's media decrypts), 'off' (no key in
// the link) or 'mismatch' (someone's media does not decrypt).
export function setE2EE(mode, detail = '') {
  const el = $('e2ee');
  el.dataset.on = { on: 'yes', off: 'no', mismatch: 'mismatch' }[mode];
  el.textContent = {
    on: '✓ End-to-end encrypted',
    off: `⚠ Not end-to-end encrypted${detail ? ` (${detail})` : ''}`,
    mismatch: `⚠ Not secure: ${detail}`,
  }[mode];
  el.title = mode === 'on' ? 'Audio and video are encrypted with SFrame (RFC 9605) by the participants; the server cannot read them.'
    : mode === 'off' ? 'Media is protected in transit only (DTLS-SRTP), not end to end.'
      : 'Some media cannot be decrypted with the key in your link: the keys do not match.';
}

export function setTransport(t) {
  $('transport').textContent = t ? `via ${t}` : '';
  $('transport').dataset.transport = t || '';
}

// banner shows a persistent line under the header ('' hides it).
export function banner(text, kind = '') {
  const el = $('banner');
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = !text;
}

// notice shows a short-lived message (joins, leaves).
export function notice(text) {
  const el = document.createElement('p');
  el.className = 'notice';
  el.textContent = text;
  $('notices').append(el);
  setTimeout(() => el.remove(), 6000);
}

// showScreen replaces the call with a message (left, ended, errors);
// onRejoin, if given, gets a Rejoin button, which takes the focus.
export function showScreen(code, msg, onRejoin) {
  $('screen').dataset.code = code;
  $('screen-title').textContent = msg.title;
  $('screen-text').textContent = msg.text;
  $('screen-text').hidden = !msg.text;
  const b = $('rejoin');
  b.hidden = !onRejoin;
  b.onclick = onRejoin || null;
  $('screen').hidden = false;
  $('stage').hidden = true;
  $('controls').hidden = true;
  $('people').hidden = true;
  $('people-toggle').hidden = true;
  banner('');
  if (onRejoin) b.focus();
}

export function hideScreen() {
  $('screen').hidden = true;
  $('stage').hidden = false;
}

export function showControls(on) {
  $('controls').hidden = !on;
  $('people-toggle').hidden = !on;
}

// Tiles.

function initials(name) {
  const words = name.trim().split(/[\s._@-]+/).filter(Boolean);
  const first = (w) => Array.from(w)[0] || '';
  return ((first(words[0] || '?') + (words.length > 1 ? first(words[words.length - 1]) : ''))).toUpperCase();
}

function key(id, source) { return `.tile[data-participant="${CSS.escape(id)}"][data-source="${source}"]`; }

export function findTile(id, source = 'camera') { return document.querySelector(key(id, source)); }

// tile returns the tile of a participant's camera (or screen), making it.
export function tile(id, source = 'camera', self = false) {
  let t = findTile(id, source);
  if (t) return t;
  t = document.createElement('figure');
  t.className = self ? 'tile self' : 'tile';
  t.dataset.participant = id;
  t.dataset.source = source;
  t.dataset.hasVideo = 'no';
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // sound plays through the audio element
  const avatar = document.createElement('div');
  avatar.className = 'avatar';
  avatar.setAttribute('aria-hidden', 'true');
  const caption = document.createElement('figcaption');
  const name = document.createElement('span');
  name.className = 'name';
  const mic = document.createElement('span');
  mic.className = 'mic-off';
  mic.setAttribute('role', 'img');
  mic.setAttribute('aria-label', 'microphone off');
  mic.append(icon('mic', true));
  const cam = document.createElement('span');
  cam.className = 'cam-off';
  cam.setAttribute('role', 'img');
  cam.setAttribute('aria-label', 'camera off');
  cam.append(icon('cam', true));
  caption.append(name, mic, cam);
  const problem = document.createElement('p');
  problem.className = 'problem';
  problem.setAttribute('role', 'status');
  t.append(video, avatar, caption, problem);
  if (!self && source === 'camera') {
    const audio = document.createElement('audio');
    audio.autoplay = true;
    t.append(audio);
  }
  (source === 'screen' ? $('spotlight') : $('tiles')).append(t);
  setName(id, id, self);
  layout();
  return t;
}

// setName captions every tile of a participant and sets its initials.
export function setName(id, name, self = false) {
  for (const t of document.querySelectorAll(`.tile[data-participant="${CSS.escape(id)}"]`)) {
    let caption = self ? (name && name !== id ? `You (${name})` : 'You') : name;
    if (t.dataset.source === 'screen') caption = self ? 'Your screen' : `${name}'s screen`;
    t.querySelector('.name').textContent = caption;
    t.querySelector('.avatar').textContent = initials(name || id);
    t.dataset.name = name;
    t.setAttribute('aria-label', caption);
  }
}

// attachTrack shows a track in the participant's tile for its source.
export function attachTrack(id, source, track, self = false) {
  const t = tile(id, source, self);
  const el = track.kind === 'video' ? t.querySelector('video') : t.querySelector('audio');
  if (!el) return;
  const stream = new MediaStream([track]);
  el.srcObject = stream;
  el.play?.().catch(() => { /* autoplay may wait for a click */ });
  if (track.kind === 'video') t.dataset.hasVideo = 'yes';
  if (self) t.dataset.mirror = source === 'camera' ? 'yes' : 'no';
}

export function removeTile(id, source) {
  const t = findTile(id, source);
  if (!t) return;
  t.remove();
  updateSpotlight();
  layout();
}

export function removeParticipant(id) {
  document.querySelectorAll(`.tile[data-participant="${CSS.escape(id)}"]`).forEach((t) => t.remove());
  updateSpotlight();
  layout();
}

export function removeAllTiles() {
  document.querySelectorAll('.tile').forEach((t) => t.remove());
  updateSpotlight();
}

export function setMuted(id, kind, muted) {
  const t = findTile(id);
  if (t) t.dataset[kind === 'audio' ? 'audioMuted' : 'videoMuted'] = muted ? 'yes' : 'no';
}

// setDecrypt marks a participant whose media does not decrypt.
export function setDecrypt(id, failing) {
  for (const t of document.querySelectorAll(`.tile[data-participant="${CSS.escape(id)}"]`)) {
    t.dataset.decrypt = failing ? 'failing' : 'ok';
    const who = t.dataset.name || id;
    t.querySelector('.problem').textContent = failing
      ? `Can’t decrypt ${who}’s audio and video: the key in your call link does not match theirs.` : '';
  }
}

// setSpeaking highlights who speaks; the dominant speaker most.
export function setSpeaking(speaking, dominant) {
  for (const t of document.querySelectorAll('.tile[data-source="camera"]')) {
    const id = t.dataset.participant;
    t.dataset.speaking = speaking.has(id) ? 'yes' : 'no';
    t.dataset.dominant = id === dominant ? 'yes' : 'no';
  }
}

function updateSpotlight() {
  $('spotlight').hidden = !$('spotlight').querySelector('.tile');
  $('stage').dataset.layout = $('spotlight').hidden ? 'grid' : 'spotlight';
}

// layout sizes the grid so that n tiles of 16:9 fill #tiles as much as
// they can: every column count is tried, the largest tile wins.
export function layout() {
  updateSpotlight();
  const el = $('tiles');
  const tiles = el.querySelectorAll('.tile');
  const n = tiles.length;
  if (!n) return;
  const gap = 8;
  const W = el.clientWidth - 2 * gap;
  const H = el.clientHeight - 2 * gap;
  let best = { w: 0, cols: 1 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const w = Math.min((W - gap * (cols - 1)) / cols, ((H - gap * (rows - 1)) / rows) * 16 / 9);
    if (w > best.w) best = { w, cols };
  }
  const w = Math.max(Math.floor(best.w), 80);
  el.style.setProperty('grid-template-columns', `repeat(${best.cols}, ${w}px)`);
  el.style.setProperty('grid-auto-rows', `${Math.floor(w * 9 / 16)}px`);
  el.dataset.cols = String(best.cols);
}

// People list and count.
export function setPeople(list) {
  $('count').textContent = String(list.length);
  $('people-toggle').setAttribute('aria-label', `People in the call: ${list.length}`);
  const ul = $('people-list');
  ul.replaceChildren(...list.map((p) => {
    const li = document.createElement('li');
    li.dataset.participant = p.id;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = p.self ? `${p.name || p.id} (you)` : (p.name || p.id);
    const state = document.createElement('span');
    state.className = 'state';
    state.textContent = [p.audioMuted ? 'microphone off' : '', p.videoMuted ? 'camera off' : ''].filter(Boolean).join(', ');
    li.append(name, state);
    return li;
  }));
}

export function setAlone(alone) { $('alone').hidden = !alone; }

// bindControls wires the buttons; toggles return their new state.
export function bindControls(c) {
  fillIcons();
  const toggle = (id, on, offLabel, onLabel) => {
    $(id).setAttribute('aria-pressed', on ? 'true' : 'false');
    $(id).dataset.muted = on ? 'yes' : 'no';
    $(id).setAttribute('aria-label', on ? onLabel : offLabel);
  };
  $('mic').onclick = () => toggle('mic', c.toggleAudio(), 'Turn off microphone', 'Turn on microphone');
  $('cam').onclick = () => toggle('cam', c.toggleVideo(), 'Turn off camera', 'Turn on camera');
  $('share').onclick = async () => {
    const on = await c.toggleShare();
    $('share').setAttribute('aria-pressed', on ? 'true' : 'false');
    $('share').setAttribute('aria-label', on ? 'Stop sharing your screen' : 'Share your screen');
    $('share').querySelector('.label').textContent = on ? 'Stop sharing' : 'Share screen';
  };
  $('leave').onclick = () => c.leave();
  $('settings').onclick = () => c.openDevices();
  $('people-toggle').onclick = () => {
    const open = $('people').hidden;
    $('people').hidden = !open;
    $('people-toggle').setAttribute('aria-expanded', open ? 'true' : 'false');
    layout();
  };
  for (const b of ['mic', 'cam']) toggle(b, false, b === 'mic' ? 'Turn off microphone' : 'Turn off camera', '');
  new ResizeObserver(() => layout()).observe($('stage'));
}

export function setShareAvailable(ok) { $('share').hidden = !ok; }

export function setShareState(on) {
  $('share').setAttribute('aria-pressed', on ? 'true' : 'false');
  $('share').querySelector('.label').textContent = on ? 'Stop sharing' : 'Share screen';
}
