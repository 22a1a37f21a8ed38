package client

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"go.uber.org/zap"
)

// Simulcast publishing (docs/signaling.md, "Video: simulcast, bandwidth and
// layers"). With Config.Simulcast the video track goes out as three
// encodings, rids q, h and f: a quarter, half and the full picture at a
// tenth, a third and all of VideoBitrate (150 kb/s, 500 kb/s, 1.5 Mb/s by
// default), as browsers send them. Each encoding is its own RTP stream
// of whole frames, each frame encrypted on its own (Config.Transform): a
// receiver of any one layer decrypts it without the others. The server's
// `layers` message says which encodings anybody receives; the others stop
// until they are wanted again, then restart with a key frame.

// SimulcastRIDs are the rids of the encodings, lowest first.
var SimulcastRIDs = []string{"q", "h", "f"}

var (
	simulcastScale = []int{4, 2, 1}               // picture size divisor
	simulcastShare = []float64{0.1, 1.0 / 3, 1.0} // of VideoBitrate
)

// sendLayer is one simulcast encoding of the video track.
type sendLayer struct {
	rid           string
	track         *webrtc.TrackLocalStaticSample
	bitrate       int
	width, height int
	active        atomic.Bool
	forceKey      atomic.Bool
	frames        atomic.Uint64
	keyFrames     atomic.Uint64
}

// SentLayerStats describes one simulcast encoding.
type SentLayerStats struct {
	RID           string
	SSRC          uint32
	Bitrate       int // target, bits per second
	Width, Height int
	Active        bool // not turned off by the server's `layers`
	Packets       uint64
	Bytes         uint64
	Frames        uint64
	KeyFrames     uint64
}

// newSimulcastTrack adds a sendonly video transceiver with three encodings.
func (c *Client) newSimulcastTrack() (*localTrack, error) {
	codec := vp8Codec()
	id := c.participantID + "-" + KindVideo
	var layers []*sendLayer
	for i, rid := range SimulcastRIDs {
		tr, err := webrtc.NewTrackLocalStaticSample(codec.RTPCodecCapability, id, c.participantID, webrtc.WithRTPStreamID(rid))
		if err != nil {
			return nil, fmt.Errorf("client: video layer %s: %w", rid, err)
		}
		l := &sendLayer{rid: rid, track: tr, bitrate: int(float64(c.cfg.VideoBitrate) * simulcastShare[i]),
			width: synthWidth / simulcastScale[i], height: synthHeight / simulcastScale[i]}
		l.active.Store(true)
		layers = append(layers, l)
	}
	tr, err := c.pub.pc.AddTransceiverFromTrack(layers[0].track,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, fmt.Errorf("client: add video transceiver: %w", err)
	}
	for _, l := range layers[1:] {
		if err := tr.Sender().AddEncoding(l.track); err != nil {
			return nil, fmt.Errorf("client: video layer %s: %w", l.rid, err)
		}
	}
	return &localTrack{kind: KindVideo, track: layers[0].track, sender: tr.Sender(), layers: layers}, nil
}

// sendLayers is sendLoop for a simulcast track: every frame interval, one
// frame of every active encoding.
func (c *Client) sendLayers(lt *localTrack) {
	select {
	case <-c.pub.connected:
	case <-c.ctx.Done():
		return
	}
	interval := time.Second / time.Duration(c.cfg.VideoFPS)
	synths := make([]*vp8Synth, len(lt.layers))
	skipped := make([]int, len(lt.layers)) // frames not sent while off
	for i, l := range lt.layers {
		synths[i] = newVP8Synth(l.bitrate, c.cfg.VideoFPS, c.cfg.KeyframeInterval)
		synths[i].width, synths[i].height = l.width, l.height
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		now := time.Now()
		muted := lt.muted.Load()
		if lt.forceKey.Swap(false) { // PLI on the track, mute, E2EE key switch
			for _, l := range lt.layers {
				l.forceKey.Store(true)
			}
		}
		for i, l := range lt.layers {
			if !l.active.Load() {
				skipped[i]++
				continue
			}
			frame, key := synths[i].next(now, l.forceKey.Swap(false), muted)
			if tf := c.cfg.Transform; tf != nil {
				frame = tf.Encrypt(KindVideo, frame)
			}
			if frame == nil {
				continue
			}
			// Frames not sent while the encoding was off still advance its
			// RTP clock: the timestamps follow the wall clock.
			s := media.Sample{Data: frame, Duration: interval, PrevDroppedPackets: uint16(min(skipped[i], 0xffff))}
			skipped[i] = 0
			if err := l.track.WriteSample(s); err != nil {
				c.log.Debug("write sample", zap.String("rid", l.rid), zap.Error(err))
			}
			l.frames.Add(1)
			lt.frames.Add(1)
			if key {
				l.keyFrames.Add(1)
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

// layersRTCPLoop reads the RTCP of every encoding: a PLI or FIR for one
// makes its next frame a key frame.
func (c *Client) layersRTCPLoop(lt *localTrack) {
	var wg sync.WaitGroup
	for _, l := range lt.layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				pkts, _, err := lt.sender.ReadSimulcastRTCP(l.rid)
				if err != nil {
					return
				}
				for _, p := range pkts {
					switch p.(type) {
					case *rtcp.PictureLossIndication:
						lt.plis.Add(1)
						l.forceKey.Store(true)
					case *rtcp.FullIntraRequest:
						lt.firs.Add(1)
						l.forceKey.Store(true)
					case *rtcp.TransportLayerNack:
						lt.nacks.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// layerStats describes the encodings of a simulcast track (nil otherwise).
func (lt *localTrack) layerStats(sent *sendCounter) []SentLayerStats {
	if lt.layers == nil {
		return nil
	}
	ssrcs := map[string]uint32{}
	for _, e := range lt.sender.GetParameters().Encodings {
		ssrcs[e.RID] = uint32(e.SSRC)
	}
	out := make([]SentLayerStats, 0, len(lt.layers))
	for _, l := range lt.layers {
		s := SentLayerStats{RID: l.rid, SSRC: ssrcs[l.rid], Bitrate: l.bitrate, Width: l.width, Height: l.height,
			Active: l.active.Load(), Frames: l.frames.Load(), KeyFrames: l.keyFrames.Load()}
		if s.SSRC != 0 {
			sc := sent.stream(s.SSRC)
			s.Packets, s.Bytes = sc.packets.Load(), sc.bytes.Load()
		}
		out = append(out, s)
	}
	return out
}

// onLayers applies a `layers` message: the encodings of trackID that
// anybody receives stay on, the others stop.
func (c *Client) onLayers(trackID string, rids []string) {
	for _, lt := range c.local {
		if lt.layers == nil || lt.track.ID() != trackID {
			continue
		}
		for _, l := range lt.layers {
			on := slices.Contains(rids, l.rid)
			if was := l.active.Swap(on); !was && on {
				l.forceKey.Store(true) // a restarted encoding begins with a key frame
			}
		}
		c.log.Debug("layers", zap.String("track", trackID), zap.Strings("rids", rids))
		c.layerMessages.Add(1)
	}
}

// LayerMessages counts the `layers` messages applied to our tracks.
func (c *Client) LayerMessages() int64 { return c.layerMessages.Load() }

// vp8KeyFrameSize reads width and height from a VP8 key frame (RFC 6386
// §9.1: 3-byte frame tag, start code 9d 01 2a, 14-bit sizes).
func vp8KeyFrameSize(frame []byte) (w, h int, ok bool) {
	if len(frame) < 10 || frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return 0, 0, false
	}
	return int(binary.LittleEndian.Uint16(frame[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(frame[8:]) & 0x3fff), true
}

// VideoSubscription is one video the client shows (the `subscription`
// message): a participant's video, or one of its tracks, at most
// MaxHeight pixels tall (0: no limit). Pinned videos go first when
// bandwidth is short.
type VideoSubscription struct {
	ParticipantID string `json:"participantId"`
	TrackID       string `json:"trackId,omitempty"`
	MaxHeight     int    `json:"maxHeight,omitempty"`
	Pinned        bool   `json:"pinned,omitempty"`
}

// Subscribe chooses the videos the server sends: exactly these (an empty
// list: none).
func (c *Client) Subscribe(videos []VideoSubscription) error {
	list := slices.Clone(videos)
	if list == nil {
		list = []VideoSubscription{}
	}
	return c.send(message{Type: "subscription", Video: &list})
}

// SubscribeDefault returns to the server's default: the videos of the
// last-N most recent speakers.
func (c *Client) SubscribeDefault() error { return c.send(message{Type: "subscription"}) }

// onVideoPaused records a `videoPaused` message.
func (c *Client) onVideoPaused(m *message) {
	key := m.ParticipantID + "/" + m.TrackID
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pausedVideos == nil {
		c.pausedVideos = map[string]string{}
	}
	if m.Paused {
		c.pausedVideos[key] = m.Reason
	} else {
		delete(c.pausedVideos, key)
	}
}

// VideoPaused reports whether the server paused a video toward this client
// (`videoPaused`) and why ("bandwidth" or "not_selected").
func (c *Client) VideoPaused(participantID, trackID string) (paused bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reason, paused = c.pausedVideos[participantID+"/"+trackID]
	return paused, reason
}
