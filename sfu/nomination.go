package sfu

import (
	"net/netip"
	"strings"

	"github.com/pion/stun/v4"
	"go.uber.org/zap"
)

// Following the client's nomination. A controlling client may nominate a
// second pair after the first: Chromium moves its selected connection when
// another of its interfaces becomes usable and sends USE-CANDIDATE on the new
// pair (RFC 8445 §7.2.2, §8.1.1), then sends its media there at once. pion's
// full controlled agent only moves to a nominated pair of higher priority
// than the selected one, so without this the server would keep sending to
// the old address and drop the media arriving from the new one (seen on any
// host with a second interface: the browser's checks come from each).
//
// So the call socket reads nominating checks itself before pion does: a
// Binding request with USE-CANDIDATE from an address the transport does not
// use, whose USERNAME names the transport and whose MESSAGE-INTEGRITY
// verifies with the transport's password, moves the transport's UDP path to
// that address. Only the client can produce such a request, and it proves
// the address is the client's own (RFC 8445 §7.3.1.5). pion keeps its own
// selected pair for consent checks.

// bindingRequest is the STUN message type of a Binding request (RFC 8489
// §5: method 0x001, class request).
const bindingRequest = 0x0001

// nominated looks at one STUN datagram from an address no transport routes
// (the read loop's goroutine; control rate).
func (s *callSocket) nominated(b []byte, from netip.AddrPort) {
	if len(b) < 20 || b[0] != 0 || b[1] != bindingRequest || !stun.IsMessage(b) {
		return
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil || !m.Contains(stun.AttrUseCandidate) {
		return
	}
	var user stun.Username
	if err := user.GetFrom(m); err != nil {
		return
	}
	local, remote, ok := strings.Cut(user.String(), ":")
	if !ok {
		return
	}
	t := s.byUfrag(local)
	if t == nil || !t.onPath(pathUDP) || remote != t.currentRemoteUfrag() {
		return
	}
	if cur := t.remote.Load(); cur != nil && *cur == from {
		return
	}
	_, pwd := t.localCredentials()
	if err := stun.NewShortTermIntegrity(pwd).Check(m); err != nil {
		return
	}
	t.log.Info("client nominated another address; media follows it", zap.Stringer("to", from))
	t.switchPath(pathUDP, from)
}

// addUfrag and dropUfrag keep the socket's index of its transports by local
// ICE username fragment (replaced on an ICE restart).
func (s *callSocket) addUfrag(ufrag string, t *transport) {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	for k, v := range s.ufrags {
		if v == t {
			delete(s.ufrags, k)
		}
	}
	s.ufrags[ufrag] = t
}

func (s *callSocket) dropUfrags(t *transport) {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	for k, v := range s.ufrags {
		if v == t {
			delete(s.ufrags, k)
		}
	}
}

func (s *callSocket) byUfrag(ufrag string) *transport {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	return s.ufrags[ufrag]
}
