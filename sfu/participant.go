package sfu

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
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

// maxPublishedMedia bounds the media sections of a publish offer: microphone,
// camera, and a screen share with its audio.
const maxPublishedMedia = 4

// Participant is one client in a call: its publish transport (on port P), its
// subscribe transport (on P+1) and the tracks flowing through them.
type Participant struct {
	id       string
	name     string // display name, set before the participant is announced
	call     *Call
	handler  Handler
	log      *zap.Logger
	joinedAt time.Time

	pub, subPC *webrtc.PeerConnection
	sub        *subscriber

	mu           sync.Mutex
	tracks       map[string]*upTrack     // published, by track id
	downs        map[*upTrack]*downTrack // subscribed
	offerPending bool                    // a subscribe offer awaits its answer
	needsOffer   bool                    // tracks changed while an offer was pending

	negotiate chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newParticipant(c *Call, id string, h Handler) (*Participant, error) {
	p := &Participant{
		id: id, call: c, handler: h, joinedAt: time.Now(),
		log:    c.log.With(zap.String("participant", id)),
		tracks: map[string]*upTrack{}, downs: map[*upTrack]*downTrack{},
		negotiate: make(chan struct{}, 1), closed: make(chan struct{}),
	}
	var err error
	if p.pub, err = c.pubAPI.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, fmt.Errorf("sfu: publish transport: %w", err)
	}
	if p.subPC, err = c.subAPI.NewPeerConnection(webrtc.Configuration{}); err != nil {
		_ = p.pub.Close()
		return nil, fmt.Errorf("sfu: subscribe transport: %w", err)
	}
	p.sub = newSubscriber(p.subPC, &c.cfg, c.epoch, p.log)
	// Open the subscribe transport at join, before any track exists: a data
	// channel gives the first offer an m-section, so ICE and DTLS run in
	// parallel with the publish transport's and a track published later
	// costs one offer/answer instead of a second handshake in series.
	if _, err := p.subPC.CreateDataChannel("orville", nil); err != nil {
		_ = p.pub.Close()
		_ = p.subPC.Close()
		return nil, fmt.Errorf("sfu: subscribe transport: %w", err)
	}
	p.pub.OnTrack(p.onTrack)
	for _, pc := range []*webrtc.PeerConnection{p.pub, p.subPC} {
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			p.log.Debug("transport state", zap.Stringer("state", s))
			if s == webrtc.PeerConnectionStateFailed {
				go p.close("transport_failed")
			}
		})
	}
	p.wg.Add(1)
	go p.negotiateLoop()
	p.kick()
	return p, nil
}

// ID returns the participant's id.
func (p *Participant) ID() string { return p.id }

// Publish applies the client's offer for its publish transport and returns the
// answer, complete with the server's candidates (ICE-lite, no trickle needed).
func (p *Participant) Publish(offer string) (string, error) {
	if err := checkOffer(offer); err != nil {
		return "", err
	}
	if err := p.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	answer, err := p.pub.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pub)
	if err := p.pub.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("sfu: set local answer: %w", err)
	}
	select {
	case <-gathered:
	case <-p.closed:
		return "", ErrClosed
	}
	return p.pub.LocalDescription().SDP, nil
}

// checkOffer parses the SDP before pion sees it, so that a huge or nonsensical
// offer is refused with a clear message.
func checkOffer(s string) error {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	if len(d.MediaDescriptions) == 0 {
		return fmt.Errorf("%w: no media sections", ErrInvalidSDP)
	}
	if len(d.MediaDescriptions) > maxPublishedMedia {
		return fmt.Errorf("%w: %d media sections, at most %d", ErrInvalidSDP, len(d.MediaDescriptions), maxPublishedMedia)
	}
	return nil
}

// SubscribeAnswer applies the client's answer to the latest subscribe offer.
func (p *Participant) SubscribeAnswer(answer string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	if !p.offerPending {
		return ErrNoOffer
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	if err := p.subPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	p.offerPending = false
	if p.needsOffer {
		p.needsOffer = false
		p.kick()
	}
	return nil
}

// AddCandidate adds a trickled client candidate to one transport.
func (p *Participant) AddCandidate(publish bool, c webrtc.ICECandidateInit) error {
	pc := p.subPC
	if publish {
		pc = p.pub
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("sfu: candidate: %w", err)
	}
	return nil
}

// SetMuted stops (or resumes) forwarding one of the participant's tracks and
// tells the others.
func (p *Participant) SetMuted(trackID string, muted bool) error {
	p.mu.Lock()
	t := p.tracks[trackID]
	p.mu.Unlock()
	if t == nil {
		return ErrUnknownTrack
	}
	if t.setMuted(muted) {
		p.call.broadcast(p, func(h Handler) { h.TrackMuted(p.id, trackID, muted) })
	}
	return nil
}

// Info describes the participant for the API and for other participants.
func (p *Participant) Info() ParticipantInfo {
	p.mu.Lock()
	tracks := make([]TrackInfo, 0, len(p.tracks))
	for _, t := range p.tracks {
		tracks = append(tracks, t.info())
	}
	p.mu.Unlock()
	sort.Slice(tracks, func(i, j int) bool { return tracks[i].ID < tracks[j].ID })
	return ParticipantInfo{ID: p.id, Name: p.name, JoinedAt: p.joinedAt, Transport: transportOf(p.pub), Tracks: tracks}
}

// transportOf names the path the client's media takes: udp, tcp, or turn when
// the client's side of the selected pair is a relay.
func transportOf(pc *webrtc.PeerConnection) string {
	for _, tr := range pc.GetTransceivers() {
		r := tr.Receiver()
		if r == nil || r.Transport() == nil {
			continue
		}
		pair, err := r.Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			continue
		}
		if pair.Remote.Typ == webrtc.ICECandidateTypeRelay {
			return "turn"
		}
		return pair.Local.Protocol.String()
	}
	return ""
}

// onTrack runs on its own goroutine (pion starts one per remote track) and
// becomes that track's reader.
func (p *Participant) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.isClosed() {
		p.mu.Unlock()
		return
	}
	id := remote.ID()
	if _, dup := p.tracks[id]; dup || id == "" || len(id) > 64 {
		id = remote.Kind().String() + "-" + strconv.FormatUint(uint64(remote.SSRC()), 10)
	}
	up := newUpTrack(p, id, remote)
	p.tracks[id] = up
	p.mu.Unlock()

	p.wg.Add(1)
	go func() { // RTCP from the publisher must be read for the interceptors to run
		defer p.wg.Done()
		for {
			if _, _, err := recv.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	p.log.Info("track published", zap.String("track", id), zap.Stringer("kind", remote.Kind()),
		zap.String("codec", remote.Codec().MimeType))
	p.call.publish(p, up)
	up.readLoop()
	p.call.unpublish(p, up)
	p.mu.Lock()
	delete(p.tracks, id)
	p.mu.Unlock()
	close(up.done)
}

// subscribe adds a down track for up to this participant's subscribe transport.
func (p *Participant) subscribe(up *upTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() || p.downs[up] != nil {
		return
	}
	d := newDownTrack(up, p.sub)
	sender, err := p.subPC.AddTrack(d)
	if err != nil {
		p.log.Warn("subscribe", zap.String("track", up.id), zap.Error(err))
		return
	}
	d.sender = sender
	p.downs[up] = d
	p.syncTracks()
	up.addSubscriber(d)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		d.rtcpLoop()
	}()
	p.kick()
}

func (p *Participant) unsubscribe(up *upTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.downs[up]
	if d == nil {
		return
	}
	up.removeSubscriber(d)
	delete(p.downs, up)
	p.syncTracks()
	if !p.isClosed() {
		if err := p.subPC.RemoveTrack(d.sender); err != nil {
			p.log.Debug("unsubscribe", zap.Error(err))
		}
		p.kick()
	}
}

func (p *Participant) syncTracks() {
	list := make([]*downTrack, 0, len(p.downs))
	for _, d := range p.downs {
		list = append(list, d)
	}
	p.sub.setTracks(list)
}

// kick asks the negotiation goroutine for a new subscribe offer.
func (p *Participant) kick() {
	select {
	case p.negotiate <- struct{}{}:
	default:
	}
}

// negotiateLoop makes subscribe offers one at a time: a new offer only after the
// previous one was answered (RFC 8829 §4.1.8: no offer while one is pending).
func (p *Participant) negotiateLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.negotiate:
		case <-p.closed:
			return
		}
		p.mu.Lock()
		if p.offerPending {
			p.needsOffer = true
			p.mu.Unlock()
			continue
		}
		offer, err := p.subPC.CreateOffer(nil)
		if err == nil {
			gathered := webrtc.GatheringCompletePromise(p.subPC)
			if err = p.subPC.SetLocalDescription(offer); err == nil {
				p.offerPending = true
				p.mu.Unlock()
				select {
				case <-gathered:
				case <-p.closed:
					return
				}
				p.handler.SubscribeOffer(p.subPC.LocalDescription().SDP)
				continue
			}
		}
		p.mu.Unlock()
		if !p.isClosed() {
			p.log.Warn("subscribe offer", zap.Error(err))
		}
	}
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

func (p *Participant) close(reason string) {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.call.leave(p)
		p.mu.Lock()
		ups := make([]*upTrack, 0, len(p.tracks))
		for _, t := range p.tracks {
			ups = append(ups, t)
		}
		for up, d := range p.downs {
			up.removeSubscriber(d)
		}
		p.downs = map[*upTrack]*downTrack{}
		p.mu.Unlock()
		for _, up := range ups {
			p.call.unpublish(p, up)
		}
		if err := p.pub.Close(); err != nil {
			p.log.Debug("close publish transport", zap.Error(err))
		}
		if err := p.subPC.Close(); err != nil {
			p.log.Debug("close subscribe transport", zap.Error(err))
		}
		p.sub.close()
		p.wg.Wait()
		for _, up := range ups {
			<-up.done // its reader has seen the transport close
		}
		p.log.Info("participant left", zap.String("reason", reason))
		p.handler.Closed(reason)
	})
}
