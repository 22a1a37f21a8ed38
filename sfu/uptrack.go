package sfu

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Cache sizes in packets: ~3 s of 1.5 Mb/s video, ~1 s of Opus (audio is
// not retransmitted by browsers' receivers; the cache only has to outlive a
// NACK's round trip). Powers of two (packetCache).
const (
	videoCacheSize = 512
	audioCacheSize = 64
)

// maxLayers is how many simulcast encodings one track may have (q, h, f).
const maxLayers = 3

// upTrack is one published track: one m-section of a publisher's offer.
// Video may arrive as several simulcast layers, each its own upStream. The
// packet path reads a copy-on-write list of down tracks, so fan-out takes no
// lock and allocates nothing.
type upTrack struct {
	id    string
	kind  webrtc.RTPCodecType
	mid   string
	owner *Participant
	clock uint32
	log   *zap.Logger
	cfg   *Config

	ext    atomic.Pointer[extIDs] // the publisher's IDs, replaced on renegotiation
	layers [maxLayers]atomic.Pointer[upStream]
	rids   []string // simulcast rids in layer order (control path)

	subs  atomic.Pointer[[]*downTrack]
	muted atomic.Bool
	pub   publishedLayers // which layers subscribers want (layers_wanted.go)

	// Audio: the level meter and the speaker detector's verdict. gate on
	// means top-N is in force for this call: the track goes out only while
	// forward is set and it is not silent.
	meter   levelMeter
	forward atomic.Bool
	gate    atomic.Bool

	mu          sync.Mutex // serializes subscriptions against unpublish
	unpublished bool
	subsMu      sync.Mutex // serializes changes to subs (a leaf lock)
}

func newUpTrack(owner *Participant, sec *pubSection) *upTrack {
	kind := webrtc.RTPCodecTypeAudio
	clock := uint32(48000)
	if sec.kind == "video" {
		kind, clock = webrtc.RTPCodecTypeVideo, 90000
	}
	id := sec.trackID
	if id == "" {
		id = sec.kind + "-" + sec.mid
	}
	t := &upTrack{id: id, kind: kind, mid: sec.mid, owner: owner, clock: clock, cfg: owner.cfg,
		log: owner.log.With(zap.String("track", id)), rids: sec.rids}
	ext := sec.ext
	t.ext.Store(&ext)
	empty := []*downTrack{}
	t.subs.Store(&empty)
	t.forward.Store(true)
	return t
}

// setForwarded applies the speaker detector's decision.
func (t *upTrack) setForwarded(forward, gate bool) {
	t.forward.Store(forward)
	t.gate.Store(gate)
}

func (t *upTrack) info() TrackInfo {
	return TrackInfo{ID: t.id, Kind: t.kind.String(), Muted: t.muted.Load()}
}

// upStream is one RTP stream (one SSRC) of a published track: a simulcast
// layer, or the whole track without simulcast. Only the goroutine that owns
// the publisher's transport ingress touches its unexported state.
type upStream struct {
	track *upTrack
	ssrc  uint32
	layer int
	cache *packetCache

	recv     recvStats
	loss     lossTracker
	wasMuted bool // the next forwarded packet resumes (after a mute or a gated stretch)

	lastPLI atomic.Int64 // nanoseconds since the call's epoch
	sr      atomic.Pointer[senderInfo]
	stats   layerStats // rate, liveness and picture size, for the allocator (layers.go)
}

// streamSet is a participant's published streams, replaced whole on every
// change (copy-on-write): looked up by SSRC on every packet, walked once per
// batch. A publisher has a handful of streams, so the lookup scans an array
// of SSRCs (no hashing, one cache line) before it falls back to the map.
type streamSet struct {
	ssrcs  []uint32
	list   []*upStream
	bySSRC map[uint32]*upStream
}

func newStreamSet(m map[uint32]*upStream) *streamSet {
	s := &streamSet{bySSRC: m}
	for ssrc, st := range m {
		s.ssrcs = append(s.ssrcs, ssrc)
		s.list = append(s.list, st)
	}
	return s
}

func (s *streamSet) get(ssrc uint32) *upStream {
	if len(s.ssrcs) <= 8 {
		for i, x := range s.ssrcs {
			if x == ssrc {
				return s.list[i]
			}
		}
		return nil
	}
	return s.bySSRC[ssrc]
}

// senderInfo is the publisher's latest sender report (RFC 3550 §6.4.1):
// NTP and RTP time of one instant, for lip sync downstream.
type senderInfo struct {
	ntp uint64
	rtp uint32
	at  int64 // arrival, nanoseconds since the epoch
}

func newUpStream(t *upTrack, ssrc uint32, layer int) *upStream {
	size := audioCacheSize
	if t.kind == webrtc.RTPCodecTypeVideo {
		size = videoCacheSize
	}
	s := &upStream{track: t, ssrc: ssrc, layer: layer, cache: newPacketCache(size)}
	s.lastPLI.Store(-int64(time.Hour))
	return s
}

// Packet flags the forwarder acts on.
const (
	flagKeyframe = 1 << iota // first packet of a VP8 key frame
	flagResume               // first packet after the publisher unmuted
)

// ingest is the packet path's entry for one decrypted RTP packet: cache it
// once, then rewrite, encrypt and queue it for every subscriber, all on the
// calling goroutine. hlen is the header length SRTP parsed into h.
func (s *upStream) ingest(pkt []byte, h *rtp.Header, hlen int, now int64, p *pump) {
	t := s.track
	end := len(pkt)
	if h.Padding && end > hlen {
		end -= int(pkt[end-1])
	}
	if end <= hlen { // padding only (bandwidth probes): nothing to forward
		return
	}
	p.counts.in(t.kind, len(pkt))
	s.recv.update(h.SequenceNumber, h.Timestamp, now, t.clock)
	s.loss.arrived(h.SequenceNumber, now)
	if !s.cache.store(h.SequenceNumber, pkt) {
		t.cfg.Observer.PacketDropped("oversized")
		return
	}
	var ex ingestExt
	parseExtensions(t.ext.Load(), h.GetExtension, &ex)
	if t.muted.Load() {
		s.wasMuted = true
		return
	}
	if t.kind == webrtc.RTPCodecTypeAudio {
		silent := t.meter.add(&ex)
		if t.gate.Load() && (silent || !t.forward.Load()) {
			s.wasMuted = true // top-N: not among the loudest, or silence
			return
		}
	}
	payload := pkt[hlen:end]
	if tap := t.cfg.Tap; tap != nil {
		tap(t.owner.id, t.id, payload)
	}
	var flags uint8
	if t.kind == webrtc.RTPCodecTypeVideo && isVP8Keyframe(payload) {
		flags |= flagKeyframe
	}
	if s.wasMuted {
		flags |= flagResume
		s.wasMuted = false
	}
	s.stats.observe(len(pkt), payload, flags&flagKeyframe != 0, now)
	for _, d := range *t.subs.Load() {
		d.forward(s, h, payload, &ex, flags, now, p)
	}
}

// addSubscriber and removeSubscriber copy the list: readers never see it change.
func (t *upTrack) addSubscriber(d *downTrack) {
	t.subsMu.Lock()
	defer t.subsMu.Unlock()
	next := append(slices.Clone(*t.subs.Load()), d)
	t.subs.Store(&next)
}

func (t *upTrack) removeSubscriber(d *downTrack) {
	t.subsMu.Lock()
	defer t.subsMu.Unlock()
	next := slices.DeleteFunc(slices.Clone(*t.subs.Load()), func(x *downTrack) bool { return x == d })
	t.subs.Store(&next)
}

// stream returns the layer's stream, or nil.
func (t *upTrack) stream(layer int) *upStream {
	if layer < 0 || layer >= maxLayers {
		return nil
	}
	return t.layers[layer].Load()
}

// requestKeyframe relays a PLI (RFC 4585 §6.3.1) to the publisher, at most once
// per PLIInterval however many subscribers ask.
func (s *upStream) requestKeyframe() {
	t := s.track
	if t.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	now := t.owner.call.now()
	last := s.lastPLI.Load()
	if now-last < int64(t.cfg.PLIInterval) || !s.lastPLI.CompareAndSwap(last, now) {
		return
	}
	t.cfg.Observer.PLI()
	t.owner.sendPLI(s.ssrc)
}

// requestKeyframes asks every layer of the track for a key frame.
func (t *upTrack) requestKeyframes() {
	for i := range t.layers {
		if s := t.layers[i].Load(); s != nil {
			s.requestKeyframe()
		}
	}
}

func (t *upTrack) setMuted(m bool) (changed bool) {
	if t.muted.Swap(m) == m {
		return false
	}
	if !m {
		for i := range t.layers {
			if s := t.layers[i].Load(); s != nil {
				s.lastPLI.Store(-int64(time.Hour))
			}
		}
		t.requestKeyframes() // subscribers restart on a key frame
	}
	return true
}
