package web_test

import (
	"testing"
	"time"
)

// TestBrowserJoinTime measures what a user waits for: from opening the call
// link in Chromium to the first decoded video frame of a participant
// already in the call (page load, join, both transports' ICE and DTLS, the
// key frame the new subscription asks for, decryption, decoding).
// BENCHMARKS.md quotes it.
func TestBrowserJoinTime(t *testing.T) {
	s := startCallServer(t, 27140, nil)
	call := s.createCall(t)
	alice := newBrowser(t, "alice", s)
	alice.navigate(s.callURL(s.token(t, call, "alice"), callSecret))
	alice.waitStats(15*time.Second, "alice connected", func(st pageStats) bool { return st.State == "connected" })
	bob := newBrowser(t, "bob", s)
	start := time.Now()
	bob.navigate(s.callURL(s.token(t, call, "bob"), callSecret))
	loaded := time.Since(start)
	bob.waitStats(15*time.Second, "bob connected", func(st pageStats) bool { return st.State == "connected" })
	connected := time.Since(start)
	bob.waitStats(15*time.Second, "the first decoded frame", func(st pageStats) bool {
		v := st.track("alice", "video")
		return v != nil && v.FramesDecoded > 0
	})
	took := time.Since(start)
	t.Logf("Chromium: call link opened → first decoded video frame of a participant already in the call: %v (page loaded %v, media connected %v)",
		took, loaded, connected)
	if took > 10*time.Second {
		t.Errorf("first decoded frame after %v", took)
	}
}
