package signaling_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
)

// callMsg is any server message with the fields the resume tests read.
type callMsg struct {
	Type          string `json:"type"`
	Seq           uint64 `json:"seq"`
	LastSeq       uint64 `json:"lastSeq"`
	Code          string `json:"code"`
	Resume        string `json:"resume"`
	ResumeGrace   int    `json:"resumeGrace"`
	ParticipantID string `json:"participantId"`
	Transport     string `json:"transport"`
	SDP           string `json:"sdp"`
	Participant   struct {
		ID string `json:"id"`
	} `json:"participant"`
	Network struct {
		Host         string `json:"host"`
		TCPPort      int    `json:"tcpPort"`
		UDPPortFirst int    `json:"udpPortFirst"`
		UDPPortLast  int    `json:"udpPortLast"`
	} `json:"network"`
}

// read returns the next message, failing the test after 5 s.
func read(t *testing.T, c *websocket.Conn) callMsg {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m callMsg
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// readUntil reads until a message of type typ, returning every call
// message (seq > 0) seen on the way and the last seq.
func readUntil(t *testing.T, c *websocket.Conn, typ string) (callMsg, uint64) {
	t.Helper()
	var last uint64
	for {
		m := read(t, c)
		if m.Seq > 0 {
			if m.Seq != last+1 && last != 0 {
				t.Fatalf("seq %d after %d", m.Seq, last)
			}
			last = m.Seq
		}
		if m.Type == typ {
			return m, last
		}
	}
}

func resumeMsg(cred string, lastSeq uint64) string {
	return fmt.Sprintf(`{"type":"resume","v":1,"resume":%q,"lastSeq":%d}`, cred, lastSeq)
}

// TestResumeReplaysWhatWasMissed: a client whose socket drops without
// `leave` keeps its place; on a new socket `resume` with the credential
// from `joined` and the last seq it got brings `resumed`, then exactly the
// call messages it missed, then the subscribe offer it had not answered
// again. The others never see it leave. A second resume takes the session
// over from a socket still open (close 4001). Bad credentials, a lastSeq
// from the future and an expired grace get resume_failed.
func TestResumeReplaysWhatWasMissed(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	ts := startServer(t, 27210, func(_ *roommgr.Config, s *signaling.Config) { s.ResumeGrace = 2 * time.Second })
	call := ts.createCall(t).State.EventID

	a := dialWS(t, ts)
	send(t, a, joinMsg(ts.token(t, call, "alice")))
	joined := read(t, a)
	if joined.Type != "joined" || len(joined.Resume) < 40 || joined.ResumeGrace != 2 {
		t.Fatalf("joined %+v: want a resume credential and the grace", joined)
	}
	if n := joined.Network; n.Host != "127.0.0.1" || n.TCPPort == 0 || n.UDPPortFirst != 27210 || n.UDPPortLast != 27217 {
		t.Fatalf("joined network %+v", n)
	}
	offer, _ := readUntil(t, a, "offer")
	if offer.Seq != 1 || offer.Transport != "subscribe" {
		t.Fatalf("first offer %+v", offer)
	}
	b := dialWS(t, ts)
	send(t, b, joinMsg(ts.token(t, call, "bob")))
	readUntil(t, b, "joined")
	m, last := readUntil(t, a, "participantJoined")
	if m.Participant.ID != "bob" || last != 2 {
		t.Fatalf("alice got %+v (seq %d)", m, last)
	}

	// alice's socket dies (no leave); carol joins meanwhile.
	a.Close()
	time.Sleep(200 * time.Millisecond)
	c := dialWS(t, ts)
	send(t, c, joinMsg(ts.token(t, call, "carol")))
	readUntil(t, c, "joined")
	time.Sleep(200 * time.Millisecond)

	a2 := dialWS(t, ts)
	send(t, a2, resumeMsg(joined.Resume, last))
	if m := read(t, a2); m.Type != "resumed" || m.ParticipantID != "alice" || m.LastSeq != last+1 {
		t.Fatalf("resume answered %+v (alice had seq %d)", m, last)
	}
	if m := read(t, a2); m.Type != "participantJoined" || m.Participant.ID != "carol" || m.Seq != last+1 {
		t.Fatalf("replay: %+v, want carol's join as seq %d", m, last+1)
	}
	// The unanswered offer comes again, as a new message.
	if m := read(t, a2); m.Type != "offer" || m.Seq != last+2 || m.SDP != offer.SDP {
		t.Fatalf("after the replay: %+v, want the outstanding offer again as seq %d", m, last+2)
	}
	send(t, a2, `{"type":"ping","id":5}`)
	if m := read(t, a2); m.Type != "pong" {
		t.Fatalf("resumed socket answered ping with %+v", m)
	}

	// A resume while the session's socket is still open takes it over.
	a3 := dialWS(t, ts)
	send(t, a3, resumeMsg(joined.Resume, last+2))
	if m := read(t, a3); m.Type != "resumed" {
		t.Fatalf("takeover: %+v", m)
	}
	if code := expectClose(t, a2); code != 4001 {
		t.Fatalf("the replaced socket closed with %d, want 4001", code)
	}

	for name, msg := range map[string]string{
		"unknown credential": resumeMsg("bm90LWEtY3JlZGVudGlhbA", 0),
		"no lastSeq":         `{"type":"resume","v":1,"resume":"x"}`,
	} {
		x := dialWS(t, ts)
		send(t, x, msg)
		m := read(t, x)
		if (name == "unknown credential" && m.Code != "resume_failed") || (name == "no lastSeq" && m.Code != "bad_message") {
			t.Errorf("%s: %+v", name, m)
		}
	}

	// carol drops and stays away longer than the grace: she is gone, and
	// her credential with her.
	cj := dialWS(t, ts)
	send(t, cj, joinMsg(ts.token(t, call, "dave")))
	dj := read(t, cj)
	cj.Close()
	start := time.Now()
	for {
		m := read(t, a3)
		if m.Type == "participantLeft" && m.ParticipantID == "dave" {
			break
		}
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 4*time.Second {
		t.Errorf("dave left %v after his socket dropped, want the 2 s grace", d)
	}
	x := dialWS(t, ts)
	send(t, x, resumeMsg(dj.Resume, 0))
	if m := read(t, x); m.Code != "resume_failed" {
		t.Fatalf("resume after the grace: %+v", m)
	}

	// A lastSeq the server never sent is refused, and ends the session
	// (a client that confused its state must join again).
	send(t, dialWS(t, ts), resumeMsg(joined.Resume, 1000))
	// That is the first time bob sees alice leave: not on any reconnect.
	for {
		m := read(t, b)
		if m.Type == "participantLeft" && m.ParticipantID == "alice" {
			break
		}
		if m.Type == "participantLeft" && m.ParticipantID != "dave" {
			t.Fatalf("bob saw %s leave", m.ParticipantID)
		}
	}

	// `leave` ends a session for good.
	send(t, c, `{"type":"leave"}`)
	waitLeft(t, b, "carol")
	for _, ws := range []*websocket.Conn{a3, b, c} {
		ws.Close()
	}
	if err := ts.apiClient.EndCall(t.Context(), call); err != nil {
		t.Fatal(err)
	}
}

// waitLeft reads c until participantLeft for id.
func waitLeft(t *testing.T, c *websocket.Conn, id string) {
	t.Helper()
	for {
		m := read(t, c)
		if m.Type == "participantLeft" && m.ParticipantID == id {
			return
		}
	}
}

// TestResumeBufferIsBounded: a client away while more happens than the
// replay buffer holds cannot resume (resume_failed) — the server kept at
// most 256 messages for it — and the others see it leave.
func TestResumeBufferIsBounded(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	ts := startServer(t, 27220, func(r *roommgr.Config, s *signaling.Config) {
		s.ResumeGrace = time.Minute
		r.MaxParticipants = 3
	})
	call := ts.createCall(t).State.EventID
	a := dialWS(t, ts)
	send(t, a, joinMsg(ts.token(t, call, "alice")))
	joined := read(t, a)
	_, last := readUntil(t, a, "offer")
	a.Close()

	b := dialWS(t, ts)
	send(t, b, joinMsg(ts.token(t, call, "bob")))
	readUntil(t, b, "joined")
	// Each visitor's join and leave are two messages for alice.
	for i := range 130 {
		v := dialWS(t, ts)
		send(t, v, joinMsg(ts.token(t, call, fmt.Sprint("v", i))))
		readUntil(t, v, "joined")
		send(t, v, `{"type":"leave"}`)
		waitLeft(t, b, fmt.Sprint("v", i))
		v.Close()
	}
	a2 := dialWS(t, ts)
	send(t, a2, resumeMsg(joined.Resume, last))
	if m := read(t, a2); m.Code != "resume_failed" {
		t.Fatalf("resume after 260 missed messages: %+v", m)
	}
	waitLeft(t, b, "alice")
	b.Close()
	if err := ts.apiClient.EndCall(t.Context(), call); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		t.Fatal(err)
	}
}
