package signaling_test

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"go.uber.org/goleak"
)

// cutter is a TCP dialer whose connections the test can cut all at once, as
// a network change cuts a phone's connections.
type cutter struct {
	mu    sync.Mutex
	conns []net.Conn
	dials int
}

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err == nil {
		c.mu.Lock()
		c.conns = append(c.conns, conn)
		c.dials++
		c.mu.Unlock()
	}
	return conn, err
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.conns = nil
}

// packetsFrom sums the packets c received from participant from, by kind.
func packetsFrom(c *client.Client, from, kind string) uint64 {
	var n uint64
	for _, r := range c.Stats().Received {
		if r.ParticipantID == from && r.Kind == kind {
			n += r.Packets
		}
	}
	return n
}

// flowing waits until c receives more of from's audio and video than now.
func flowing(t *testing.T, c *client.Client, from string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	a, v := packetsFrom(c, from, "audio"), packetsFrom(c, from, "video")
	for packetsFrom(c, from, "audio") < a+10 || packetsFrom(c, from, "video") < v+10 {
		if time.Since(start) > within {
			t.Fatalf("no media from %s for %v (audio %d→%d, video %d→%d; err %v)", from, within,
				a, packetsFrom(c, from, "audio"), v, packetsFrom(c, from, "video"), c.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// TestGoClientResumesAfterSocketCut: alice's signaling socket is cut twice
// mid-call (the TCP connection dies, as on a network change). She resumes
// on a new socket each time — the same participant, never seen leaving —
// learns of carol, who joined while she was away, and gets carol's media;
// media with bob never stops needing a new join.
func TestGoClientResumesAfterSocketCut(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	ts := startServer(t, 27230, func(_ *roommgr.Config, s *signaling.Config) { s.ResumeGrace = 10 * time.Second })
	call := ts.createCall(t).State.EventID
	cut := &cutter{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, err := client.Join(ctx, client.Config{SignalingURL: ts.wsURL, Token: ts.token(t, call, "alice"),
		TLSConfig: &tls.Config{InsecureSkipVerify: true}, ParticipantID: "alice", NetDialContext: cut.dial,
		PublishAudio: true, PublishVideo: true, VideoBitrate: 300_000})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob := ts.join(t, call, "bob")
	defer bob.Close()
	if err := alice.WaitForMedia(ctx, []string{"bob"}, []string{"audio", "video"}); err != nil {
		t.Fatal(err)
	}
	joinedAt := joinedAtOf(t, ts, call, "alice")

	cut.cut()
	time.Sleep(300 * time.Millisecond)
	carol := ts.join(t, call, "carol") // while alice may still be away
	defer carol.Close()
	flowing(t, bob, "alice", 5*time.Second)
	if err := alice.WaitForMedia(ctx, []string{"carol"}, []string{"audio", "video"}); err != nil {
		t.Fatalf("alice after the resume: %v", err)
	}
	cut.cut()
	d := flowing(t, carol, "alice", 5*time.Second)
	flowing(t, alice, "bob", 5*time.Second)

	if alice.Resumes() != 2 || alice.Err() != nil {
		t.Fatalf("alice: %d resumes, err %v; want 2 and running", alice.Resumes(), alice.Err())
	}
	if got := joinedAtOf(t, ts, call, "alice"); !got.Equal(joinedAt) {
		t.Errorf("alice joined again (joinedAt %v → %v), want the same session", joinedAt, got)
	}
	for _, p := range bob.Stats().RemoteParticipants {
		if p.ID == "alice" && len(p.Tracks) != 2 {
			t.Errorf("bob's view of alice: %+v", p)
		}
	}
	t.Logf("carol got alice's media %v after the second cut; %d signaling dials", d.Round(time.Millisecond), cut.dials)
}

func joinedAtOf(t *testing.T, ts *testServer, call, id string) time.Time {
	t.Helper()
	info, err := ts.apiClient.GetCall(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range info.Participants {
		if p.ID == id {
			return p.JoinedAt
		}
	}
	t.Fatalf("%s is not in the call", id)
	return time.Time{}
}

// TestGoClientICERestart: RestartICE renegotiates both transports with new
// ICE credentials (publish: the client's offer; subscribe: the server's
// offer after restartIce) and media keeps flowing both ways, in the same
// session.
func TestGoClientICERestart(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	ts := startServer(t, 27240)
	call := ts.createCall(t).State.EventID
	alice, bob := ts.join(t, call, "alice"), ts.join(t, call, "bob")
	defer alice.Close()
	defer bob.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := alice.WaitForMedia(ctx, []string{"bob"}, []string{"audio", "video"}); err != nil {
		t.Fatal(err)
	}
	before := alice.Stats()
	pubUfrag, subUfrag := before.Publish.ICEUfrag, before.Subscribe.ICEUfrag
	alice.RestartICE()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := alice.Stats()
		p, s := st.Publish.ICEUfrag, st.Subscribe.ICEUfrag
		if p != pubUfrag && s != subUfrag && p != "" && s != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ICE credentials after the restart: publish %q→%q, subscribe %q→%q", pubUfrag, p, subUfrag, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	flowing(t, bob, "alice", 5*time.Second)
	flowing(t, alice, "bob", 5*time.Second)
	if n := alice.ICERestarts(); n != 2 {
		t.Errorf("%d ICE restarts, want 2", n)
	}
	if after := alice.Stats(); after.ServerErrors != before.ServerErrors {
		t.Errorf("server errors during the restart: %+v", after.LastServerError)
	}
}
