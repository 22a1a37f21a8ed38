package client

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// Stats is a snapshot of one client's measurements.
type Stats struct {
	CallID        string
	ParticipantID string
	// JoinDuration is from the start of the WebSocket dial to `joined`.
	JoinDuration time.Duration
	Publish      TransportStats
	Subscribe    TransportStats
	Sent         []SentTrackStats
	Received     []ReceivedTrackStats
	// RemoteParticipants are the others in the call, sorted by id, as told
	// by the signaling events.
	RemoteParticipants []Participant
	// ServerErrors counts `error` messages after the join; LastServerError
	// is the latest one.
	ServerErrors    int
	LastServerError *ServerError
}

// TransportStats describes one of the two peer connections.
type TransportStats struct {
	// State is the peer connection state ("new", "connecting", "connected", ...).
	State string
	// ConnectedAfter is the time from the start of the WebSocket dial until
	// the transport first reached "connected"; 0 when it has not.
	ConnectedAfter time.Duration
	// Pair is the selected ICE candidate pair, nil before ICE selects one.
	Pair *CandidatePair
	// RTT is the latest STUN round-trip time on the selected pair.
	RTT time.Duration
	// Path is how the selected pair reaches the server: PathUDP, PathTCP
	// (ICE-TCP), PathTURNTLS or PathTURNTCP; "" before ICE selects a pair.
	Path string
	// ICEUfrag is the client's ICE username fragment on this transport;
	// every ICE restart changes it (RFC 8445 §9).
	ICEUfrag string
}

// CandidatePair describes the selected ICE candidate pair.
type CandidatePair struct {
	LocalType      string // host, srflx, prflx, relay
	LocalProtocol  string // udp, tcp
	LocalAddress   string // ip:port
	RemoteType     string
	RemoteProtocol string
	RemoteAddress  string
	// RelayProtocol is how a local relay candidate reaches its TURN server
	// (udp, tcp, tls); empty for other candidates.
	RelayProtocol string
}

// SentTrackStats describes one published track.
type SentTrackStats struct {
	TrackID string
	Kind    string
	SSRC    uint32
	// Packets and Bytes (RTP payload) handed to the transport, including
	// NACK retransmissions.
	Packets   uint64
	Bytes     uint64
	Frames    uint64
	KeyFrames uint64
	PLIs      uint64 // RTCP picture loss indications received (RFC 4585 §6.3.1)
	FIRs      uint64 // full intra requests received (RFC 5104 §4.3.1)
	NACKs     uint64 // generic NACK packets received (RFC 4585 §6.2.1)
	Muted     bool
	// Layers are the simulcast encodings (Config.Simulcast), lowest first.
	Layers []SentLayerStats
}

// ReceivedTrackStats describes one remote track received on the subscribe
// transport.
type ReceivedTrackStats struct {
	// ParticipantID is the publisher: the msid stream id of the track.
	ParticipantID string
	TrackID       string
	Kind          string
	Codec         string
	SSRC          uint32
	Packets       uint64
	Bytes         uint64 // RTP payload bytes
	// PacketsLost is expected minus received (RFC 3550 A.3); negative when
	// duplicates arrived. LossFraction is PacketsLost/expected, cumulative.
	PacketsLost  int64
	LossFraction float64
	// Duplicates counts packets that arrived twice (retransmissions, the
	// server's bandwidth probes); PacketsLost + Duplicates is what never
	// arrived.
	Duplicates uint64
	// Width and Height are the picture size of the latest (decrypted) VP8
	// key frame: which simulcast layer the server forwards.
	Width, Height int
	// Jitter is the RFC 3550 §6.4.1 interarrival jitter.
	Jitter        time.Duration
	FirstPacketAt time.Time
	LastPacketAt  time.Time
	// Frames counts depacketized frames (before decryption).
	Frames              uint64
	KeyFrames           uint64
	FramesDecryptFailed uint64
	// MarkedFrames carried the client's marker; the latencies are from the
	// marker's send time to the arrival of the frame's last packet, by the
	// wall clock (sender and receiver clocks must agree: same host or NTP).
	MarkedFrames uint64
	LatencyLast  time.Duration
	LatencyMean  time.Duration
	LatencyMax   time.Duration
	// Ended is set when the track stopped (unpublished or transport closed).
	Ended bool
}

// Stats returns a snapshot of the client's measurements. It is safe to call
// at any time, also after Close.
func (c *Client) Stats() Stats {
	s := Stats{
		CallID:        c.callID,
		ParticipantID: c.participantID,
		JoinDuration:  c.joinDuration,
		Publish:       c.pub.stats(),
		Subscribe:     c.sub.stats(),
	}
	c.mu.Lock()
	remote := slices.Clone(c.remote)
	for _, p := range c.participants {
		s.RemoteParticipants = append(s.RemoteParticipants, Participant{ID: p.ID, Name: p.Name, Tracks: slices.Clone(p.Tracks)})
	}
	s.ServerErrors = c.serverErrors
	if c.lastServerErr != nil {
		e := *c.lastServerErr
		s.LastServerError = &e
	}
	c.mu.Unlock()
	slices.SortFunc(s.RemoteParticipants, func(a, b Participant) int { return strings.Compare(a.ID, b.ID) })

	for _, lt := range c.local {
		s.Sent = append(s.Sent, lt.stats(c.sent))
	}
	for _, r := range remote {
		s.Received = append(s.Received, r.snapshot())
	}
	return s
}

// stats reads the peer connection's state and its selected candidate pair.
// The pair comes from the ICE transport; the candidates' details and the
// RTT from pc.GetStats (RTT as in W3C webrtc-stats currentRoundTripTime,
// measured with STUN connectivity checks and consent freshness, RFC 7675).
func (t *transport) stats() TransportStats {
	ts := TransportStats{State: t.pc.ConnectionState().String(), ICEUfrag: localUfrag(t.pc)}
	at := t.connectedAfter.Load()
	if at == 0 {
		// pion's GetStats races with the transport still starting (the race
		// detector shows it): there is no pair to report before connecting.
		return ts
	}
	ts.ConnectedAfter = time.Duration(at)
	dtls := t.pc.SCTP().Transport()
	if dtls == nil || dtls.ICETransport() == nil {
		return ts
	}
	pair, ok := dtls.ICETransport().GetSelectedCandidatePairStats()
	if !ok {
		return ts
	}
	t.cfgMu.Lock()
	report := t.pc.GetStats()
	t.cfgMu.Unlock()
	local, lok := report[pair.LocalCandidateID].(webrtc.ICECandidateStats)
	remote, rok := report[pair.RemoteCandidateID].(webrtc.ICECandidateStats)
	if p, ok := report[pair.ID].(webrtc.ICECandidatePairStats); ok {
		pair = p // fresher
	}
	ts.RTT = time.Duration(pair.CurrentRoundTripTime * float64(time.Second))
	if lok && rok {
		ts.Pair = &CandidatePair{
			LocalType:      local.CandidateType.String(),
			LocalProtocol:  local.Protocol,
			LocalAddress:   fmt.Sprintf("%s:%d", local.IP, local.Port),
			RemoteType:     remote.CandidateType.String(),
			RemoteProtocol: remote.Protocol,
			RemoteAddress:  fmt.Sprintf("%s:%d", remote.IP, remote.Port),
			RelayProtocol:  local.RelayProtocol,
		}
		ts.Path = pathOf(ts.Pair)
		if t.c.socks != nil && ts.Path == PathUDP {
			ts.Path = PathSOCKS
		}
	}
	return ts
}

// WaitForMedia waits until at least one frame of each of kinds (KindAudio,
// KindVideo; empty: any kind) arrived from each of the participants, or ctx
// ends, or the client stops.
func (c *Client) WaitForMedia(ctx context.Context, fromParticipants []string, kinds []string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		missing := c.missingMedia(fromParticipants, kinds)
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("client: no media yet from %s: %w", strings.Join(missing, ", "), ctx.Err())
		case <-c.done:
			return fmt.Errorf("client: stopped while waiting for media: %w", c.Err())
		}
	}
}

// missingMedia lists "participant/kind" pairs with no frame received yet.
func (c *Client) missingMedia(from []string, kinds []string) []string {
	c.mu.Lock()
	remote := slices.Clone(c.remote)
	c.mu.Unlock()
	have := map[string]bool{}
	for _, r := range remote {
		s := r.snapshot()
		if s.Frames > 0 {
			have[s.ParticipantID+"/"+s.Kind] = true
			have[s.ParticipantID+"/"] = true
		}
	}
	want := kinds
	if len(want) == 0 {
		want = []string{""}
	}
	var missing []string
	for _, p := range from {
		for _, k := range want {
			if !have[p+"/"+k] {
				missing = append(missing, strings.TrimSuffix(p+"/"+k, "/"))
			}
		}
	}
	return missing
}

// localUfrag reads the ICE ufrag of the current local description.
func localUfrag(pc *webrtc.PeerConnection) string {
	d := pc.CurrentLocalDescription()
	if d == nil {
		return ""
	}
	_, rest, ok := strings.Cut(d.SDP, "a=ice-ufrag:")
	if !ok {
		return ""
	}
	ufrag, _, _ := strings.Cut(rest, "\r\n")
	return strings.TrimSpace(ufrag)
}
