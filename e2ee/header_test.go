package e2ee

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestParseHeaderMalformed(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrShortHeader},
		{"kid length 1, no kid byte", []byte{0x80}, ErrShortHeader},
		{"ctr length 2, one ctr byte", []byte{0x09, 0x01}, ErrShortHeader},
		{"kid 8 bytes, 7 present", []byte{0xf0, 1, 2, 3, 4, 5, 6, 7}, ErrShortHeader},
		{"kid ok, ctr missing", []byte{0x88, 0x10}, ErrShortHeader},
		{"kid 7 in extended form", []byte{0x80, 0x07}, ErrNonMinimalHeader},
		{"kid 0 in extended form", []byte{0x80, 0x00}, ErrNonMinimalHeader},
		{"ctr 5 in extended form", []byte{0x08, 0x05}, ErrNonMinimalHeader},
		{"kid with leading zero byte", []byte{0x90, 0x00, 0xff}, ErrNonMinimalHeader},
		{"ctr with leading zero byte", []byte{0x09, 0x00, 0x08}, ErrNonMinimalHeader},
		{"ctr 8 bytes leading zero", []byte{0x0f, 0, 1, 1, 1, 1, 1, 1, 1}, ErrNonMinimalHeader},
	}
	for _, tc := range cases {
		if h, n, err := ParseHeader(tc.in); !errors.Is(err, tc.want) || n != 0 || h != (Header{}) {
			t.Errorf("%s: ParseHeader(%x) = %+v, %d, %v; want %v", tc.name, tc.in, h, n, err, tc.want)
		}
	}
}

func TestHeaderRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		h := Header{KID: r.Uint64() >> r.UintN(64), CTR: r.Uint64() >> r.UintN(64)}
		b := h.AppendTo([]byte{0xaa})
		if b[0] != 0xaa || len(b) != 1+h.Len() {
			t.Fatalf("AppendTo(%+v) = %x", h, b)
		}
		got, n, err := ParseHeader(b[1:])
		if err != nil || got != h || n != h.Len() {
			t.Fatalf("round trip %+v: %+v %d %v", h, got, n, err)
		}
	}
}

func TestHeaderAppendNoAlloc(t *testing.T) {
	buf := make([]byte, 0, MaxHeaderLen)
	h := Header{KID: ^uint64(0), CTR: ^uint64(0)}
	if a := testing.AllocsPerRun(100, func() { _ = h.AppendTo(buf[:0]) }); a != 0 {
		t.Fatalf("AppendTo allocates %v times", a)
	}
	if h.Len() != MaxHeaderLen {
		t.Fatalf("max header len %d", h.Len())
	}
}

// FuzzParseHeader checks that ParseHeader never panics and that whatever it
// accepts is the unique minimal encoding: re-encoding gives back the bytes.
// The seed corpus (run by plain go test) covers all four header forms and
// the malformed cases above.
func FuzzParseHeader(f *testing.F) {
	for _, s := range [][]byte{
		{}, {0x00}, {0x17}, {0x08, 0xff}, {0x80, 0xff}, {0x99, 0x01, 0x23, 0x45, 0x67},
		{0xff, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0},
		bytes.Repeat([]byte{0xff}, 17), {0x80, 0x07}, {0x90, 0x00, 0xff}, {0x0f, 0, 1},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with n=%d", err, n)
			}
			return
		}
		if n < 1 || n > len(b) || n > MaxHeaderLen || n != h.Len() {
			t.Fatalf("bad n=%d for %x (%+v)", n, b, h)
		}
		if enc := h.Marshal(); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("non-canonical accept: %x parsed as %+v, re-encodes to %x", b[:n], h, enc)
		}
	})
}
