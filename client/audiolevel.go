package client

import (
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Audio levels (RFC 6464) on the synthetic microphone: an interceptor
// stamps every outgoing Opus packet with the client's current level, under
// the extension ID the publish transport negotiated. The server reads it to
// find who speaks (it is a header extension, outside the E2EE payload).

// DefaultAudioLevel is what a publishing client says it sends until told
// otherwise: speech at -30 dBov (RFC 6464 §3 levels are -dBov, 0 loudest,
// 127 silence).
const DefaultAudioLevel = 30

// Silence is the level of a microphone that picks up nothing.
const Silence = 127

type levelStamper struct {
	interceptor.NoOp
	level atomic.Uint32 // -dBov
}

func newLevelStamper(level uint8) *levelStamper {
	s := &levelStamper{}
	s.level.Store(uint32(level))
	return s
}

// NewInterceptor implements interceptor.Factory: both transports share it.
func (s *levelStamper) NewInterceptor(string) (interceptor.Interceptor, error) { return s, nil }

func (s *levelStamper) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			id = uint8(e.ID)
		}
	}
	if id == 0 || info.MimeType != webrtc.MimeTypeOpus {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		l := uint8(s.level.Load())
		v := l
		if l < Silence {
			v |= 0x80 // V: voice activity
		}
		if err := h.SetExtension(id, []byte{v}); err != nil {
			return 0, err
		}
		return w.Write(h, payload, a)
	})
}

// registerAudioLevel offers the extension on audio m-sections.
func registerAudioLevel(m *webrtc.MediaEngine) error {
	return m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio)
}

// SetAudioLevel changes the level the client's microphone reports, in -dBov
// (0 loudest, Silence = 127).
func (c *Client) SetAudioLevel(dBov uint8) {
	c.levels.level.Store(uint32(min(dBov, Silence)))
}

func cfgAudioLevel(c Config) uint8 {
	if c.AudioLevel == 0 {
		return DefaultAudioLevel
	}
	return min(c.AudioLevel, Silence)
}

// Speaker is one entry of the server's `speakers` event: a participant who
// speaks, and its level from 0 (silence) to 1.
type Speaker struct {
	ParticipantID string  `json:"participantId"`
	Level         float64 `json:"level"`
}

// SpeakersEvent is the latest `speakers` event and how many have arrived.
type SpeakersEvent struct {
	Speakers []Speaker
	Dominant string
	At       time.Time
	Count    int
}

func (c *Client) onSpeakers(m *message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.speakers = SpeakersEvent{Speakers: m.Speakers, Dominant: m.Dominant, At: time.Now(), Count: c.speakers.Count + 1}
}

// Speakers returns the latest `speakers` event (Count 0: none yet).
func (c *Client) Speakers() SpeakersEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.speakers
}
