package e2ee

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"testing"
)

// TestRatchetKnownAnswer recomputes §5.1's ratchet with raw HMAC (RFC 5869:
// PRK = HMAC(zeros(Nh), IKM); T(1) = HMAC(PRK, info || 0x01)) to check the
// label and lengths independently of crypto/hkdf.
func TestRatchetKnownAnswer(t *testing.T) {
	base := []byte("0123456789abcdef")
	for _, s := range allSuites() {
		p, _ := s.params()
		m := hmac.New(p.hash, make([]byte, p.nh))
		m.Write(base)
		prk := m.Sum(nil)
		m = hmac.New(p.hash, prk)
		m.Write([]byte("SFrame 1.0 Ratchet\x01"))
		want := m.Sum(nil)

		got, err := Ratchet(s, base)
		if err != nil || !bytes.Equal(got, want) || len(got) != s.HashSize() {
			t.Errorf("%v: Ratchet = %x, %v; want %x", s, got, err, want)
		}
	}
	if _, err := Ratchet(0x1234, base); !errors.Is(err, ErrUnsupportedSuite) {
		t.Errorf("bad suite: %v", err)
	}
	if _, err := Ratchet(DefaultSuite, nil); !errors.Is(err, ErrEmptyKey) {
		t.Errorf("empty key: %v", err)
	}
}

func TestKIDScheme(t *testing.T) {
	cases := []struct {
		r         uint
		gen, step uint64
		kid       uint64
	}{
		{0, 5, 0, 5},
		{0, 5, 99, 5}, // no ratchet bits: the step is not sent
		{4, 0, 0, 0},
		{4, 1, 3, 0x13},
		{4, 2, 17, 0x21}, // step mod 16
		{8, 0xabc, 0x1ff, 0xabcff},
		{60, 15, 1, 0xf000000000000001},
		{64, 0, 12345, 12345},
	}
	for _, tc := range cases {
		s := KIDScheme{R: tc.r}
		kid, err := s.KID(tc.gen, tc.step)
		if err != nil || kid != tc.kid {
			t.Errorf("R=%d KID(%d,%d) = %#x, %v; want %#x", tc.r, tc.gen, tc.step, kid, err, tc.kid)
		}
		gen, low, err := s.Split(kid)
		if err != nil || gen != tc.gen || low != tc.step&s.stepMask() {
			t.Errorf("R=%d Split(%#x) = %d, %d, %v", tc.r, kid, gen, low, err)
		}
	}
	if _, err := (KIDScheme{R: 60}).KID(16, 0); !errors.Is(err, ErrKIDOverflow) {
		t.Errorf("generation overflow: %v", err)
	}
	if _, err := (KIDScheme{R: 64}).KID(1, 0); !errors.Is(err, ErrKIDOverflow) {
		t.Errorf("R=64 generation: %v", err)
	}
	if _, err := (KIDScheme{R: 65}).KID(0, 0); !errors.Is(err, ErrBadKIDScheme) {
		t.Errorf("R=65: %v", err)
	}
	if _, _, err := (KIDScheme{R: 65}).Split(0); !errors.Is(err, ErrBadKIDScheme) {
		t.Errorf("R=65 split: %v", err)
	}
}

func TestSenderKeyRatchet(t *testing.T) {
	s := KIDScheme{R: 2}
	k0 := SenderKey{Suite: DefaultSuite, Scheme: s, Generation: 3, BaseKey: []byte("initial sender key")}
	chain := []SenderKey{k0}
	for i := 1; i <= 6; i++ {
		next, err := chain[i-1].Next()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Ratchet(DefaultSuite, chain[i-1].BaseKey)
		if next.Step != uint64(i) || !bytes.Equal(next.BaseKey, want) || next.Generation != 3 {
			t.Fatalf("step %d: %+v", i, next)
		}
		chain = append(chain, next)
	}
	if kid, _ := chain[5].KID(); kid != 3<<2|1 {
		t.Fatalf("KID at step 5 = %#x", kid)
	}
	// A receiver at step 1 sees KIDs for steps 1..4 (window 2^R = 4).
	for target := 1; target <= 4; target++ {
		kid, _ := chain[target].KID()
		got, err := chain[1].Advance(kid, 3)
		if err != nil || got.Step != uint64(target) || !bytes.Equal(got.BaseKey, chain[target].BaseKey) {
			t.Errorf("Advance to step %d: %+v, %v", target, got, err)
		}
	}
	kid3, _ := chain[3].KID()
	if _, err := chain[1].Advance(kid3, 1); !errors.Is(err, ErrRatchetTooFar) {
		t.Errorf("maxSteps: %v", err)
	}
	other, _ := s.KID(4, 0)
	if _, err := chain[1].Advance(other, 10); !errors.Is(err, ErrGenerationMismatch) {
		t.Errorf("generation: %v", err)
	}
	if _, err := (SenderKey{Suite: DefaultSuite, Step: ^uint64(0), BaseKey: []byte{1}}).Next(); !errors.Is(err, ErrKIDOverflow) {
		t.Errorf("step overflow: %v", err)
	}

	// End to end: the receiver follows the sender's ratchet from the KID.
	send, _ := NewContext(DefaultSuite)
	recv, _ := NewContext(DefaultSuite)
	sk := chain[2]
	sendKID, _ := sk.KID()
	_ = send.AddSendKey(sendKID, sk.BaseKey)
	ct, err := send.Protect(sendKID, nil, []byte("after ratchet"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = recv.Unprotect(nil, ct, nil)
	var uk UnknownKeyError
	if !errors.As(err, &uk) || uk.KID != sendKID {
		t.Fatalf("want UnknownKeyError{%d}, got %v", sendKID, err)
	}
	rk, err := chain[0].Advance(uk.KID, 8)
	if err != nil {
		t.Fatal(err)
	}
	rkid, _ := rk.KID()
	_ = recv.AddRecvKey(rkid, rk.BaseKey)
	if pt, err := recv.Unprotect(nil, ct, nil); err != nil || string(pt) != "after ratchet" {
		t.Fatalf("after Advance: %q, %v", pt, err)
	}
}
