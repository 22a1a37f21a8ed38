package client

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orville/orville/e2ee"
)

var (
	testSecret  = []byte("orville-e2ee-test-secret")
	otherSecret = []byte("some-other-call-secret!!")
)

func newTestE2EE(t testing.TB, secret []byte) *E2EE {
	t.Helper()
	e, err := NewE2EE(E2EEConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// testFrames returns VP8 key and delta frames, muted frames, Opus frames
// and frames shorter than their clear prefix.
func testFrames() []struct {
	kind  string
	frame []byte
} {
	var out []struct {
		kind  string
		frame []byte
	}
	add := func(kind string, f []byte) {
		out = append(out, struct {
			kind  string
			frame []byte
		}{kind, bytes.Clone(f)})
	}
	v := newVP8Synth(300_000, 30, time.Second)
	o := newOpusSynth()
	now := time.Now()
	for i := 0; i < 40; i++ {
		f, _ := v.next(now, false, i%7 == 3)
		add(KindVideo, f)
		add(KindAudio, o.next(now, i%5 == 4))
	}
	for _, f := range [][]byte{{}, {0x00}, {0x01, 0x02}, {0x00, 1, 2, 3, 4, 5, 6, 7, 8}} {
		add(KindVideo, f)
	}
	add(KindAudio, []byte{})
	add(KindAudio, []byte{0x78})
	return out
}

func TestE2EERoundTrip(t *testing.T) {
	alice, bob := newTestE2EE(t, testSecret), newTestE2EE(t, testSecret)
	for i, tc := range testFrames() {
		enc := alice.Encrypt(tc.kind, tc.frame)
		if enc == nil {
			t.Fatalf("frame %d: Encrypt dropped it", i)
		}
		codec := codecOfKind(tc.kind)
		p := e2ee.ClearPrefixLen(codec, tc.frame)
		if !bytes.Equal(enc[:p], tc.frame[:p]) || !e2ee.LooksProtected(codec, enc) {
			t.Fatalf("frame %d (%s, %d bytes): prefix or shape wrong: % x", i, tc.kind, len(tc.frame), enc)
		}
		if len(tc.frame) > p+4 && bytes.Contains(enc, tc.frame[p:]) {
			t.Fatalf("frame %d: plaintext visible", i)
		}
		dec, err := bob.Decrypt(tc.kind, enc)
		if err != nil || !bytes.Equal(dec, tc.frame) {
			t.Fatalf("frame %d (%s, %d bytes): %v, got % x want % x", i, tc.kind, len(tc.frame), err, dec, tc.frame)
		}
	}
	st := bob.Stats()
	if st.DecryptFailures != 0 || st.KnownGenerations != 1 || st.FramesDecrypted != uint64(len(testFrames())) {
		t.Fatalf("receiver stats %+v", st)
	}
}

// Each sender's KID carries 48 random bits (the generation) and a ratchet
// step of 0 at the start.
func TestE2EEKIDRandomBits(t *testing.T) {
	var or, and uint64 = 0, ^uint64(0)
	seen := map[uint64]bool{}
	for range 64 {
		kid := newTestE2EE(t, testSecret).Stats().SendKID
		gen := kid >> E2EERatchetBits
		if kid&e2eeMaxStep != 0 || gen == 0 || gen >= 1<<E2EEGenerationBits || seen[gen] {
			t.Fatalf("KID %#x: step not 0, generation out of range or repeated", kid)
		}
		seen[gen] = true
		or, and = or|gen, and&gen
	}
	// With 64 random generations every one of the 48 bits is both set and
	// clear somewhere (failure probability about 48 * 2^-63).
	if or != 1<<E2EEGenerationBits-1 || and != 0 {
		t.Fatalf("generation bits not random: or %#x and %#x", or, and)
	}
}

// The schedule's base key derivation, checked against an independent HKDF
// computation (Python's hmac/hashlib, RFC 5869), and one ratchet step of
// RFC 9605 §5.1. web/browser_test.go checks the browser against the same.
func TestE2EESenderBaseKeyVector(t *testing.T) {
	const gen = 0x0123456789ab
	for _, tc := range []struct {
		suite e2ee.CipherSuite
		want  string
	}{
		{e2ee.AES_128_GCM_SHA256_128, "ccd12b55bdf6b3d08f27cafea13e3e1907b9462c4ed135deaf7009a86daf9d57"},
		{e2ee.AES_256_GCM_SHA512_128, "1df8f95d0e5d06d1dde76803feb08e794123e04f25069eb71eb19e83ed590ae5" +
			"ee63457cf9e2eecb6c0f4c2e650a0cf9bc624c1d502fc1f186894aae1f8ce23e"},
	} {
		got, err := E2EESenderBaseKey(tc.suite, testSecret, gen)
		if err != nil || hex.EncodeToString(got) != tc.want {
			t.Fatalf("%v: %x %v, want %s", tc.suite, got, err, tc.want)
		}
	}
	base, _ := E2EESenderBaseKey(e2ee.DefaultSuite, testSecret, gen)
	next, err := e2ee.Ratchet(e2ee.DefaultSuite, base)
	if err != nil || hex.EncodeToString(next) != "773393f940b364355ca299ad8a3ca0e285c481ebcb26fc09dac6b71fa82efb8e" {
		t.Fatalf("ratchet: %x %v", next, err)
	}
}

func mustDecrypt(t *testing.T, rx *E2EE, tx *E2EE, what string) {
	t.Helper()
	f := []byte{0x78, 'h', 'e', 'l', 'l', 'o'}
	if out, err := rx.Decrypt(KindAudio, tx.Encrypt(KindAudio, f)); err != nil || !bytes.Equal(out, f) {
		t.Fatalf("%s: %v", what, err)
	}
}

// Ratchet (on join) moves the step, a new generation (on leave) the
// generation; receivers follow both from the KID alone, also a late
// receiver meeting a sender at step 200, and frames of the previous step
// still decrypt after a ratchet.
func TestE2EEKeySwitches(t *testing.T) {
	alice, bob := newTestE2EE(t, testSecret), newTestE2EE(t, testSecret)
	mustDecrypt(t, bob, alice, "step 0")
	kid0 := alice.Stats().SendKID
	late := alice.Encrypt(KindAudio, []byte{0x78, 1, 2, 3})
	if err := alice.Ratchet(); err != nil {
		t.Fatal(err)
	}
	if kid1 := alice.Stats().SendKID; kid1 != kid0+1 {
		t.Fatalf("ratchet: KID %#x after %#x", kid1, kid0)
	}
	mustDecrypt(t, bob, alice, "step 1")
	if _, err := bob.Decrypt(KindAudio, late); err != nil {
		t.Fatalf("a step-0 frame arriving after step 1: %v", err)
	}
	if err := alice.NewGeneration(); err != nil {
		t.Fatal(err)
	}
	if kid := alice.Stats().SendKID; kid>>E2EERatchetBits == kid0>>E2EERatchetBits || kid&e2eeMaxStep != 0 {
		t.Fatalf("new generation: KID %#x after %#x", kid, kid0)
	}
	mustDecrypt(t, bob, alice, "new generation")
	if n := bob.Stats().KnownGenerations; n != 2 {
		t.Fatalf("bob holds %d generations", n)
	}
	for range 200 {
		if err := alice.Ratchet(); err != nil {
			t.Fatal(err)
		}
	}
	mustDecrypt(t, newTestE2EE(t, testSecret), alice, "late receiver at step 200")
	// A receiver whose first frame of a sender is shorter than its clear
	// prefix still learns the sender's key from it.
	short := []byte{0x00, 0x01}
	if out, err := newTestE2EE(t, testSecret).Decrypt(KindVideo, alice.Encrypt(KindVideo, short)); err != nil || !bytes.Equal(out, short) {
		t.Fatalf("short first frame: % x %v", out, err)
	}
	mustDecrypt(t, bob, newTestE2EE(t, testSecret), "another sender")
	// More than e2eeMaxAhead steps skipped: bob cannot follow from his
	// last step, and does not learn a key from it.
	for range e2eeMaxAhead + 1 {
		_ = alice.Ratchet()
	}
	if _, err := bob.Decrypt(KindAudio, alice.Encrypt(KindAudio, []byte{0x78, 9})); !errors.Is(err, e2ee.ErrRatchetTooFar) {
		t.Fatalf("too far ahead: %v", err)
	}
	// After step 255 a sender starts a new generation.
	gen := alice.Stats().SendKID >> E2EERatchetBits
	for alice.Stats().SendKID>>E2EERatchetBits == gen {
		if err := alice.Ratchet(); err != nil {
			t.Fatal(err)
		}
	}
	if kid := alice.Stats().SendKID; kid&e2eeMaxStep != 0 {
		t.Fatalf("after the last step: KID %#x", kid)
	}
	mustDecrypt(t, bob, alice, "generation after the last step")
}

// A receiver with another secret authenticates nothing, keeps no key and
// counts every frame as a failure.
func TestE2EEWrongKey(t *testing.T) {
	alice, eve := newTestE2EE(t, testSecret), newTestE2EE(t, otherSecret)
	for i, tc := range testFrames() {
		out, err := eve.Decrypt(tc.kind, alice.Encrypt(tc.kind, tc.frame))
		if err == nil || out != nil {
			t.Fatalf("frame %d decrypted with the wrong secret", i)
		}
	}
	st := eve.Stats()
	if st.DecryptFailures != uint64(len(testFrames())) || st.FramesDecrypted != 0 || st.KnownGenerations != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Rekey switches to a new secret: receivers with the old one fail, those
// with the new one decrypt.
func TestE2EERekey(t *testing.T) {
	alice, bob, carol := newTestE2EE(t, testSecret), newTestE2EE(t, testSecret), newTestE2EE(t, otherSecret)
	mustDecrypt(t, bob, alice, "before")
	if err := alice.Rekey(otherSecret); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Decrypt(KindAudio, alice.Encrypt(KindAudio, []byte{0x78, 1})); err == nil {
		t.Fatal("old secret still decrypts")
	}
	mustDecrypt(t, carol, alice, "new secret")
	if err := alice.Rekey([]byte("short")); err == nil {
		t.Fatal("short secret accepted")
	}
}

// Garbage, truncated and forged frames are errors, never panics, and leave
// no key behind.
func TestE2EEGarbage(t *testing.T) {
	alice, bob := newTestE2EE(t, testSecret), newTestE2EE(t, testSecret)
	r := rand.New(rand.NewPCG(1, 2))
	good := alice.Encrypt(KindVideo, bytes.Repeat([]byte{0x01}, 200))
	for i := range 2000 {
		var f []byte
		switch i % 3 {
		case 0:
			f = make([]byte, r.IntN(64))
			for j := range f {
				f[j] = byte(r.Uint32())
			}
		case 1:
			f = good[:r.IntN(len(good))]
		case 2: // a forged KID of an unknown generation, valid shape
			h := e2ee.Header{KID: r.Uint64() >> 8, CTR: uint64(r.IntN(1000))}
			f = append(append([]byte{0x01, 0, 0}, h.Marshal()...), make([]byte, 40)...)
		}
		if out, err := bob.Decrypt(KindVideo, f); err == nil {
			t.Fatalf("garbage %d (% x) decrypted to % x", i, f, out)
		}
	}
	if n := bob.Stats().KnownGenerations; n != 0 {
		t.Fatalf("garbage left %d generations", n)
	}
	if _, err := NewE2EE(E2EEConfig{Secret: []byte("too short")}); err == nil {
		t.Fatal("short secret accepted")
	}
	if _, err := NewE2EE(E2EEConfig{Secret: testSecret, Suite: 0x99}); err == nil {
		t.Fatal("unknown suite accepted")
	}
}

func FuzzE2EEDecrypt(f *testing.F) {
	alice := newTestE2EE(f, testSecret)
	f.Add(alice.Encrypt(KindVideo, []byte{0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), true)
	f.Add(alice.Encrypt(KindAudio, []byte{0x78, 1}), false)
	bob := newTestE2EE(f, testSecret)
	f.Fuzz(func(t *testing.T, frame []byte, video bool) {
		kind := KindAudio
		if video {
			kind = KindVideo
		}
		_, _ = bob.Decrypt(kind, frame)
	})
}

// TestE2EECall runs the transform in a client against the echo server: media
// decrypts, a join ratchets and a leave starts a new generation, each
// followed by a key frame, and no frame fails.
func TestE2EECall(t *testing.T) {
	f := newFakeServer(t, fakeOptions{})
	defer f.Close()
	ctx := ctxFor(t, 30*time.Second)
	var keyFrames atomic.Int32
	tf, err := NewE2EE(E2EEConfig{Secret: testSecret, OnVideoKeyFrame: func(frame []byte) {
		if isVP8KeyFrame(frame) {
			keyFrames.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, f, "kim")
	cfg.Transform = tf
	cfg.KeyframeInterval = time.Hour
	c, err := Join(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitForMedia(ctx, []string{echoParticipant}, []string{KindAudio, KindVideo}); err != nil {
		t.Fatal(err)
	}
	kid0 := tf.Stats().SendKID
	keyFramesSent := func() uint64 {
		for _, s := range c.Stats().Sent {
			if s.Kind == KindVideo {
				return s.KeyFrames
			}
		}
		return 0
	}
	k0 := keyFramesSent()
	f.broadcast(message{Type: "participantJoined", Participant: &Participant{ID: "lou"}})
	waitFor(t, func() bool { return tf.Stats().SendKID == kid0+1 && keyFramesSent() > k0 }, "ratchet and key frame on join")
	k1 := keyFramesSent()
	f.broadcast(message{Type: "participantLeft", ParticipantID: "lou"})
	waitFor(t, func() bool {
		return tf.Stats().SendKID>>E2EERatchetBits != kid0>>E2EERatchetBits && keyFramesSent() > k1
	}, "new generation and key frame on leave")
	dec := tf.Stats().FramesDecrypted
	waitFor(t, func() bool { return tf.Stats().FramesDecrypted > dec+20 }, "frames under the new key")
	for _, r := range c.Stats().Received {
		if r.FramesDecryptFailed != 0 || r.MarkedFrames == 0 {
			t.Errorf("%s: %d frames, %d failed, %d marked", r.Kind, r.Frames, r.FramesDecryptFailed, r.MarkedFrames)
		}
	}
	if st := tf.Stats(); st.DecryptFailures != 0 || st.KeySwitches != 2 {
		t.Errorf("transform stats %+v", st)
	}
	if n := keyFrames.Load(); n < 3 {
		t.Errorf("%d decrypted key frames, want the first one and one per key switch", n)
	}
}
