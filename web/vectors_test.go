package web_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"github.com/orville/orville/internal/browsertest"
	"strconv"
	"testing"

	"github.com/orville/orville/client"
	"github.com/orville/orville/e2ee"
)

// TestBrowserSFrameVectors runs every RFC 9605 Appendix C vector (the same
// JSON file the Go package e2ee is tested with) in headless Chromium, through
// web/static/sframe.js on WebCrypto.
func TestBrowserSFrameVectors(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 46100, nil)
	b := newBrowser(t, "vectors", s)
	b.navigate(s.base + "/")
	type result struct {
		Passed   int            `json:"passed"`
		Failed   int            `json:"failed"`
		Failures []string       `json:"failures"`
		Counts   map[string]int `json:"counts"`
	}
	r := mustEval[result](b, `fetch('/test-vectors.json').then((r) => r.text()).then((t) => window.orville.runVectors(t))`)
	// Appendix C.1: 289 headers (encode, parse); C.2: 3 AES-CTR-HMAC (subkeys,
	// encrypt, decrypt, forgery); C.3/C.4: 5 suites (secret, key and salt,
	// nonce, AAD, encrypt, decrypt).
	if r.Counts["header"] != 289 || r.Counts["aes_ctr_hmac"] != 3 || r.Counts["sframe"] != 5 {
		t.Fatalf("vector counts %v", r.Counts)
	}
	if want := 289*2 + 3*4 + 5*6; r.Failed != 0 || r.Passed != want {
		t.Fatalf("browser vectors: %d passed (want %d), %d failed: %v", r.Passed, want, r.Failed, r.Failures)
	}
	t.Logf("RFC 9605 vectors in Chromium: %d checks passed", r.Passed)
}

// TestBrowserGoKeySchedule checks that the browser and the Go client derive
// the same sender base keys and that each decrypts the other's frames
// (VP8 key and delta frames, Opus, a frame shorter than its prefix).
func TestBrowserGoKeySchedule(t *testing.T) {
	browsertest.Require(t)
	s := startCallServer(t, 46110, nil)
	b := newBrowser(t, "schedule", s)
	b.navigate(s.base + "/")
	const secret = "browser-go-shared-secret-42"
	for _, gen := range []uint64{1, 0x0123456789ab, 1<<48 - 1} {
		want, err := client.E2EESenderBaseKey(e2ee.DefaultSuite, []byte(secret), gen)
		if err != nil {
			t.Fatal(err)
		}
		got := mustEval[string](b, fmt.Sprintf("window.orville.senderBaseKeyHex(%q, %q)", secret, strconv.FormatUint(gen, 10)))
		if got != hex.EncodeToString(want) {
			t.Fatalf("generation %#x: browser %s, Go %x", gen, got, want)
		}
	}

	goTx, _ := client.NewE2EE(client.E2EEConfig{Secret: []byte(secret)})
	goRx, _ := client.NewE2EE(client.E2EEConfig{Secret: []byte(secret)})
	vp8Key := append([]byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}, bytes.Repeat([]byte("key frame body "), 20)...)
	for _, tc := range []struct {
		kind  string
		frame []byte
	}{
		{client.KindVideo, vp8Key},
		{client.KindVideo, append([]byte{0x31, 0x02, 0x00}, bytes.Repeat([]byte("delta "), 30)...)},
		{client.KindAudio, append([]byte{0x78}, bytes.Repeat([]byte{7}, 60)...)},
		{client.KindVideo, []byte{0x00, 0x01}}, // shorter than the key-frame prefix
		{client.KindAudio, []byte{}},
	} {
		goFrame := goTx.Encrypt(tc.kind, tc.frame)
		type out struct {
			Encrypted string `json:"encrypted"`
			Decrypted string `json:"decrypted"`
			Error     string `json:"error"`
		}
		r := mustEval[out](b, fmt.Sprintf("window.orville.interop(%q, %q, %q, %q)", secret, tc.kind,
			hex.EncodeToString(tc.frame), hex.EncodeToString(goFrame)))
		if r.Error != "" || r.Decrypted != hex.EncodeToString(tc.frame) {
			t.Fatalf("%s frame % x: browser decrypted Go's frame to %s (%s)", tc.kind, tc.frame, r.Decrypted, r.Error)
		}
		jsFrame, err := hex.DecodeString(r.Encrypted)
		if err != nil {
			t.Fatal(err)
		}
		if !e2ee.LooksProtected(map[string]e2ee.Codec{client.KindVideo: e2ee.CodecVP8, client.KindAudio: e2ee.CodecOpus}[tc.kind], jsFrame) {
			t.Fatalf("browser frame % x is not SFrame-shaped", jsFrame)
		}
		plain, err := goRx.Decrypt(tc.kind, jsFrame)
		if err != nil || !bytes.Equal(plain, tc.frame) {
			t.Fatalf("%s frame % x: Go decrypted the browser's frame to % x (%v)", tc.kind, tc.frame, plain, err)
		}
	}
}
