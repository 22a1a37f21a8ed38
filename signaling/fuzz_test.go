package signaling_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"go.uber.org/zap"
)

// fuzzPortStart gives each fuzzing worker (a process of its own) its own
// media ports: 48000–48999 is no other test's.
func fuzzPortStart() int { return 48000 + os.Getpid()%100*10 }

// quiet logs nowhere: a fuzz target may not log through the *testing.F the
// server was started with.
// Calls live on when an input makes the only participant leave.
func quiet(r *roommgr.Config, s *signaling.Config) {
	r.Logger, s.Logger = zap.NewNop(), zap.NewNop()
	r.LeaveGrace, r.EmptyTimeout = time.Hour, time.Hour
}

// FuzzAPIRequestBody sends arbitrary bodies to the API routes that take
// one: every answer is a success or an error in the API's JSON shape with a
// 4xx status, never a 5xx, a panic or a hang.
func FuzzAPIRequestBody(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"maxParticipants":8,"ttlSeconds":3600,"metadata":{"c":"1"}}`, `{"metadata":[1]}`,
		`{"id":"alice","publish":false,"name":"Alice"}`, `{"id":""}`, `{"id":"a\u202e"}`, `{"name":"` + strings.Repeat("x", 100) + `"}`,
		`{"ttlSeconds":-1}`, `{"maxParticipants":1e309}`, `{"x":1}`, `[]`, `{"id":"a"} {"id":"b"}`, `{"metadata":` + strings.Repeat("[", 10000),
		`{"id":"alice","name":"\ud800"}`, "\xff\xfe",
	} {
		f.Add(s)
	}
	ts := startServer(f, fuzzPortStart(), quiet)
	h := ts.sig.APIHandler()
	do := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header.Set("Authorization", "Bearer "+testSecret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	call, err := ts.apiClient.CreateCall(context.Background(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/calls", "/v1/calls/" + call.State.EventID + "/participants"} {
			rec := do(http.MethodPost, path, body)
			switch {
			case rec.Code == http.StatusCreated:
				var out map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
					t.Fatalf("%s: 201 with a body that is not JSON: %q", path, rec.Body)
				}
				if state, ok := out["state"].(map[string]any); ok {
					if id, ok := state["eventId"].(string); ok {
						do(http.MethodDelete, "/v1/calls/"+id, "")
					}
				}
			case rec.Code >= 400 && rec.Code < 500:
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
					t.Fatalf("%s %q: %d without the error shape: %q", path, body, rec.Code, rec.Body)
				}
			default:
				t.Fatalf("%s %q: status %d: %q", path, body, rec.Code, rec.Body)
			}
		}
	})
}

// fuzzSocket dials the client channel; join, if set, joins first.
func fuzzSocket(t *testing.T, ts *testServer, call string, join bool) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial(ts.wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if join {
		g, err := ts.apiClient.AddParticipant(context.Background(), call, "fuzz")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte(joinMsg(g.Token))); err != nil {
			t.Fatal(err)
		}
		if m := readType(t, c, "joined"); m == "" {
			t.Fatal("no joined")
		}
	}
	return c
}

// readType reads until a message of type typ; "" when the socket closed.
func readType(t *testing.T, c *websocket.Conn, typ string) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ""
			}
			t.Fatalf("waiting for %s: %v (no close frame)", typ, err)
		}
		var m struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(data, &m) != nil {
			t.Fatalf("server sent non-JSON %q", data)
		}
		if m.Type == typ {
			return typ
		}
	}
}

// alive checks the socket still answers a ping, or was closed with a close
// frame (a refusal that ends the session) — never a hang or a silent drop.
func alive(t *testing.T, c *websocket.Conn, input []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":424242}`)); err != nil &&
		!errors.Is(err, websocket.ErrCloseSent) && !strings.Contains(err.Error(), "broken pipe") &&
		!strings.Contains(err.Error(), "reset by peer") {
		t.Fatalf("after %q: ping not sent: %v", input, err)
	}
	_ = readType(t, c, "pong")
}

func clientMessageSeeds() [][]byte {
	var out [][]byte
	for _, s := range []string{
		`{"type":"ping","id":1}`, `{"type":"ping","id":"` + strings.Repeat("i", 80) + `"}`, `{"type":"join","v":1,"token":"x.y.z"}`,
		`{"type":"join","v":2}`, `{"type":"resume","v":1,"resume":"abc","lastSeq":3}`, `{"type":"offer","transport":"publish","sdp":"v=0"}`,
		`{"type":"answer","transport":"subscribe","sdp":"v=0"}`, `{"type":"candidate","transport":"publish","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}`,
		`{"type":"mute","trackId":"t","muted":true}`, `{"type":"subscription","tracks":[]}`, `{"type":"leave"}`, `{"type":"teleport"}`,
		`[]`, `null`, `{"type":1}`, "\x00\xff", `{"type":"ping","id":{"a":[` + strings.Repeat("1,", 3000) + `1]}}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// FuzzClientMessage sends an arbitrary first message on an unauthenticated
// socket: the server answers, refuses or closes with a close frame, and the
// server keeps serving.
func FuzzClientMessage(f *testing.F) {
	for _, s := range clientMessageSeeds() {
		f.Add(s)
	}
	ts := startServer(f, fuzzPortStart(), quiet)
	f.Fuzz(func(t *testing.T, msg []byte) {
		c := fuzzSocket(t, ts, "", false)
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, msg)
		alive(t, c, msg)
	})
}

// FuzzJoinedMessage sends an arbitrary message on a joined socket.
func FuzzJoinedMessage(f *testing.F) {
	for _, s := range clientMessageSeeds() {
		f.Add(s)
	}
	ts := startServer(f, fuzzPortStart(), quiet)
	call, err := ts.apiClient.CreateCall(context.Background(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		c := fuzzSocket(t, ts, call.State.EventID, true)
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, msg)
		alive(t, c, msg)
	})
}

// FuzzSDP sends arbitrary SDP as a publish offer and as a subscribe answer
// through signaling's public path (the SFU parses it): the server answers
// or refuses (invalid_sdp), and the session keeps working.
func FuzzSDP(f *testing.F) {
	offer := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\n" +
		"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 " +
		strings.TrimSuffix(strings.Repeat("AB:", 32), ":") + "\r\na=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:1 cname:x\r\n"
	for _, s := range []string{offer, "", "v=0", "v=0\r\nm=video 0 RTP/AVP 96\r\n", strings.Replace(offer, "opus", "vp8", 1),
		strings.Repeat("a=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n", 100), "v=0\r\no=\r\ns=\r\nt=\r\nm=\r\n"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	ts := startServer(f, fuzzPortStart(), quiet)
	call, err := ts.apiClient.CreateCall(context.Background(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sdp string, asOffer bool) {
		c := fuzzSocket(t, ts, call.State.EventID, true)
		defer c.Close()
		m := map[string]string{"type": "answer", "transport": "subscribe", "sdp": sdp}
		if asOffer {
			m = map[string]string{"type": "offer", "transport": "publish", "sdp": sdp}
		}
		b, _ := json.Marshal(m)
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_ = c.WriteMessage(websocket.TextMessage, b)
		alive(t, c, b)
	})
}
