package sfu

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// testPeer is a minimal client built on raw pion: enough to exercise the SFU
// without the signaling layer.
type testPeer struct {
	t        *testing.T
	id       string
	p        *Participant
	pub, sub *webrtc.PeerConnection
	audio    *webrtc.TrackLocalStaticRTP
	video    *webrtc.TrackLocalStaticRTP

	closing       atomic.Bool // close was called: late offers are not errors
	mu            sync.Mutex
	ready         chan struct{}            // closed once p is set: offers can arrive before Join returns
	received      map[string]*atomic.Int64 // "participant/kind" → packets
	seqs          map[string]*seqSet       // "participant/kind" → sequence numbers seen
	events        []string
	speakerEvents []speakersEvent
	closed        chan string
}

func testAPI(t *testing.T) *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

func newTestCall(t *testing.T, port int) *Call {
	t.Helper()
	c, err := NewCall(Config{ID: "test", ListenIP: net.IPv4(127, 0, 0, 1),
		PublishPort: port, SubscribePort: port + 1, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func joinTestPeer(t *testing.T, c *Call, id string) *testPeer {
	t.Helper()
	return joinTestPeerAPI(t, c, id, testAPI(t))
}

func joinTestPeerAPI(t *testing.T, c *Call, id string, api *webrtc.API) *testPeer {
	t.Helper()
	return joinTestPeerAPIWith(t, c, id, api, nil)
}

// joinTestPeerAPIWith lets hook take over a received track (it returns true
// when it read the track to its end).
func joinTestPeerAPIWith(t *testing.T, c *Call, id string, api *webrtc.API,
	hook func(*webrtc.TrackRemote, *webrtc.RTPReceiver) bool) *testPeer {
	t.Helper()
	tp := &testPeer{t: t, id: id, received: map[string]*atomic.Int64{}, seqs: map[string]*seqSet{},
		closed: make(chan string, 1), ready: make(chan struct{})}
	var err error
	if tp.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if tp.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	tp.sub.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		if hook != nil && hook(tr, recv) {
			return
		}
		key := tr.StreamID() + "/" + tr.Kind().String()
		tp.mu.Lock()
		n := tp.received[key]
		if n == nil {
			n = &atomic.Int64{}
			tp.received[key] = n
		}
		seen := tp.seqs[key]
		if seen == nil {
			seen = &seqSet{}
			tp.seqs[key] = seen
		}
		tp.mu.Unlock()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			n.Add(1)
			seen.add(pkt.SequenceNumber)
		}
	})
	if tp.p, err = c.Join(id, tp); err != nil {
		t.Fatal(err)
	}
	close(tp.ready)
	tp.audio, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, id+"-audio", id)
	tp.video, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, id+"-video", id)
	for _, tr := range []webrtc.TrackLocal{tp.audio, tp.video} {
		if _, err := tp.pub.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := tp.pub.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.pub.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	answer, err := tp.p.Publish(offer.SDP)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	return tp
}

// send writes n synthetic audio and video packets; video starts with a VP8 key frame.
func (tp *testPeer) send(ctx context.Context) {
	var seq uint16
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		seq++
		ts := uint32(i * 480)
		_ = tp.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts}, Payload: []byte{0x78, 1, 2, 3}})
		frame := byte(0x01) // delta
		if i%50 == 0 {
			frame = 0x00 // key frame every 0.5 s
		}
		_ = tp.video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts * 2, Marker: true},
			Payload: []byte{0x10, frame, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 9, 9, 9}})
	}
}

// seqSet records the sequence numbers of one received stream, unwrapped.
type seqSet struct {
	mu   sync.Mutex
	seen map[int64]bool
	last int64
}

func (s *seqSet) add(seq uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[int64]bool{}
		s.last = int64(seq)
	}
	ext := s.last + int64(int16(seq-uint16(s.last)))
	s.seen[ext] = true
	s.last = max(s.last, ext)
}

// missing counts the sequence numbers in [from, to] never received, and the
// range's size; from and to come from mark.
func (s *seqSet) missing(from, to int64) (lost, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for q := from; q <= to; q++ {
		total++
		if !s.seen[q] {
			lost++
		}
	}
	return lost, total
}

// mark is the highest sequence number so far.
func (s *seqSet) mark() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (tp *testPeer) stream(from, kind string) *seqSet {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.seqs[from+"/"+kind]
}

func (tp *testPeer) count(from, kind string) int64 {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if n := tp.received[from+"/"+kind]; n != nil {
		return n.Load()
	}
	return 0
}

func (tp *testPeer) close() {
	tp.closing.Store(true)
	_ = tp.pub.Close()
	_ = tp.sub.Close()
}

// Handler.
func (tp *testPeer) SubscribeOffer(sdp string) {
	if tp.sub == nil { // a peer that only publishes
		return
	}
	go func() {
		<-tp.ready
		if err := tp.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
			if tp.p.isClosed() || tp.closing.Load() {
				return
			}
			tp.t.Errorf("%s: subscribe offer: %v", tp.id, err)
			return
		}
		answer, err := tp.sub.CreateAnswer(nil)
		if err != nil {
			if tp.p.isClosed() || tp.closing.Load() {
				return
			}
			tp.t.Errorf("%s: answer: %v", tp.id, err)
			return
		}
		gathered := webrtc.GatheringCompletePromise(tp.sub)
		_ = tp.sub.SetLocalDescription(answer)
		<-gathered
		if err := tp.p.SubscribeAnswer(tp.sub.LocalDescription().SDP); err != nil && !errors.Is(err, ErrClosed) && !tp.closing.Load() {
			tp.t.Errorf("%s: SubscribeAnswer: %v", tp.id, err)
		}
	}()
}
func (tp *testPeer) event(s string) {
	tp.mu.Lock()
	tp.events = append(tp.events, s)
	tp.mu.Unlock()
}
func (tp *testPeer) ParticipantJoined(p ParticipantInfo) { tp.event("joined " + p.ID) }
func (tp *testPeer) ParticipantLeft(id string)           { tp.event("left " + id) }
func (tp *testPeer) TrackPublished(pid string, t TrackInfo) {
	tp.event("published " + pid + " " + t.Kind)
}
func (tp *testPeer) TrackUnpublished(pid, tid string)   { tp.event("unpublished " + pid + " " + tid) }
func (tp *testPeer) TrackMuted(pid, tid string, m bool) { tp.event("muted " + pid + " " + tid) }
func (tp *testPeer) Speakers(list []SpeakerInfo, dominant string) {
	tp.mu.Lock()
	tp.speakerEvents = append(tp.speakerEvents, speakersEvent{at: time.Now(), list: list, dominant: dominant})
	tp.mu.Unlock()
}

type speakersEvent struct {
	at       time.Time
	list     []SpeakerInfo
	dominant string
}

func (tp *testPeer) Closed(reason string) { tp.closed <- reason }
