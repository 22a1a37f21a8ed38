package client

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

func TestVP8SynthFrames(t *testing.T) {
	s := newVP8Synth(1_500_000, 30, 3*time.Second)
	now := time.Unix(1700000000, 123)
	for i := 0; i < 181; i++ {
		frame, key := s.next(now, false, false)
		wantKey := i%90 == 0 // every 3 s at 30 fps
		if key != wantKey || isVP8KeyFrame(frame) != wantKey {
			t.Fatalf("frame %d: key %v, bit says %v, want %v", i, key, isVP8KeyFrame(frame), wantKey)
		}
		tag := uint32(frame[0]) | uint32(frame[1])<<8 | uint32(frame[2])<<16
		if version, show, firstPart := tag>>1&7, tag>>4&1, int(tag>>5); version != 0 || show != 1 ||
			firstPart < 1 || firstPart > len(frame)-clearPrefixLen(KindVideo, frame) {
			t.Fatalf("frame %d: tag version %d show %d first_part_size %d (len %d)", i, version, show, firstPart, len(frame))
		}
		if key {
			if frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
				t.Fatalf("frame %d: start code % x", i, frame[3:6])
			}
			w, h := binary.LittleEndian.Uint16(frame[6:])&0x3fff, binary.LittleEndian.Uint16(frame[8:])&0x3fff
			if w != 640 || h != 360 {
				t.Fatalf("frame %d: %dx%d", i, w, h)
			}
		}
		counter, sent, ok := readMarker(KindVideo, frame)
		if !ok || counter != uint32(i) || !sent.Equal(now) {
			t.Fatalf("frame %d: marker %v %d %v", i, ok, counter, sent)
		}
	}

	// A forced key frame (PLI) restarts the schedule.
	if _, key := s.next(now, true, false); !key {
		t.Fatal("forced frame is not a key frame")
	}
	for i := 1; i < 90; i++ {
		if _, key := s.next(now, false, false); key {
			t.Fatalf("unexpected key frame %d after the forced one", i)
		}
	}
	if _, key := s.next(now, false, false); !key {
		t.Fatal("no periodic key frame 90 frames after the forced one")
	}

	// Muted frames keep header and marker only.
	if f, _ := s.next(now, false, true); len(f) != vp8DeltaHeaderLen+markerLen {
		t.Fatalf("muted frame of %d bytes", len(f))
	}
}

func TestVP8SynthBitrate(t *testing.T) {
	for _, tc := range []struct {
		bitrate, fps int
		keyEvery     time.Duration
	}{
		{1_500_000, 30, 3 * time.Second},
		{500_000, 15, time.Second},
		{2_500_000, 60, 2 * time.Second},
		{300_000, 30, 500 * time.Millisecond},
		{150_000, 10, 10 * time.Millisecond}, // every frame a key frame
	} {
		s := newVP8Synth(tc.bitrate, tc.fps, tc.keyEvery)
		const seconds = 10
		total := 0
		for i := 0; i < seconds*tc.fps; i++ {
			f, _ := s.next(time.Now(), false, false)
			total += len(f)
		}
		got := float64(total*8) / seconds
		if math.Abs(got-float64(tc.bitrate))/float64(tc.bitrate) > 0.10 {
			t.Errorf("%+v: %.0f b/s", tc, got)
		}
	}
}

func TestOpusSynth(t *testing.T) {
	s := newOpusSynth()
	now := time.Now()
	total := 0
	for i := 0; i < 50; i++ { // one second of 20 ms frames
		f := s.next(now, false)
		if f[0] != opusTOC || f[0]>>3 != 15 || f[0]&0x07 != 0 {
			t.Fatalf("TOC %#x", f[0])
		}
		if c, sent, ok := readMarker(KindAudio, f); !ok || c != uint32(i) || !sent.Equal(now) {
			t.Fatalf("frame %d marker %v %d", i, ok, c)
		}
		total += len(f)
	}
	if total*8 != 32_000 {
		t.Errorf("opus: %d b/s", total*8)
	}
	if f := s.next(now, true); len(f) != opusTOCLen+markerLen {
		t.Errorf("muted opus frame of %d bytes", len(f))
	}
}

func TestMarker(t *testing.T) {
	sent := time.Unix(0, 1_700_000_000_987_654_321)
	key := make([]byte, 40)
	writeVP8Header(key, true)
	putMarker(key[vp8KeyHeaderLen:], 7, sent)
	if c, at, ok := readMarker(KindVideo, key); !ok || c != 7 || !at.Equal(sent) {
		t.Errorf("key: %v %d %v", ok, c, at)
	}
	if string(key[vp8KeyHeaderLen:vp8KeyHeaderLen+4]) != "ORVL" {
		t.Errorf("magic %q", key[vp8KeyHeaderLen:vp8KeyHeaderLen+4])
	}
	// No marker: encrypted or foreign frames.
	for _, f := range [][]byte{nil, {0x01}, make([]byte, 40)} {
		if _, _, ok := readMarker(KindVideo, f); ok {
			t.Errorf("marker found in % x", f)
		}
	}
	if clearPrefixLen(KindAudio, []byte{1, 2}) != 1 || clearPrefixLen("data", []byte{1}) != 0 {
		t.Error("clear prefix lengths")
	}
}
