package client

import (
	"encoding/binary"
	"math/rand/v2"
	"time"
)

// Synthetic media. The client sends no real audio or video: it sends frames
// whose codec headers look real (so the SFU, which reads the VP8 key frame bit,
// and the receivers' depacketizers behave as with a camera) and whose body
// carries a marker for end-to-end measurements, then filler.
//
// Frame layout: [codec clear prefix][marker (16 bytes)][filler]. The clear
// prefix is what E2EE leaves unencrypted (DESIGN.md, "End-to-end encryption").

const (
	// markerLen is the size of the measurement marker: 4-byte magic "ORVL",
	// 4-byte frame counter, 8-byte send time in unix nanoseconds, big endian.
	markerLen   = 16
	markerMagic = "ORVL"

	// vp8KeyHeaderLen: RFC 6386 §9.1, 3-byte frame tag plus, for key frames,
	// the 3-byte start code and two 16-bit width/height fields.
	vp8KeyHeaderLen = 10
	// vp8DeltaHeaderLen: a delta (inter) frame has only the 3-byte frame tag.
	vp8DeltaHeaderLen = 3
	// opusTOCLen: RFC 6716 §3.1, one TOC byte starts every Opus packet.
	opusTOCLen = 1

	// synthWidth x synthHeight is the resolution written into key frames.
	synthWidth  = 640
	synthHeight = 360

	// keyToDeltaRatio: a VP8 key frame is typically several times larger than
	// a delta frame at the same quality; 4x keeps the per-GOP average honest
	// while making key frames span several RTP packets, as in real streams.
	keyToDeltaRatio = 4

	// opusFrameDuration is WebRTC's usual Opus packetization (RFC 7587 §4.2,
	// "ptime" 20 ms).
	opusFrameDuration = 20 * time.Millisecond
	// opusFrameLen: 80 bytes every 20 ms = 32 kb/s, a common WebRTC voice rate.
	opusFrameLen = 80
	// opusTOC: RFC 6716 §3.1, config 15 (hybrid, fullband, 20 ms), mono (s=0),
	// one frame in the packet (c=0): 15<<3 = 0x78.
	opusTOC = 0x78
)

// clearPrefixLen returns how many leading bytes of a frame of the given kind
// stay unencrypted: VP8 10 for key frames (RFC 6386 §9.1, frame tag bit 0 is
// 0 for key frames) and 3 otherwise; Opus 1 (the TOC byte).
func clearPrefixLen(kind string, frame []byte) int {
	switch kind {
	case KindVideo:
		if len(frame) == 0 {
			return 0
		}
		if isVP8KeyFrame(frame) {
			return vp8KeyHeaderLen
		}
		return vp8DeltaHeaderLen
	case KindAudio:
		return opusTOCLen
	}
	return 0
}

// isVP8KeyFrame reports the RFC 6386 §9.1 frame type: bit 0 of the first
// byte is 0 for a key frame.
func isVP8KeyFrame(frame []byte) bool {
	return len(frame) > 0 && frame[0]&0x01 == 0
}

// putMarker writes the marker at b[0:16].
func putMarker(b []byte, counter uint32, sent time.Time) {
	copy(b[0:4], markerMagic)
	binary.BigEndian.PutUint32(b[4:8], counter)
	binary.BigEndian.PutUint64(b[8:16], uint64(sent.UnixNano()))
}

// readMarker finds the marker after the clear prefix of a (decrypted) frame.
func readMarker(kind string, frame []byte) (counter uint32, sent time.Time, ok bool) {
	off := clearPrefixLen(kind, frame)
	if len(frame) < off+markerLen || string(frame[off:off+4]) != markerMagic {
		return 0, time.Time{}, false
	}
	counter = binary.BigEndian.Uint32(frame[off+4 : off+8])
	sent = time.Unix(0, int64(binary.BigEndian.Uint64(frame[off+8:off+16])))
	return counter, sent, true
}

// newFiller returns n bytes of cheap pseudo-random filler: real compressed
// media is high-entropy, and constant bytes could make a transport or test
// behave unlike real traffic.
func newFiller(n int) []byte {
	r := rand.New(rand.NewPCG(0x4f52564c, uint64(n)))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// vp8Synth generates VP8-shaped frames at a target bitrate. Not safe for
// concurrent use; each video track has its own.
type vp8Synth struct {
	keyLen, deltaLen int
	gop              int // frames from one periodic key frame to the next
	untilKey         int // frames until the next periodic key frame
	counter          uint32
	buf, filler      []byte
	width, height    int // written into key frames (simulcast layers differ)
}

// newVP8Synth sizes frames so that one key frame every gop frames plus
// delta frames in between add up to bitrate: gop*avg = key + (gop-1)*delta
// with key = keyToDeltaRatio*delta.
func newVP8Synth(bitrate, fps int, keyInterval time.Duration) *vp8Synth {
	gop := int(keyInterval * time.Duration(fps) / time.Second)
	if gop < 1 {
		gop = 1
	}
	avg := float64(bitrate) / 8 / float64(fps)
	var keyLen, deltaLen int
	if gop == 1 {
		keyLen, deltaLen = int(avg), int(avg)
	} else {
		d := avg * float64(gop) / float64(gop-1+keyToDeltaRatio)
		keyLen, deltaLen = int(d*keyToDeltaRatio), int(d)
	}
	keyLen = max(keyLen, vp8KeyHeaderLen+markerLen)
	deltaLen = max(deltaLen, vp8DeltaHeaderLen+markerLen)
	return &vp8Synth{
		keyLen:   keyLen,
		deltaLen: deltaLen,
		gop:      gop,
		buf:      make([]byte, keyLen),
		filler:   newFiller(keyLen),
		width:    synthWidth,
		height:   synthHeight,
	}
}

// next returns the next frame, a key frame when one is due or forceKey is
// set (a PLI/FIR arrived). The periodic schedule restarts after a forced key
// frame, as real encoders do. While muted the client keeps sending tiny
// frames (header and marker only), like a browser sending black frames or
// silence for a disabled track, so RTP timestamps and sequence numbers stay
// continuous and the receivers' loss and jitter figures stay meaningful.
// The returned slice is valid until the next call.
func (s *vp8Synth) next(now time.Time, forceKey, muted bool) (frame []byte, key bool) {
	key = forceKey || s.untilKey <= 0
	if key {
		s.untilKey = s.gop
	}
	s.untilKey--

	n, hdr := s.deltaLen, vp8DeltaHeaderLen
	if key {
		n, hdr = s.keyLen, vp8KeyHeaderLen
	}
	if muted {
		n = hdr + markerLen
	}
	frame = s.buf[:n]
	writeVP8Size(frame, key, s.width, s.height)
	putMarker(frame[hdr:], s.counter, now)
	copy(frame[hdr+markerLen:], s.filler)
	s.counter++
	return frame, key
}

// writeVP8Header writes the RFC 6386 §9.1 uncompressed data chunk: a 3-byte
// little-endian frame tag (bit 0 frame type, 0 = key; bits 1-3 version;
// bit 4 show_frame; bits 5-23 first_part_size) and, for key frames, the start
// code 0x9d 0x01 0x2a and 14-bit width/height with 2-bit scaling (0).
func writeVP8Header(frame []byte, key bool) { writeVP8Size(frame, key, synthWidth, synthHeight) }

// writeVP8Size is writeVP8Header for a picture of width × height.
func writeVP8Size(frame []byte, key bool, width, height int) {
	hdr := vp8DeltaHeaderLen
	if key {
		hdr = vp8KeyHeaderLen
	}
	// A plausible first partition (modes, probabilities): about an eighth of
	// the frame, within the 19-bit field and never beyond the frame.
	firstPart := min(max((len(frame)-hdr)/8, 1), 1<<19-1)
	tag := uint32(firstPart)<<5 | 1<<4 // version 0, show_frame 1
	if !key {
		tag |= 1
	}
	frame[0], frame[1], frame[2] = byte(tag), byte(tag>>8), byte(tag>>16)
	if key {
		frame[3], frame[4], frame[5] = 0x9d, 0x01, 0x2a
		binary.LittleEndian.PutUint16(frame[6:8], uint16(width)&0x3fff)
		binary.LittleEndian.PutUint16(frame[8:10], uint16(height)&0x3fff)
	}
}

// opusSynth generates Opus-shaped 20 ms frames.
type opusSynth struct {
	counter     uint32
	buf, filler []byte
}

func newOpusSynth() *opusSynth {
	return &opusSynth{buf: make([]byte, opusFrameLen), filler: newFiller(opusFrameLen)}
}

// next returns the next 20 ms frame; valid until the next call.
func (s *opusSynth) next(now time.Time, muted bool) []byte {
	n := opusFrameLen
	if muted {
		n = opusTOCLen + markerLen
	}
	frame := s.buf[:n]
	frame[0] = opusTOC
	putMarker(frame[opusTOCLen:], s.counter, now)
	copy(frame[opusTOCLen+markerLen:], s.filler)
	s.counter++
	return frame
}
