package signaling_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"go.uber.org/goleak"
)

// goleakOpts ignores goroutines that outlive a test by design (the HTTP
// client's idle connections are closed in cleanup, but their readers exit
// asynchronously).
var goleakOpts = []goleak.Option{
	goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
}

func udpPortFree(port int) bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// The core acceptance test: the API creates a call; three Go clients join;
// each receives the other two's audio and video within 2 s of joining, with
// loss under 1%; all leave; the call ends and its ports are free.
func TestThreeClientsExchangeAudioAndVideo(t *testing.T) {
	defer goleak.VerifyNone(t, goleakOpts...)
	ts := startServer(t, 44000)
	sc := ts.createCall(t)
	if sc.State.RoomURI != "127.0.0.1:44000" {
		t.Fatalf("roomURI %q", sc.State.RoomURI)
	}
	ids := []string{"alice", "bob", "carol"}
	clients := map[string]*client.Client{}
	joined := map[string]time.Time{}
	for _, id := range ids {
		joined[id] = time.Now()
		clients[id] = ts.join(t, sc.State.EventID, id)
	}
	for _, id := range ids {
		var others []string
		for _, o := range ids {
			if o != id {
				others = append(others, o)
			}
		}
		// Within 2 s of the last join every client has media from both others.
		ctx, cancel := context.WithDeadline(context.Background(), joined["carol"].Add(2*time.Second))
		err := clients[id].WaitForMedia(ctx, others, []string{"audio", "video"})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v (stats %+v)", id, err, clients[id].Stats().Received)
		}
	}
	time.Sleep(1500 * time.Millisecond) // let some media flow for the loss figure
	for _, id := range ids {
		st := clients[id].Stats()
		got := map[string]bool{}
		for _, r := range st.Received {
			if r.ParticipantID == id {
				t.Errorf("%s receives its own %s", id, r.Kind)
			}
			got[r.ParticipantID+"/"+r.Kind] = true
			if r.Packets == 0 || r.LossFraction >= 0.01 {
				t.Errorf("%s from %s/%s: %d packets, loss %.3f", id, r.ParticipantID, r.Kind, r.Packets, r.LossFraction)
			}
		}
		if len(got) != 4 {
			t.Errorf("%s receives %v, want audio and video from 2 others", id, got)
		}
	}
	info, err := ts.apiClient.GetCall(context.Background(), sc.State.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Participants) != 3 {
		t.Fatalf("API lists %d participants", len(info.Participants))
	}
	for _, p := range info.Participants {
		if p.Transport != "udp" || len(p.Tracks) != 2 {
			t.Errorf("participant %+v: want udp and 2 tracks", p)
		}
	}

	for _, id := range ids {
		clients[id].Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := ts.apiClient.GetCall(context.Background(), sc.State.EventID)
		if err != nil && udpPortFree(44000) && udpPortFree(44001) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("call did not end after everyone left (err %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
