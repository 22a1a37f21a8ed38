package client

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
	"go.uber.org/zap"
)

// Sample builder limits: how far (in packets) a frame may be held back
// waiting for a missing packet before it is dropped. Key frames at the
// default bitrate span ~20 packets and NACK retransmissions arrive within a
// round trip, so 256 packets (~1 s of video) and 50 (1 s of Opus) are ample.
const (
	videoMaxLate  = 256
	audioMaxLate  = 50
	maxFrameDelay = time.Second
	maxOpenFrames = 1024 // frames seen but never completed, before we forget them
)

// localTrack is one published synthetic track.
type localTrack struct {
	kind     string
	track    *webrtc.TrackLocalStaticSample
	sender   *webrtc.RTPSender
	muted    atomic.Bool
	forceKey atomic.Bool

	frames, keyFrames, plis, firs, nacks atomic.Uint64

	layers []*sendLayer // simulcast encodings (simulcast.go); nil: one stream
}

// newLocalTrack adds a sendonly transceiver with a synthetic track to the
// publish transport. The stream id is our participant id and the track id
// "<participant>-<kind>", which the server forwards as msid.
func (c *Client) newLocalTrack(kind string) (*localTrack, error) {
	if kind == KindVideo && c.cfg.Simulcast {
		return c.newSimulcastTrack()
	}
	codec := opusCodec()
	if kind == KindVideo {
		codec = vp8Codec()
	}
	id := c.participantID + "-" + kind
	track, err := webrtc.NewTrackLocalStaticSample(codec.RTPCodecCapability, id, c.participantID)
	if err != nil {
		return nil, fmt.Errorf("client: %s track: %w", kind, err)
	}
	tr, err := c.pub.pc.AddTransceiverFromTrack(track,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, fmt.Errorf("client: add %s transceiver: %w", kind, err)
	}
	return &localTrack{kind: kind, track: track, sender: tr.Sender()}, nil
}

// sendLoop writes one synthetic frame per frame interval once the publish
// transport is connected (writes before that would be dropped, and the
// first frame must be the key frame).
func (c *Client) sendLoop(lt *localTrack) {
	if lt.layers != nil {
		c.sendLayers(lt)
		return
	}
	select {
	case <-c.pub.connected:
	case <-c.ctx.Done():
		return
	}
	interval := opusFrameDuration
	var opus *opusSynth
	var vp8 *vp8Synth
	if lt.kind == KindVideo {
		interval = time.Second / time.Duration(c.cfg.VideoFPS)
		vp8 = newVP8Synth(c.cfg.VideoBitrate, c.cfg.VideoFPS, c.cfg.KeyframeInterval)
	} else {
		opus = newOpusSynth()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		now := time.Now()
		muted := lt.muted.Load()
		var frame []byte
		key := false
		if vp8 != nil {
			frame, key = vp8.next(now, lt.forceKey.Swap(false), muted)
		} else {
			frame = opus.next(now, muted)
		}
		if tf := c.cfg.Transform; tf != nil {
			frame = tf.Encrypt(lt.kind, frame)
		}
		if frame != nil {
			// Duration advances the RTP timestamp by the nominal frame
			// interval, so timestamps are regular and jitter shows only
			// the network and scheduling.
			if err := lt.track.WriteSample(media.Sample{Data: frame, Duration: interval}); err != nil {
				c.log.Debug("write sample", zap.String("kind", lt.kind), zap.Error(err))
			}
			lt.frames.Add(1)
			if key {
				lt.keyFrames.Add(1)
			}
		}
		select {
		case <-tick.C:
		case <-c.ctx.Done():
			return
		}
	}
}

// senderRTCPLoop reads RTCP for a published track. Reading is also what
// drives pion's interceptors (the NACK responder retransmits from here).
// A PLI or FIR makes the next video frame a key frame.
func (c *Client) senderRTCPLoop(lt *localTrack) {
	if lt.layers != nil {
		c.layersRTCPLoop(lt)
		return
	}
	for {
		pkts, _, err := lt.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication:
				lt.plis.Add(1)
				lt.forceKey.Store(true)
			case *rtcp.FullIntraRequest:
				lt.firs.Add(1)
				lt.forceKey.Store(true)
			case *rtcp.TransportLayerNack:
				lt.nacks.Add(1)
			}
		}
	}
}

func (lt *localTrack) stats(sent *sendCounter) SentTrackStats {
	s := SentTrackStats{
		TrackID:   lt.track.ID(),
		Kind:      lt.kind,
		Frames:    lt.frames.Load(),
		KeyFrames: lt.keyFrames.Load(),
		PLIs:      lt.plis.Load(),
		FIRs:      lt.firs.Load(),
		NACKs:     lt.nacks.Load(),
		Muted:     lt.muted.Load(),
	}
	s.Layers = lt.layerStats(sent)
	if enc := lt.sender.GetParameters().Encodings; len(enc) > 0 {
		s.SSRC = uint32(enc[0].SSRC)
		sc := sent.stream(s.SSRC)
		s.Packets, s.Bytes = sc.packets.Load(), sc.bytes.Load()
	}
	return s
}

// onTrack starts receiving a remote track on the subscribe transport. The
// publisher is the msid stream id (docs/signaling.md, "Transports").
func (c *Client) onTrack(track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	codec := track.Codec()
	rs := &recvStats{
		participantID: track.StreamID(),
		trackID:       track.ID(),
		kind:          track.Kind().String(),
		codec:         codec.MimeType,
		ssrc:          uint32(track.SSRC()),
		clockRate:     codec.ClockRate,
	}
	c.log.Debug("remote track", zap.String("from", rs.participantID), zap.String("track", rs.trackID),
		zap.String("kind", rs.kind), zap.String("codec", rs.codec))
	c.mu.Lock()
	c.remote = append(c.remote, rs)
	c.remoteTracks[rs] = track
	c.mu.Unlock()
	c.goTracked(func() { c.readTrack(track, rs) })
	// Reading the receiver's RTCP (sender reports) feeds pion's receiver
	// report interceptor; nothing else needs it.
	c.goTracked(func() {
		for {
			if _, _, err := recv.ReadRTCP(); err != nil {
				return
			}
		}
	})
}

// readTrack reads RTP, measures it, rebuilds frames with a sample builder
// and hands each frame to onFrame. Decryption happens only after
// depacketization, as it would in a browser's RTCRtpScriptTransform.
func (c *Client) readTrack(track *webrtc.TrackRemote, rs *recvStats) {
	defer rs.end()
	var dep rtp.Depacketizer = &codecs.OpusPacket{}
	maxLate := uint16(audioMaxLate)
	if strings.EqualFold(rs.codec, webrtc.MimeTypeVP8) {
		dep, maxLate = &codecs.VP8Packet{}, videoMaxLate
	}
	sb := samplebuilder.New(maxLate, dep, rs.clockRate, samplebuilder.WithMaxTimeDelay(maxFrameDelay))
	// The sample builder emits a frame only when the next frame begins, so
	// latency is measured at the arrival of the frame's last packet, kept
	// here by RTP timestamp.
	lastArrival := map[uint32]time.Time{}
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		rs.onPacket(pkt, now)
		lastArrival[pkt.Timestamp] = now
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			at, ok := lastArrival[s.PacketTimestamp]
			if !ok {
				at = now
			}
			delete(lastArrival, s.PacketTimestamp)
			c.onFrame(rs, s.Data, at)
		}
		if len(lastArrival) > maxOpenFrames {
			clear(lastArrival)
		}
	}
}

// onFrame decrypts a received frame (when a transform is set), then counts
// it and reads its marker.
func (c *Client) onFrame(rs *recvStats, frame []byte, arrived time.Time) {
	if tf := c.cfg.Transform; tf != nil {
		plain, err := tf.Decrypt(rs.kind, frame)
		if err != nil {
			rs.onDecryptFailure()
			return
		}
		frame = plain
	}
	key := rs.kind == KindVideo && isVP8KeyFrame(frame)
	if w, h, ok := vp8KeyFrameSize(frame); key && ok {
		rs.onKeyFrameSize(w, h)
	}
	_, sent, marked := readMarker(rs.kind, frame)
	rs.onFrame(key, marked, arrived.Sub(sent))
}
