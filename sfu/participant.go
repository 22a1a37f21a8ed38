package sfu

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Errors callers map to protocol error codes.
var (
	ErrInvalidSDP   = errors.New("invalid SDP")
	ErrNoOffer      = errors.New("no subscribe offer is outstanding")
	ErrUnknownTrack = errors.New("no such track")
	ErrClosed       = errors.New("participant closed")
)

// Participant is one client in a call: its publish transport (on port P), its
// subscribe transport (on P+1) and the tracks flowing through them.
type Participant struct {
	id       string
	name     string // display name, set before the participant is announced
	call     *Call
	cfg      *Config
	handler  Handler
	log      *zap.Logger
	joinedAt time.Time

	pubT, subT *transport
	sessionID  uint64

	mu sync.Mutex // control state below

	// Publish side.
	pubCands     []string
	pubVersion   int
	tracks       map[string]*upTrack // published, by mid
	streams      atomic.Pointer[streamSet]
	rtcpSSRC     uint32 // sender SSRC of the server's RTCP on both transports
	discoverLeft int    // unknown SSRCs still worth a look (bounds a flood)

	// Publish ingress state: only the goroutine on the publish path.
	twcc       twccRecorder
	twccMedia  uint32        // an SSRC the feedback names (the latest recorded)
	twccID     atomic.Uint32 // the publisher's transport-wide-cc extension ID
	lastTWCC   int64
	nackBuf    []uint16
	rtcpBuf    []byte
	touchPump  *pump
	touchStamp uint64

	// Subscribe side (participant_subscribe.go).
	sub        subscribeState
	iceRestart bool // the next subscribe offer restarts ICE (icerestart.go)

	video *subscriberVideo // bandwidth estimate and video allocation (subscription.go)

	negotiate chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newParticipant(c *Call, id string, h Handler) (*Participant, error) {
	p := &Participant{
		id: id, call: c, cfg: &c.cfg, handler: h, joinedAt: time.Now(),
		log:    c.log.With(zap.String("participant", id)),
		tracks: map[string]*upTrack{}, sessionID: newSessionID(), rtcpSSRC: randomSSRC(),
		discoverLeft: 64, nackBuf: make([]uint16, 0, 64), rtcpBuf: make([]byte, 1200),
		negotiate: make(chan struct{}, 1), closed: make(chan struct{}), video: newSubscriberVideo(),
	}
	p.streams.Store(newStreamSet(map[uint32]*upStream{}))
	p.sub.init()
	var err error
	if p.pubT, err = newTransport(p.cfg, c.pubSock, c.cert, "publish", false, publishSink{p}, p.log); err != nil {
		return nil, fmt.Errorf("sfu: publish transport: %w", err)
	}
	if p.subT, err = newTransport(p.cfg, c.subSock, c.cert, "subscribe", true, subscribeSink{p}, p.log); err != nil {
		p.pubT.close()
		return nil, fmt.Errorf("sfu: subscribe transport: %w", err)
	}
	for _, t := range []*transport{p.pubT, p.subT} {
		t.newPump = c.newPump
		t.onFailed = func() { p.close("transport_failed") }
	}
	p.subT.onReady = p.activateDowns
	// Gather both transports' candidates at once: the first answer and the
	// first subscribe offer both need them.
	var wg sync.WaitGroup
	var pubErr, subErr error
	wg.Add(1)
	go func() { defer wg.Done(); p.pubCands, pubErr = p.pubT.candidates() }()
	p.sub.cands, subErr = p.subT.candidates()
	wg.Wait()
	if err := errors.Join(pubErr, subErr); err != nil {
		p.pubT.close()
		p.subT.close()
		return nil, fmt.Errorf("sfu: gather candidates: %w", err)
	}
	p.wg.Add(1)
	go p.negotiateLoop()
	return p, nil
}

// ID returns the participant's id.
func (p *Participant) ID() string { return p.id }

// Publish applies the client's offer for its publish transport and returns the
// answer, complete with the server's candidates (no trickle needed).
// A later offer may add or stop tracks, or restart ICE (new credentials).
func (p *Participant) Publish(offer string) (string, error) {
	o, err := parsePublishOffer(offer)
	if err != nil {
		return "", err
	}
	if p.isClosed() {
		return "", ErrClosed
	}
	p.mu.Lock()
	if p.pubT.remoteUfragSet() && p.pubT.currentRemoteUfrag() != o.remote.ufrag {
		// ICE restart (RFC 8445 §2.4): new credentials and candidates on
		// our side too; DTLS and SRTP carry on.
		if err := p.pubT.restartICE(); err != nil {
			p.mu.Unlock()
			return "", fmt.Errorf("sfu: ice restart: %w", err)
		}
		p.mu.Unlock()
		cands, err := p.pubT.candidates()
		if err != nil {
			return "", err
		}
		p.mu.Lock()
		p.pubCands = cands
	}
	if err := p.pubT.start(o.remote); err != nil {
		p.mu.Unlock()
		return "", fmt.Errorf("sfu: publish transport: %w", err)
	}
	added, removed := p.reconcileTracks(o)
	p.pubVersion++
	ufrag, pwd := p.pubT.localCredentials()
	answer := o.answer(ufrag, pwd, p.call.cert.fingerprint, p.pubCands, p.sessionID, p.pubVersion)
	p.mu.Unlock()
	for _, up := range removed {
		p.call.unpublish(p, up)
	}
	for _, up := range added {
		p.log.Info("track published", zap.String("track", up.id), zap.Stringer("kind", up.kind))
		p.call.publish(p, up)
	}
	return answer, nil
}

// reconcileTracks makes the published tracks match the offer's sending
// sections (p.mu held). Tracks exist from the offer on, before their first
// packet: subscribers negotiate them while the publisher's DTLS runs.
func (p *Participant) reconcileTracks(o *pubOffer) (added, removed []*upTrack) {
	sending := map[string]*pubSection{}
	for i := range o.sections {
		s := &o.sections[i]
		if s.accepted && s.sending {
			sending[s.mid] = s
		}
	}
	for mid, up := range p.tracks {
		if sec := sending[mid]; sec == nil || sec.kind != up.kind.String() {
			delete(p.tracks, mid)
			removed = append(removed, up)
		}
	}
	streams := map[uint32]*upStream{}
	for _, s := range p.streams.Load().list {
		if p.tracks[s.track.mid] == s.track {
			streams[s.ssrc] = s
		}
	}
	ids := map[string]bool{}
	for _, up := range p.tracks {
		ids[up.id] = true
	}
	for _, sec := range sortedSections(sending) {
		up := p.tracks[sec.mid]
		if up == nil {
			up = newUpTrack(p, sec)
			if ids[up.id] {
				up.id = up.kind.String() + "-" + sec.mid
			}
			ids[up.id] = true
			p.tracks[sec.mid] = up
			added = append(added, up)
		} else {
			ext := sec.ext
			up.ext.Store(&ext)
		}
		if id := sec.ext.twcc; id != 0 {
			p.twccID.Store(uint32(id))
		}
		// Without simulcast, a signalled SSRC is the track's only stream.
		if len(sec.rids) == 0 && len(sec.ssrcs) > 0 && streams[sec.ssrcs[0]] == nil {
			s := newUpStream(up, sec.ssrcs[0], 0)
			up.layers[0].Store(s)
			streams[s.ssrc] = s
		}
		signalledLayers(up, sec, streams)
	}
	p.streams.Store(newStreamSet(streams))
	return added, removed
}

func sortedSections(m map[string]*pubSection) []*pubSection {
	out := make([]*pubSection, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].index < out[j].index })
	return out
}

// AddCandidate takes a trickled client candidate for one transport: it is
// checked for syntax only (see newTransport: the server learns client
// addresses from their checks).
func (p *Participant) AddCandidate(publish bool, c webrtc.ICECandidateInit) error {
	t := p.subT
	if publish {
		t = p.pubT
	}
	s := strings.TrimPrefix(c.Candidate, "candidate:")
	if s == "" {
		return nil // end of candidates
	}
	if err := t.checkRemoteCandidate(s); err != nil {
		return fmt.Errorf("sfu: candidate: %w", err)
	}
	return nil
}

// SetMuted stops (or resumes) forwarding one of the participant's tracks and
// tells the others.
func (p *Participant) SetMuted(trackID string, muted bool) error {
	t := p.trackByID(trackID)
	if t == nil {
		return ErrUnknownTrack
	}
	if t.setMuted(muted) {
		p.call.broadcast(p, func(h Handler) { h.TrackMuted(p.id, trackID, muted) })
	}
	return nil
}

func (p *Participant) trackByID(id string) *upTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.tracks {
		if t.id == id {
			return t
		}
	}
	return nil
}

// publishedTracks lists the participant's tracks, sorted by id.
func (p *Participant) publishedTracks() []*upTrack {
	p.mu.Lock()
	out := make([]*upTrack, 0, len(p.tracks))
	for _, t := range p.tracks {
		out = append(out, t)
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Info describes the participant for the API and for other participants.
func (p *Participant) Info() ParticipantInfo {
	ups := p.publishedTracks()
	tracks := make([]TrackInfo, 0, len(ups))
	for _, t := range ups {
		tracks = append(tracks, t.info())
	}
	return ParticipantInfo{ID: p.id, Name: p.name, JoinedAt: p.joinedAt, Transport: p.pubT.pathDescription(), Tracks: tracks}
}

func (p *Participant) isClosed() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}

// Close removes the participant from the call (reason "left").
func (p *Participant) Close() { p.close("left") }

// close ends the participant: its tracks are unpublished (the others hear
// trackUnpublished before participantLeft), its subscriptions dropped, its
// transports closed.
func (p *Participant) close(reason string) {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.mu.Lock()
		ups := make([]*upTrack, 0, len(p.tracks))
		for _, t := range p.tracks {
			ups = append(ups, t)
		}
		p.tracks = map[string]*upTrack{}
		p.mu.Unlock()
		for _, up := range ups {
			p.call.unpublish(p, up)
		}
		p.call.leave(p)
		p.dropAllDowns()
		p.pubT.close()
		p.subT.close()
		p.wg.Wait()
		p.log.Info("participant left", zap.String("reason", reason))
		p.handler.Closed(reason)
	})
}
