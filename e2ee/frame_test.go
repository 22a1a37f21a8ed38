package e2ee

import (
	"bytes"
	"errors"
	"testing"
)

func vp8Frame(key bool, n int) []byte {
	f := make([]byte, n)
	for i := range f {
		f[i] = byte(0x40 + i)
	}
	if n > 0 {
		f[0] = 0x50 // bit 0 clear: key frame (RFC 6386 §9.1)
		if !key {
			f[0] = 0x51
		}
	}
	return f
}

func TestClearPrefixLen(t *testing.T) {
	cases := []struct {
		codec Codec
		frame []byte
		want  int
	}{
		{CodecVP8, vp8Frame(true, 100), 10},
		{CodecVP8, vp8Frame(false, 100), 3},
		{CodecVP8, vp8Frame(true, 4), 4},
		{CodecVP8, vp8Frame(false, 2), 2},
		{CodecVP8, nil, 0},
		{CodecOpus, []byte{0xfc, 1, 2}, 1},
		{CodecOpus, nil, 0},
		{CodecOther, []byte{1, 2, 3}, 0},
		{Codec(99), []byte{1, 2, 3}, 0},
	}
	for _, tc := range cases {
		if got := ClearPrefixLen(tc.codec, tc.frame); got != tc.want {
			t.Errorf("%v %x: %d, want %d", tc.codec, tc.frame, got, tc.want)
		}
	}
	if CodecFromMimeType("video/VP8") != CodecVP8 || CodecFromMimeType("audio/OPUS") != CodecOpus ||
		CodecFromMimeType("video/H264") != CodecOther || CodecVP8.String() != "vp8" {
		t.Error("CodecFromMimeType/String")
	}
}

// TestFrameRoundTrip encrypts frames of every length around the prefix
// sizes for each codec and suite, checks the layout
// [clear prefix][SFrame header][ciphertext+tag], and decrypts.
func TestFrameRoundTrip(t *testing.T) {
	type gen struct {
		codec Codec
		mk    func(n int) []byte
	}
	gens := []gen{
		{CodecVP8, func(n int) []byte { return vp8Frame(true, n) }},
		{CodecVP8, func(n int) []byte { return vp8Frame(false, n) }},
		{CodecOpus, func(n int) []byte { return bytes.Repeat([]byte{0x78}, n) }},
		{CodecOther, func(n int) []byte { return bytes.Repeat([]byte{0x5a}, n) }},
	}
	for _, s := range allSuites() {
		send, recv := pair(t, s, 0xbeef, []byte("frame key"))
		for _, g := range gens {
			for _, n := range []int{0, 1, 2, 3, 4, 9, 10, 11, 12, 200} {
				frame := g.mk(n)
				enc, err := EncryptFrame(send, 0xbeef, g.codec, frame, nil)
				if err != nil {
					t.Fatal(err)
				}
				p := ClearPrefixLen(g.codec, frame)
				if !bytes.Equal(enc[:p], frame[:p]) {
					t.Fatalf("%v %v n=%d: prefix not clear", s, g.codec, n)
				}
				h, hl, err := ParseHeader(enc[p:])
				if err != nil || h.KID != 0xbeef || len(enc) != p+hl+(n-p)+s.TagSize() {
					t.Fatalf("%v %v n=%d: bad layout %x", s, g.codec, n, enc)
				}
				if !LooksProtected(g.codec, enc) {
					t.Fatalf("%v %v n=%d: LooksProtected false for %x", s, g.codec, n, enc)
				}
				dec, err := DecryptFrame(recv, g.codec, enc, []byte{})
				if err != nil || !bytes.Equal(dec, frame) {
					t.Fatalf("%v %v n=%d: DecryptFrame = %x, %v; want %x", s, g.codec, n, dec, err, frame)
				}
				if p > 0 { // the clear prefix is authenticated
					bad := bytes.Clone(enc)
					bad[p-1] ^= 0x80
					if _, err := DecryptFrame(recv, g.codec, bad, nil); err == nil {
						t.Fatalf("%v %v n=%d: tampered prefix accepted", s, g.codec, n)
					}
				}
			}
		}
	}
}

func TestDecryptFrameErrors(t *testing.T) {
	send, recv := pair(t, DefaultSuite, 5, []byte("k"))
	enc, _ := EncryptFrame(send, 5, CodecVP8, vp8Frame(true, 50), nil)
	other, _ := NewContext(DefaultSuite)
	if _, err := DecryptFrame(other, CodecVP8, enc, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := DecryptFrame(recv, CodecOpus, enc, nil); err == nil {
		t.Error("wrong codec accepted")
	}
	for _, f := range [][]byte{nil, {0x50}, vp8Frame(true, 10), vp8Frame(true, 27)} {
		if _, err := DecryptFrame(recv, CodecVP8, f, nil); err == nil {
			t.Errorf("garbage %x accepted", f)
		}
	}
	buf := make([]byte, 0, 200)
	in := append(buf[100:100], enc...)
	if _, err := DecryptFrame(recv, CodecVP8, in, buf); !errors.Is(err, ErrOverlap) {
		t.Errorf("DecryptFrame overlap: %v", err)
	}
	if _, err := EncryptFrame(send, 5, CodecVP8, in, buf); !errors.Is(err, ErrOverlap) {
		t.Errorf("EncryptFrame overlap: %v", err)
	}
}

func TestLooksProtectedPlaintext(t *testing.T) {
	// A VP8 key frame whose byte 10 is 0x80 0x00 (an extended KID of 0,
	// not minimal) cannot be an SFrame header at offset 10.
	f := vp8Frame(true, 40)
	f[10], f[11] = 0x80, 0x00
	if LooksProtected(CodecVP8, f) {
		t.Error("plaintext VP8 frame looks protected")
	}
	if LooksProtected(CodecOpus, []byte{0x78}) || LooksProtected(CodecOther, nil) {
		t.Error("tiny plaintext looks protected")
	}
}

// FuzzDecryptFrame: DecryptFrame and LooksProtected never panic, and
// DecryptFrame never accepts arbitrary bytes.
func FuzzDecryptFrame(f *testing.F) {
	send, recv := pair(f, DefaultSuite, 9, []byte("fuzz key"))
	for _, c := range []Codec{CodecOther, CodecOpus, CodecVP8} {
		for _, n := range []int{0, 2, 10, 40} {
			enc, _ := EncryptFrame(send, 9, c, vp8Frame(n%20 == 0, n), nil)
			f.Add(uint8(c), enc)
			f.Add(uint8(c), enc[:len(enc)/2])
		}
	}
	f.Fuzz(func(t *testing.T, codec uint8, frame []byte) {
		_ = LooksProtected(Codec(codec%3), frame)
		out, err := DecryptFrame(recv, Codec(codec%3), frame, nil)
		if err != nil {
			return
		}
		// Only genuine frames decrypt; re-encrypting must keep the prefix.
		if p := ClearPrefixLen(Codec(codec%3), out); !bytes.Equal(out[:p], frame[:p]) {
			t.Fatalf("prefix mismatch %x vs %x", out, frame)
		}
	})
}
