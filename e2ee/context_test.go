package e2ee

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"testing"
)

func allSuites() []CipherSuite {
	return []CipherSuite{
		AES_128_CTR_HMAC_SHA256_80, AES_128_CTR_HMAC_SHA256_64, AES_128_CTR_HMAC_SHA256_32,
		AES_128_GCM_SHA256_128, AES_256_GCM_SHA512_128,
	}
}

// pair returns a sender context with send key kid and a receiver context
// with the matching receive key.
func pair(t testing.TB, s CipherSuite, kid uint64, base []byte) (send, recv *Context) {
	t.Helper()
	send, err := NewContext(s)
	if err != nil {
		t.Fatal(err)
	}
	recv, _ = NewContext(s)
	if err := send.AddSendKey(kid, base); err != nil {
		t.Fatal(err)
	}
	if err := recv.AddRecvKey(kid, base); err != nil {
		t.Fatal(err)
	}
	return send, recv
}

func TestSuites(t *testing.T) {
	want := map[CipherSuite][3]int{ // Nk, Nt, Nh (RFC 9605 Table 1)
		1: {48, 10, 32}, 2: {48, 8, 32}, 3: {48, 4, 32}, 4: {16, 16, 32}, 5: {32, 16, 64},
	}
	for _, s := range allSuites() {
		w := want[s]
		if !s.Supported() || s.KeySize() != w[0] || s.TagSize() != w[1] || s.HashSize() != w[2] {
			t.Errorf("%v: Nk %d Nt %d Nh %d", s, s.KeySize(), s.TagSize(), s.HashSize())
		}
	}
	for _, s := range []CipherSuite{0, 6, 0xf000} {
		if s.Supported() {
			t.Errorf("%v supported", s)
		}
		if _, err := NewContext(s); !errors.Is(err, ErrUnsupportedSuite) {
			t.Errorf("NewContext(%v): %v", s, err)
		}
	}
	if CipherSuite(6).String() != "CipherSuite(0x0006)" || DefaultSuite.String() != "AES_128_GCM_SHA256_128" {
		t.Errorf("String: %v %v", CipherSuite(6), DefaultSuite)
	}
}

func TestProtectUnprotectAllSuites(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.String(), func(t *testing.T) {
			send, recv := pair(t, s, 0x1234, []byte("a base key from the E2E channel"))
			meta := []byte("clear")
			for i, size := range []int{0, 1, 15, 16, 17, 160, 6000} {
				pt := bytes.Repeat([]byte{byte(i + 1)}, size)
				ct, err := send.Protect(0x1234, meta, pt, nil)
				if err != nil {
					t.Fatal(err)
				}
				h, n, err := ParseHeader(ct)
				if err != nil || h.KID != 0x1234 || h.CTR != uint64(i) {
					t.Fatalf("frame %d header %+v %v", i, h, err)
				}
				if len(ct) != n+size+s.TagSize() || len(ct) > size+s.MaxOverhead() {
					t.Fatalf("frame %d: len %d", i, len(ct))
				}
				if size >= 16 && bytes.Contains(ct, pt[:16]) {
					t.Fatalf("plaintext visible in ciphertext")
				}
				got, err := recv.Unprotect(meta, ct, []byte("x"))
				if err != nil || !bytes.Equal(got, append([]byte("x"), pt...)) {
					t.Fatalf("Unprotect frame %d: %v", i, err)
				}
				if _, err := recv.Unprotect([]byte("Clear"), ct, nil); !errors.Is(err, ErrAuth) {
					t.Fatalf("metadata not authenticated: %v", err)
				}
				if _, err := recv.Unprotect(meta, ct[:len(ct)-1], nil); err == nil {
					t.Fatal("truncated frame accepted")
				}
			}
		})
	}
}

func TestContextKeys(t *testing.T) {
	c, _ := NewContext(DefaultSuite)
	if err := c.AddSendKey(1, nil); !errors.Is(err, ErrEmptyKey) {
		t.Errorf("empty key: %v", err)
	}
	if err := c.AddSendKey(1, []byte("k1")); err != nil {
		t.Fatal(err)
	}
	if err := c.AddRecvKey(1, []byte("k1")); !errors.Is(err, ErrKeyExists) {
		t.Errorf("duplicate KID: %v", err)
	}
	if err := c.AddRecvKey(2, []byte("k2")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Protect(2, nil, []byte("x"), nil); !errors.Is(err, ErrNotSendKey) {
		t.Errorf("Protect with recv key: %v", err)
	}
	ct, _ := c.Protect(1, nil, []byte("x"), nil)
	if _, err := c.Unprotect(nil, ct, nil); !errors.Is(err, ErrNotRecvKey) {
		t.Errorf("Unprotect with send key: %v", err)
	}
	_, err := c.Protect(9, nil, nil, nil)
	var uk UnknownKeyError
	if !errors.As(err, &uk) || uk.KID != 9 || !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown KID: %v", err)
	}
	if !c.HasKey(1) || !c.RemoveKey(1) || c.RemoveKey(1) || c.HasKey(1) {
		t.Error("RemoveKey/HasKey")
	}
	// Different KIDs derive different keys from one base key (§4.4.2).
	c2, _ := NewContext(DefaultSuite)
	_ = c2.AddRecvKey(1, []byte("k2"))
	ct2, _ := func() ([]byte, error) {
		s, _ := NewContext(DefaultSuite)
		_ = s.AddSendKey(2, []byte("k2"))
		return s.Protect(2, nil, []byte("x"), nil)
	}()
	ct2[0] = 0x10 // KID 2 -> KID 1, CTR 0; same base key, other KID
	if _, err := c2.Unprotect(nil, ct2, nil); !errors.Is(err, ErrAuth) {
		t.Errorf("KID not bound into key: %v", err)
	}
}

func TestCounterNeverWraps(t *testing.T) {
	send, recv := pair(t, DefaultSuite, 3, []byte("key"))
	send.setNextCounter(3, math.MaxUint64-1)
	for _, want := range []uint64{math.MaxUint64 - 1, math.MaxUint64} {
		ct, err := send.Protect(3, nil, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if h, _, _ := ParseHeader(ct); h.CTR != want {
			t.Fatalf("CTR %d, want %d", h.CTR, want)
		}
		if _, err := recv.Unprotect(nil, ct, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := send.Protect(3, nil, []byte("x"), nil); !errors.Is(err, ErrCounterExhausted) {
			t.Fatalf("after CTR 2^64-1: %v", err)
		}
	}
}

func TestConcurrentProtectUniqueCounters(t *testing.T) {
	send, recv := pair(t, AES_128_CTR_HMAC_SHA256_80, 7, []byte("key"))
	const workers, per = 8, 200
	seen := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				ct, err := send.Protect(7, nil, []byte("concurrent"), nil)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := recv.Unprotect(nil, ct, nil); err != nil {
					t.Error(err)
					return
				}
				h, _, _ := ParseHeader(ct)
				seen[w] = append(seen[w], h.CTR)
			}
		}()
	}
	wg.Wait()
	uniq := map[uint64]bool{}
	for _, s := range seen {
		for _, c := range s {
			if uniq[c] {
				t.Fatalf("CTR %d used twice", c)
			}
			uniq[c] = true
		}
	}
	if len(uniq) != workers*per {
		t.Fatalf("%d distinct counters", len(uniq))
	}
}

func TestOverlap(t *testing.T) {
	for _, s := range []CipherSuite{AES_128_GCM_SHA256_128, AES_128_CTR_HMAC_SHA256_32} {
		send, recv := pair(t, s, 1, []byte("key"))
		buf := make([]byte, 100, 200)
		if _, err := send.Protect(1, nil, buf[50:60], buf[:10]); !errors.Is(err, ErrOverlap) {
			t.Errorf("%v Protect overlap: %v", s, err)
		}
		ct, _ := send.Protect(1, nil, []byte("in place please"), make([]byte, 0, 64))
		_, n, _ := ParseHeader(ct)
		if _, err := recv.Unprotect(nil, ct, ct[:0]); !errors.Is(err, ErrOverlap) {
			t.Errorf("%v Unprotect inexact overlap: %v", s, err)
		}
		pt, err := recv.Unprotect(nil, ct, ct[n:n])
		if err != nil || string(pt) != "in place please" {
			t.Errorf("%v in-place Unprotect: %q %v", s, pt, err)
		}
	}
}

// FuzzOpen feeds arbitrary frames and metadata to Unprotect for every suite:
// it must never panic and never accept a frame it did not see sealed.
func FuzzOpen(f *testing.F) {
	v := loadVectors(f)
	for _, tc := range v.SFrame {
		f.Add(uint8(tc.CipherSuite), []byte(tc.Metadata), []byte(tc.CT))
		f.Add(uint8(tc.CipherSuite), []byte(tc.Metadata), []byte(tc.CT[:len(tc.CT)-1]))
	}
	f.Add(uint8(4), []byte{}, []byte{})
	f.Add(uint8(1), []byte{}, []byte{0x00, 1, 2, 3})
	f.Add(uint8(3), []byte{1}, []byte{0x99, 0x01, 0x23, 0x45, 0x67, 1, 2, 3, 4})
	f.Add(uint8(5), []byte{}, bytes.Repeat([]byte{0xff}, 40))
	ctxs := map[CipherSuite]*Context{}
	for _, s := range allSuites() {
		c, _ := NewContext(s)
		for _, kid := range []uint64{0, 1, 7, 291, math.MaxUint64} {
			if err := c.AddRecvKey(kid, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}); err != nil {
				f.Fatal(err)
			}
		}
		ctxs[s] = c
	}
	vectors := map[string]bool{}
	for _, tc := range v.SFrame {
		vectors[string(tc.Metadata)+"|"+string(tc.CT)] = true
	}
	f.Fuzz(func(t *testing.T, suite uint8, meta, frame []byte) {
		c := ctxs[CipherSuite(suite%5+1)]
		pt, err := c.Unprotect(meta, frame, nil)
		if err == nil && !vectors[string(meta)+"|"+string(frame)] {
			t.Fatalf("forged frame accepted: meta %x frame %x -> %x", meta, frame, pt)
		}
		if err == nil {
			return
		}
		_, _ = DecryptFrame(c, Codec(suite%3), frame, nil)
		_ = LooksProtected(Codec(suite%3), frame)
	})
}
