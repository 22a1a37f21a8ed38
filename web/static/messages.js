// Everything the page tells its user when something is wrong, in plain
// words: what happened and what to do. Each entry is {title, text, rejoin}
// (rejoin: offer the Rejoin button). Codes are the signaling protocol's
// error codes and `ended` reasons (docs/signaling.md).

const tryAgain = 'Check your connection and try again.';

export const ERRORS = {
  no_link: {
    title: 'This page needs a call link',
    text: 'Open the link you were sent for the call. It looks like this page’s address followed by “?token=…”.',
  },
  invalid_token: {
    title: 'This call link has expired or is no longer valid',
    text: 'Links work for a limited time, and stop working when you are removed from a call. Ask for a new link.',
  },
  call_not_found: {
    title: 'This call has ended',
    text: 'There is no call at this link any more. Ask for a new link if you still want to talk.',
  },
  call_full: {
    title: 'This call is full',
    text: 'The call has as many people as it allows. Try again when someone has left.',
    rejoin: true,
  },
  forbidden: {
    title: 'You were removed from this call',
    text: 'Someone removed you from the call. You can join again only with a new link.',
  },
  removed: {
    title: 'You were removed from the call',
    text: 'Someone removed you from the call. You can join again only with a new link.',
  },
  ended_by_api: {
    title: 'The call has ended',
    text: 'The call was ended for everyone.',
  },
  max_duration: {
    title: 'The call has ended',
    text: 'The call reached its maximum length. Start a new call to keep talking.',
  },
  replaced: {
    title: 'You joined from somewhere else',
    text: 'This call is now open in another tab or on another device. Rejoin here to move it back.',
    rejoin: true,
  },
  server_shutdown: {
    title: 'The call server is restarting',
    text: 'Your call was interrupted by maintenance. Rejoin in a moment.',
    rejoin: true,
  },
  transport_failed: {
    title: 'Your connection to the call was lost',
    text: 'Audio and video stopped reaching the call and did not come back in time. ' + tryAgain,
    rejoin: true,
  },
  unreachable: {
    title: 'Cannot reach the call server',
    text: tryAgain,
    rejoin: true,
  },
  connection_lost: {
    title: 'Your connection to the call was lost',
    text: 'The connection did not come back in time. ' + tryAgain,
    rejoin: true,
  },
  key_too_short: {
    title: 'This call link is incomplete',
    text: 'The part of the link after “#key=” is too short. Copy the whole link you were sent.',
  },
  no_devices: {
    title: 'Orville needs your microphone',
    text: 'Allow this page to use your microphone and camera (look at your browser’s address bar), then rejoin.',
    rejoin: true,
  },
  unsupported: {
    title: 'This browser cannot join the call',
    text: 'It lacks WebRTC or the end-to-end encryption support the call needs. Use a current Chrome, Edge or Firefox.',
  },
  left: {
    title: 'You left the call',
    text: '',
    rejoin: true,
  },
};

// errorFor maps a protocol code or reason to its message, falling back to a
// generic one that still names the code for support.
export function errorFor(code) {
  return ERRORS[code] || { title: 'Something went wrong', text: `${tryAgain} (${code})`, rejoin: true };
}

// firewallText says which ports must be open, from `joined.network`.
export function firewallText(n) {
  const host = n && n.host ? n.host : location.hostname;
  const tcp = n && n.tcpPort ? n.tcpPort : (location.port || 443);
  const udp = n && n.udpPortFirst ? `UDP ports ${n.udpPortFirst}–${n.udpPortLast}` : 'the call’s UDP ports';
  return `Audio and video cannot get through your network. Ask your network administrator to allow ${udp} ` +
    `and TCP port ${tcp} to ${host}. Still trying…`;
}

// loopbackText explains a server reachable only on loopback to a browser
// that does not connect to loopback addresses (Firefox).
export function loopbackText(firefox) {
  const who = firefox ? 'Firefox does not connect media to loopback addresses' : 'This browser does not connect media to it';
  return `This call server offers media only on 127.0.0.1 (a local test server, as “orville serve --dev” runs). ` +
    `${who}. Open the call in Chromium, or start the server on this computer’s network address: ` +
    `orville serve --dev --listen-ip IP --public-ip IP --tcp-listen IP:8443 and open the link with that IP` +
    (firefox ? ' (or, for testing only, set media.peerconnection.ice.loopback to true in about:config).' : '.');
}
