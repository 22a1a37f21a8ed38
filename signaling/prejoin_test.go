package signaling_test

import (
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// Before join a socket is unauthenticated, and holds little: small
// messages only, a bounded ping id, a few messages at most. After join the
// full message size applies.
func TestPreJoinLimits(t *testing.T) {
	ts := startServer(t, 44140)
	call := ts.createCall(t).State.EventID

	t.Run("message over 8 KiB before join", func(t *testing.T) {
		c := dialWS(t, ts)
		send(t, c, `{"type":"ping","pad":"`+strings.Repeat("x", 9<<10)+`"}`)
		if code := expectClose(t, c); code != websocket.CloseMessageTooBig {
			t.Fatalf("close %d, want 1009", code)
		}
	})
	t.Run("ping ids are small numbers or strings", func(t *testing.T) {
		c := dialWS(t, ts)
		send(t, c, `{"type":"ping","id":"`+strings.Repeat("i", 100)+`"}`)
		expectError(t, c, "bad_message")
		send(t, c, `{"type":"ping","id":{"nested":[1,2,3]}}`)
		expectError(t, c, "bad_message")
		for _, id := range []string{`"short"`, `-12`} {
			send(t, c, `{"type":"ping","id":`+id+`}`)
			_, data, err := c.ReadMessage()
			if want := `{"type":"pong","id":` + id + `}`; err != nil || strings.TrimSpace(string(data)) != want {
				t.Fatalf("got %q (%v), want %s", data, err, want)
			}
		}
	})
	t.Run("too many messages before join", func(t *testing.T) {
		c := dialWS(t, ts)
		for range 17 {
			send(t, c, `{"type":"ping","id":1}`)
		}
		if m := expectError(t, c, "not_joined"); !strings.Contains(m.Message, "before join") {
			t.Fatalf("message %q", m.Message)
		}
		if code := expectClose(t, c); code != websocket.ClosePolicyViolation {
			t.Fatalf("close %d, want 1008", code)
		}
	})
	t.Run("after join the full size applies", func(t *testing.T) {
		c := dialWS(t, ts)
		send(t, c, `{"type":"ping","id":1}`) // pre-join pings are fine
		next(t, c, "pong")
		send(t, c, joinMsg(ts.token(t, call, "big")))
		next(t, c, "joined")
		send(t, c, `{"type":"offer","transport":"publish","sdp":"v=0\r\n`+strings.Repeat("a=x\\r\\n", 20<<10)+`"}`)
		expectError(t, c, "invalid_sdp") // refused as SDP, not for its size
		send(t, c, `{"type":"ping","id":2}`)
		next(t, c, "pong")
	})
}
