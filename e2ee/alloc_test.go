package e2ee

import "testing"

// TestZeroAllocs pins the 0 allocs/op goal for the default suite when dst
// has capacity (the AEAD is cached per key, scratch buffers reused).
func TestZeroAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	send, recv := pair(t, DefaultSuite, 42, []byte("key"))
	meta := []byte{1, 2, 3}
	pt := make([]byte, 6000)
	dst := make([]byte, 0, 7000)
	ct, _ := send.Protect(42, meta, pt, nil)
	out := make([]byte, 0, 7000)
	frame := vp8Frame(true, 6000)
	enc, _ := EncryptFrame(send, 42, CodecVP8, frame, nil)
	for name, fn := range map[string]func(){
		"Protect":      func() { _, _ = send.Protect(42, meta, pt, dst[:0]) },
		"Unprotect":    func() { _, _ = recv.Unprotect(meta, ct, out[:0]) },
		"EncryptFrame": func() { _, _ = EncryptFrame(send, 42, CodecVP8, frame, dst[:0]) },
		"DecryptFrame": func() { _, _ = DecryptFrame(recv, CodecVP8, enc, out[:0]) },
	} {
		if a := testing.AllocsPerRun(200, fn); a != 0 {
			t.Errorf("%s: %v allocs/op, want 0", name, a)
		}
	}
}
