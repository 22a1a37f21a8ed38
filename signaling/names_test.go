package signaling_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
)

// namedMsg is the part of `joined` and `participantJoined` that carries names.
type namedMsg struct {
	Type         string `json:"type"`
	Name         string `json:"name"`
	Participants []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"participants"`
	Participant struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"participant"`
}

func nextNamed(t *testing.T, c *websocket.Conn, typ string) namedMsg {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		var m namedMsg
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Type == typ {
			return m
		}
	}
}

// TestDisplayNames: the API takes a display name (trimmed, at most 64
// characters, no control characters), puts it in the token, and the call
// shows it in `joined`, `participantJoined` and GET /v1/calls/{id}; the
// server's info log never contains it.
func TestDisplayNames(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	core, logs := observer.New(zapcore.InfoLevel)
	ts := startServer(t, 27200, func(_ *roommgr.Config, s *signaling.Config) { s.Logger = zap.New(core) })
	call := ts.createCall(t).State.EventID
	ctx := context.Background()

	post := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, ts.api.URL+"/v1/calls/"+call+"/participants", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testSecret)
		res, err := ts.api.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return res.StatusCode, b.String()
	}
	for _, bad := range []string{
		`{"id":"x","name":"` + strings.Repeat("é", 65) + `"}`,
		`{"id":"x","name":"evil\u0007bell"}`,
		`{"id":"x","name":"a\u202eb"}`,
		`{"id":"x","name":7}`,
	} {
		if status, body := post(bad); status != http.StatusBadRequest || !strings.Contains(body, "bad_request") {
			t.Errorf("POST %s: %d %s, want 400", bad, status, body)
		}
	}
	status, body := post(`{"id":"ok","name":"` + strings.Repeat("é", 64) + `"}`)
	if status != http.StatusCreated {
		t.Fatalf("64-character name refused: %d %s", status, body)
	}

	const aliceName, bobName = "Alice Émile-Zoë 🦉", "Bob"
	ga, err := ts.apiClient.AddNamedParticipant(ctx, call, "alice", "  "+aliceName+" ")
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(ga.Token, ".")[1])
	var claims struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Name != aliceName {
		t.Fatalf("token claims %s: name %q, want %q", payload, claims.Name, aliceName)
	}
	gb, err := ts.apiClient.AddNamedParticipant(ctx, call, "bob", bobName)
	if err != nil {
		t.Fatal(err)
	}

	a := dialWS(t, ts)
	send(t, a, joinMsg(ga.Token))
	if m := nextNamed(t, a, "joined"); m.Name != aliceName || len(m.Participants) != 0 {
		t.Fatalf("alice's joined: %+v", m)
	}
	b := dialWS(t, ts)
	send(t, b, joinMsg(gb.Token))
	if m := nextNamed(t, b, "joined"); m.Name != bobName || len(m.Participants) != 1 || m.Participants[0].Name != aliceName {
		t.Fatalf("bob's joined: %+v", m)
	}
	if m := nextNamed(t, a, "participantJoined"); m.Participant.ID != "bob" || m.Participant.Name != bobName {
		t.Fatalf("alice's participantJoined: %+v", m)
	}
	info, err := ts.apiClient.GetCall(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, p := range info.Participants {
		names[p.ID] = p.Name
	}
	if names["alice"] != aliceName || names["bob"] != bobName {
		t.Fatalf("GET call names %v", names)
	}
	a.Close()
	b.Close()
	if err := ts.apiClient.EndCall(ctx, call); err != nil {
		t.Fatal(err)
	}
	for _, e := range logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		if strings.Contains(e.Message+string(line), "Zoë") {
			t.Errorf("the display name is in an info log line: %s %s", e.Message, line)
		}
	}
}
