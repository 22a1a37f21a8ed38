package sfu

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// packetRef is what travels through a subscriber's queue: which track, which
// cached packet. Never the bytes.
type packetRef struct {
	dt    *downTrack
	at    int64 // arrival, nanoseconds since the call's epoch
	seq   uint16
	flags uint8
}

const (
	flagKeyframe   = 1 << iota // first packet of a VP8 key frame
	flagRetransmit             // answer a NACK: seq is the outgoing sequence number
	flagResume                 // first packet after the publisher unmuted
)

// subscriber owns one participant's outgoing media: a bounded queue fed by every
// publisher's reader goroutine, and the single goroutine that writes it. A full
// queue drops the newest packet (counted): a slow subscriber loses media but never
// slows a publisher or another subscriber.
type subscriber struct {
	queue chan packetRef
	obs   Observer
	log   *zap.Logger
	pc    *webrtc.PeerConnection
	epoch time.Time

	tracks  atomic.Pointer[[]*downTrack] // for sender reports
	dropped atomic.Uint64

	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newSubscriber(pc *webrtc.PeerConnection, cfg *Config, epoch time.Time, log *zap.Logger) *subscriber {
	s := &subscriber{
		queue: make(chan packetRef, cfg.QueueSize),
		obs:   cfg.Observer, log: log, pc: pc, epoch: epoch,
		done: make(chan struct{}),
	}
	empty := []*downTrack{}
	s.tracks.Store(&empty)
	s.wg.Add(1)
	go s.run()
	return s
}

func (s *subscriber) enqueue(ref packetRef) {
	select {
	case s.queue <- ref:
	default:
		s.dropped.Add(1)
		s.obs.PacketDropped("queue_full")
	}
}

// reportInterval is how often sender reports go out: RFC 3550 §6.2 suggests
// about 5 s at minimum; receivers use them for lip sync and RTT, so sooner helps.
const reportInterval = time.Second

func (s *subscriber) run() {
	defer s.wg.Done()
	buf := make([]byte, maxPacketSize)
	tick := time.NewTicker(reportInterval)
	defer tick.Stop()
	for {
		select {
		case ref := <-s.queue:
			s.process(ref, buf)
		case <-tick.C:
			s.sendReports()
		case <-s.done:
			return
		}
	}
}

// process writes one queued packet; buf is the writer's scratch buffer.
func (s *subscriber) process(ref packetRef, buf []byte) {
	if ref.flags&flagRetransmit != 0 {
		ref.dt.writeRetransmit(ref.seq, buf)
	} else {
		ref.dt.writeForward(ref, buf)
	}
}

func (s *subscriber) sendReports() {
	now := time.Now()
	since := time.Since(s.epoch)
	var pkts []rtcp.Packet
	for _, d := range *s.tracks.Load() {
		if sr := d.senderReport(now, since); sr != nil {
			pkts = append(pkts, sr)
		}
	}
	if len(pkts) == 0 {
		return
	}
	if err := s.pc.WriteRTCP(pkts); err != nil {
		s.log.Debug("sender reports", zap.Error(err))
	}
}

func (s *subscriber) setTracks(list []*downTrack) { s.tracks.Store(&list) }

func (s *subscriber) close() {
	s.once.Do(func() { close(s.done) })
	s.wg.Wait()
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
