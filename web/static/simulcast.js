// Simulcast (docs/signaling.md, "Video: simulcast, bandwidth and layers"):
// the camera goes out as several encodings, each its own stream of whole
// frames, each frame encrypted on its own by the E2EE worker, so a receiver
// of any one layer decrypts it. The server's `layers` message names the
// encodings anybody receives; the others are set inactive and the browser
// stops encoding them.
//
// How many layers a browser encodes depends on the picture: Chromium
// sends three from 960×540 up, two from 480×270 (or 640×480) up, one
// below, whatever is asked for, and drops the largest ones first. So the
// layers asked for follow the camera's size: q, h, f (a quarter, half and
// the full picture) for 540 lines and more; q and f (half and full) for
// 270 to 539 lines, so that the full picture is always one of them; none
// below.

const THREE = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];
const TWO = [
  { rid: 'q', scaleResolutionDownBy: 2, maxBitrate: 300_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
];

// simulcastEncodings returns sendEncodings for a camera track (undefined:
// a single encoding).
export function simulcastEncodings(track) {
  const h = Math.min(track.getSettings?.().height || 0, track.getSettings?.().width || 0) || 0;
  if (h >= 540) return THREE.map((e) => ({ ...e }));
  if (h >= 270) return TWO.map((e) => ({ ...e }));
  return undefined;
}

// applyLayers sets active on the sender's encodings: those named in rids.
export async function applyLayers(sender, rids) {
  const p = sender.getParameters();
  if (!p.encodings || p.encodings.length < 2) return false;
  let changed = false;
  for (const e of p.encodings) {
    const on = rids.includes(e.rid);
    if (e.active !== on) { e.active = on; changed = true; }
  }
  if (changed) await sender.setParameters(p);
  return changed;
}

// layerStats describes the sender's encodings: active, and what each sent.
export async function layerStats(sender) {
  if (!sender) return [];
  const out = new Map(sender.getParameters().encodings.map((e) => [e.rid, { rid: e.rid, active: e.active !== false, bytesSent: 0, frameHeight: 0 }]));
  (await sender.getStats()).forEach((s) => {
    const l = s.type === 'outbound-rtp' && out.get(s.rid);
    if (l) Object.assign(l, { bytesSent: s.bytesSent || 0, frameHeight: s.frameHeight || 0 });
  });
  return [...out.values()];
}
