package sfu

import "testing"

func TestIsVP8Keyframe(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"empty", nil, false},
		{"key, no extension", []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}, true},
		{"delta, no extension", []byte{0x10, 0x01}, false},
		{"key, not start of partition", []byte{0x00, 0x00}, false},
		{"key, partition 1", []byte{0x11, 0x00}, false},
		{"key, 15-bit picture id", []byte{0x90, 0x80, 0x81, 0x02, 0x00}, true},
		{"key, 7-bit picture id + tl0 + tid", []byte{0x90, 0xe0, 0x05, 0x01, 0x20, 0x00}, true},
		{"delta, 15-bit picture id", []byte{0x90, 0x80, 0x81, 0x02, 0x01}, false},
		{"truncated descriptor", []byte{0x90, 0x80}, false},
		{"truncated picture id", []byte{0x90, 0x80, 0x81}, false},
	}
	for _, c := range cases {
		if got := isVP8Keyframe(c.payload); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func FuzzIsVP8Keyframe(f *testing.F) {
	f.Add([]byte{0x90, 0xe0, 0x05, 0x01, 0x20, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) { isVP8Keyframe(b) })
}
