package sfu

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Cache sizes: ~3 s of 1.5 Mb/s video, ~5 s of Opus. Powers of two (packetCache).
const (
	videoCacheSize = 512
	audioCacheSize = 256
)

// upTrack is one published track. Its reader goroutine is the only writer of the
// packet cache; fan-out reads a copy-on-write list of down tracks, so forwarding
// takes no lock and allocates nothing.
type upTrack struct {
	id    string
	kind  webrtc.RTPCodecType
	owner *Participant
	ssrc  uint32

	remote *webrtc.TrackRemote
	mime   string
	cache  *packetCache
	log    *zap.Logger
	obs    Observer
	epoch  time.Time
	tap    func(participant, trackID string, payload []byte)

	subs  atomic.Pointer[[]*downTrack]
	muted atomic.Bool
	// wasMuted is reader-goroutine state: the next forwarded packet resumes.
	wasMuted bool
	lastPLI  atomic.Int64 // nanoseconds since epoch of the last relayed keyframe request

	mu          sync.Mutex // serializes changes to subs
	unpublished bool
	done        chan struct{} // the reader's goroutine is finished with this track
}

func newUpTrack(owner *Participant, id string, remote *webrtc.TrackRemote) *upTrack {
	size := audioCacheSize
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		size = videoCacheSize
	}
	t := &upTrack{
		id: id, kind: remote.Kind(), owner: owner, ssrc: uint32(remote.SSRC()),
		remote: remote, mime: remote.Codec().MimeType, cache: newPacketCache(size),
		log:   owner.log.With(zap.String("track", id)),
		obs:   owner.call.cfg.Observer,
		epoch: owner.call.epoch,
		tap:   owner.call.cfg.Tap,
		done:  make(chan struct{}),
	}
	empty := []*downTrack{}
	t.subs.Store(&empty)
	t.lastPLI.Store(-int64(time.Hour))
	return t
}

func (t *upTrack) info() TrackInfo {
	return TrackInfo{ID: t.id, Kind: t.kind.String(), Muted: t.muted.Load()}
}

// readLoop is the packet path's entry. It ends when the publisher's transport
// closes.
func (t *upTrack) readLoop() {
	buf := make([]byte, maxPacketSize)
	for {
		n, _, err := t.remote.Read(buf)
		if err != nil {
			return
		}
		t.ingest(buf[:n])
	}
}

// ingest caches one packet once and hands its sequence number to every
// subscriber's queue. Only the reader goroutine calls it.
func (t *upTrack) ingest(pkt []byte) {
	start, end, ok := rtpPayload(pkt)
	if !ok || start == end { // malformed, or padding only (bandwidth probes)
		t.obs.PacketDropped("malformed")
		return
	}
	t.obs.PacketIn(t.kind, len(pkt))
	seq := rtpSeq(pkt)
	if !t.cache.store(seq, pkt) {
		t.obs.PacketDropped("oversized")
		return
	}
	if t.muted.Load() {
		t.wasMuted = true
		return
	}
	if t.tap != nil {
		t.tap(t.owner.id, t.id, pkt[start:end])
	}
	ref := packetRef{seq: seq, at: int64(time.Since(t.epoch))}
	if t.kind == webrtc.RTPCodecTypeVideo && isVP8Keyframe(pkt[start:end]) {
		ref.flags |= flagKeyframe
	}
	if t.wasMuted {
		ref.flags |= flagResume
		t.wasMuted = false
	}
	for _, d := range *t.subs.Load() {
		d.forward(ref)
	}
}

// addSubscriber and removeSubscriber copy the list: readers never see it change.
func (t *upTrack) addSubscriber(d *downTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := append(slices.Clone(*t.subs.Load()), d)
	t.subs.Store(&next)
}

func (t *upTrack) removeSubscriber(d *downTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(*t.subs.Load()), func(x *downTrack) bool { return x == d })
	t.subs.Store(&next)
}

func (t *upTrack) subscribers() []*downTrack { return *t.subs.Load() }

// requestKeyframe relays a PLI (RFC 4585 §6.3.1) to the publisher, at most once
// per PLIInterval however many subscribers ask.
func (t *upTrack) requestKeyframe() {
	if t.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	now := int64(time.Since(t.epoch))
	last := t.lastPLI.Load()
	if now-last < int64(t.owner.call.cfg.PLIInterval) || !t.lastPLI.CompareAndSwap(last, now) {
		return
	}
	t.obs.PLI()
	if err := t.owner.pub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: t.ssrc}}); err != nil {
		t.log.Debug("relay PLI", zap.Error(err))
	}
}

func (t *upTrack) setMuted(m bool) (changed bool) {
	if t.muted.Swap(m) == m {
		return false
	}
	if !m {
		t.lastPLI.Store(-int64(time.Hour))
		t.requestKeyframe() // subscribers restart on a key frame
	}
	return true
}
