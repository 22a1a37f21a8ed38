// The page: status badges, one tile per remote participant, controls.
const $ = (id) => document.getElementById(id);

export function setState(state, detail = '') {
  const el = $('state');
  el.textContent = detail ? `${state}: ${detail}` : state;
  el.dataset.state = state;
}

export function setE2EE(on, kid, why = 'no #key= in the link') {
  const el = $('e2ee');
  el.dataset.on = on ? 'yes' : 'no';
  el.textContent = on ? '✓ End-to-end encrypted' : `⚠ Not end-to-end encrypted (${why})`;
  el.title = on ? `SFrame (RFC 9605), AES-128-GCM; sender key id ${kid}` : 'Media is protected in transit only (DTLS-SRTP).';
}

export function setTransport(t) {
  $('transport').textContent = t ? `via ${t}` : '';
  $('transport').dataset.transport = t || '';
}

export function showMessage(text) {
  $('message').textContent = text;
  $('message').hidden = !text;
}

export function setLocalStream(stream) {
  $('self').srcObject = stream;
}

function tileOf(participant) {
  let tile = document.querySelector(`.tile[data-participant="${CSS.escape(participant)}"]`);
  if (tile) return tile;
  tile = document.createElement('figure');
  tile.className = 'tile';
  tile.dataset.participant = participant;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // sound plays through the audio element
  const audio = document.createElement('audio');
  audio.autoplay = true;
  const caption = document.createElement('figcaption');
  caption.textContent = participant;
  tile.append(video, audio, caption);
  $('tiles').append(tile);
  return tile;
}

// addRemoteTrack shows a remote track in its publisher's tile.
export function addRemoteTrack(participant, track) {
  const tile = tileOf(participant);
  const el = tile.querySelector(track.kind === 'video' ? 'video' : 'audio');
  const stream = el.srcObject || new MediaStream();
  stream.getTracks().filter((t) => t.kind === track.kind).forEach((t) => stream.removeTrack(t));
  stream.addTrack(track);
  el.srcObject = stream;
  el.play?.().catch(() => { /* autoplay may wait for a click */ });
}

export function setRemoteMuted(participant, kind, muted) {
  tileOf(participant).dataset[`${kind}Muted`] = muted ? 'yes' : 'no';
}

export function removeParticipant(participant) {
  document.querySelector(`.tile[data-participant="${CSS.escape(participant)}"]`)?.remove();
}

export function removeAllTiles() {
  document.querySelectorAll('.tile').forEach((t) => t.remove());
}

// bindControls wires the buttons; each handler returns the new state.
export function bindControls({ toggleAudio, toggleVideo, leave }) {
  $('mic').onclick = () => { $('mic').dataset.muted = toggleAudio() ? 'yes' : 'no'; };
  $('cam').onclick = () => { $('cam').dataset.muted = toggleVideo() ? 'yes' : 'no'; };
  $('leave').onclick = () => leave();
  $('controls').hidden = false;
}

export function hideControls() {
  $('controls').hidden = true;
}
