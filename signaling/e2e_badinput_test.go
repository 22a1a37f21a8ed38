package signaling_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/orville/orville/client"
	"go.uber.org/goleak"
)

func dialWS(t *testing.T, ts *testServer) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial(ts.wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type serverMsg struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	ID      int    `json:"id"`
}

// next reads until a message of one of the given types arrives.
func next(t *testing.T, c *websocket.Conn, types ...string) serverMsg {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %v: %v", types, err)
		}
		var m serverMsg
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("server sent non-JSON %q", data)
		}
		for _, ty := range types {
			if m.Type == ty {
				return m
			}
		}
	}
}

func expectError(t *testing.T, c *websocket.Conn, code string) serverMsg {
	t.Helper()
	m := next(t, c, "error")
	if m.Code != code || m.Message == "" {
		t.Fatalf("got error %q (%q), want %q with a message", m.Code, m.Message, code)
	}
	return m
}

// expectClose reads until the server closes the socket and returns the close code.
func expectClose(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			t.Fatalf("socket ended without a close frame: %v", err)
		}
	}
}

func send(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func signToken(t *testing.T, key []byte, call, sub string, exp time.Time) string {
	claims := jwt.MapClaims{"iss": "orville", "aud": []string{"orville-rtc"}, "sub": sub, "call": call,
		"publish": true, "iat": time.Now().Add(-time.Hour).Unix(), "exp": exp.Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func joinMsg(token string) string {
	b, _ := json.Marshal(map[string]any{"type": "join", "v": 1, "token": token})
	return string(b)
}

// received sums the packets c got from participant from.
func received(c *client.Client, from string) uint64 {
	var n uint64
	for _, r := range c.Stats().Received {
		if r.ParticipantID == from {
			n += r.Packets
		}
	}
	return n
}

// Bad input of every kind gets a clear error; none of it disturbs a call in
// progress; nothing leaks.
func TestBadInputIsRefusedAndIsolated(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	ts := startServer(t, 44100)
	ctx := context.Background()

	// A healthy call keeps running throughout.
	healthy := ts.createCall(t)
	a := ts.join(t, healthy.State.EventID, "alice")
	defer a.Close()
	b := ts.join(t, healthy.State.EventID, "bob")
	defer b.Close()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := a.WaitForMedia(wctx, []string{"bob"}, []string{"audio", "video"}); err != nil {
		t.Fatal(err)
	}
	cancel()

	// A small call for the limit tests.
	sc, err := ts.apiClient.CreateCall(ctx, &client.CreateCallOptions{MaxParticipants: 2})
	if err != nil {
		t.Fatal(err)
	}
	call := sc.State.EventID

	t.Run("garbage before join", func(t *testing.T) {
		c := dialWS(t, ts)
		send(t, c, "this is not json")
		expectError(t, c, "bad_message")
		_ = c.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0x00, 0x13})
		expectError(t, c, "bad_message")
		send(t, c, `{"type":"offer","transport":"publish","sdp":"v=0"}`)
		expectError(t, c, "not_joined")
		send(t, c, `{"type":"teleport"}`)
		expectError(t, c, "unknown_type")
		send(t, c, `{"type":"ping","id":7}`)
		if m := next(t, c, "pong"); m.ID != 7 {
			t.Fatalf("pong id %d", m.ID)
		}
		for i := 0; i < 6; i++ {
			send(t, c, "[]")
		}
		if code := expectClose(t, c); code != websocket.ClosePolicyViolation {
			t.Fatalf("after 10 invalid messages: close %d, want 1008", code)
		}
	})
	t.Run("oversized message", func(t *testing.T) {
		c := dialWS(t, ts)
		send(t, c, `{"type":"join","token":"`+strings.Repeat("A", 300<<10)+`"}`)
		if code := expectClose(t, c); code != websocket.CloseMessageTooBig {
			t.Fatalf("close %d, want 1009", code)
		}
	})
	t.Run("unsupported version", func(t *testing.T) {
		c := dialWS(t, ts)
		send(t, c, `{"type":"join","v":2,"token":"x"}`)
		expectError(t, c, "unsupported_version")
	})
	t.Run("expired token", func(t *testing.T) {
		c := dialWS(t, ts)
		send(t, c, joinMsg(signToken(t, testTokenKey, call, "mallory", time.Now().Add(-time.Minute))))
		m := expectError(t, c, "invalid_token")
		if !strings.Contains(m.Message, "expired") {
			t.Fatalf("message %q does not say expired", m.Message)
		}
	})
	t.Run("forged token", func(t *testing.T) {
		c := dialWS(t, ts)
		send(t, c, joinMsg(signToken(t, []byte("not-the-server-key-0123456789"), call, "mallory", time.Now().Add(time.Minute))))
		expectError(t, c, "invalid_token")
	})
	t.Run("token for one call cannot open another", func(t *testing.T) {
		tok := ts.token(t, call, "carol")
		parts := strings.Split(tok, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		forged := strings.Replace(string(payload), call, healthy.State.EventID, 1)
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
		c := dialWS(t, ts)
		send(t, c, joinMsg(strings.Join(parts, ".")))
		expectError(t, c, "invalid_token")
		if len(b.Stats().RemoteParticipants) != 1 {
			t.Fatalf("the healthy call gained a participant: %+v", b.Stats().RemoteParticipants)
		}
	})
	t.Run("ended call", func(t *testing.T) {
		gone := ts.createCall(t)
		tok := ts.token(t, gone.State.EventID, "dave")
		if err := ts.apiClient.EndCall(ctx, gone.State.EventID); err != nil {
			t.Fatal(err)
		}
		c := dialWS(t, ts)
		send(t, c, joinMsg(tok))
		expectError(t, c, "call_not_found")
	})
	t.Run("invalid SDP and beyond max participants", func(t *testing.T) {
		c1 := dialWS(t, ts)
		send(t, c1, joinMsg(ts.token(t, call, "p1")))
		next(t, c1, "joined")
		send(t, c1, `{"type":"offer","transport":"publish","sdp":"v=0\r\nthis is not SDP"}`)
		expectError(t, c1, "invalid_sdp")
		send(t, c1, `{"type":"answer","transport":"subscribe","sdp":"v=0"}`)
		expectError(t, c1, "invalid_sdp")
		send(t, c1, `{"type":"ping","id":1}`)
		next(t, c1, "pong") // still served after refusals

		c2 := dialWS(t, ts)
		send(t, c2, joinMsg(ts.token(t, call, "p2")))
		next(t, c2, "joined")
		c3 := dialWS(t, ts)
		send(t, c3, joinMsg(ts.token(t, call, "p3")))
		expectError(t, c3, "call_full")
		if code := expectClose(t, c3); code != websocket.ClosePolicyViolation {
			t.Fatalf("refused join closed with %d", code)
		}
	})
	t.Run("removed participant cannot rejoin with its old token", func(t *testing.T) {
		// Someone stays, so the call does not end (leave grace) while p1 is out.
		stay := dialWS(t, ts)
		send(t, stay, joinMsg(ts.token(t, call, "p2")))
		next(t, stay, "joined")
		tok := ts.token(t, call, "p1")
		in := dialWS(t, ts)
		send(t, in, joinMsg(tok))
		next(t, in, "joined")
		if err := ts.apiClient.RemoveParticipant(ctx, call, "p1"); err != nil {
			t.Fatal(err)
		}
		if m := next(t, in, "ended"); m.Reason != "removed" {
			t.Fatalf("ended reason %q", m.Reason)
		}
		c := dialWS(t, ts)
		send(t, c, joinMsg(tok))
		expectError(t, c, "forbidden")
		c2 := dialWS(t, ts)
		send(t, c2, joinMsg(ts.token(t, call, "p1"))) // invited again
		next(t, c2, "joined")
	})

	// The healthy call never noticed.
	before := received(a, "bob")
	time.Sleep(500 * time.Millisecond)
	if after := received(a, "bob"); after <= before {
		t.Fatalf("healthy call stalled: %d → %d packets", before, after)
	}
	if err := a.Err(); err != nil {
		t.Fatalf("healthy client failed: %v", err)
	}
}
