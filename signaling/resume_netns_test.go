package signaling_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/netnstest"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Real network paths for the resume tests: the server in one namespace
// (10.77.0.1), alice in another (10.77.0.2) behind a veth pair, so that
// nftables in alice's namespace cuts her path and her path only; bob is a
// client on the server's own host (namespace).
const (
	nsServerIP = "10.77.0.1"
	nsAliceIP  = "10.77.0.2"
)

type nsWorld struct {
	ts         *testServer
	srv, alice *netnstest.NS
}

func newNSWorld(t *testing.T, portStart int) *nsWorld {
	t.Helper()
	w := &nsWorld{srv: netnstest.New(t, "srv"), alice: netnstest.New(t, "alice")}
	netnstest.Link(t, w.srv, "v-srv", nsServerIP+"/24", w.alice, "v-alice", nsAliceIP+"/24")
	srvNet, err := w.srv.Net()
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	rooms, err := roommgr.New(roommgr.Config{PortStart: portStart, MaxCalls: 2, MaxParticipants: 5,
		ListenIP: net.ParseIP(nsServerIP), PublicIP: nsServerIP, NodeID: "f985", Net: srvNet,
		EmptyTimeout: time.Minute, LeaveGrace: time.Second, MaxCallDuration: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := w.srv.Listen("tcp", nsServerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{rooms: rooms}
	ts.rtc = httptest.NewUnstartedServer(nil)
	_ = ts.rtc.Listener.Close()
	ts.rtc.Listener = ln
	ts.rtc.StartTLS()
	ts.wsURL = "wss://" + ln.Addr().String() + "/v1/rtc"
	if ts.sig, err = signaling.New(signaling.Config{Rooms: rooms, APISecret: testSecret, TokenSecret: testTokenKey,
		APIAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Logger: log,
		SignalingURL: ts.wsURL, ResumeGrace: 20 * time.Second}); err != nil {
		t.Fatal(err)
	}
	ts.rtc.Config.Handler = ts.sig.ClientHandler()
	ts.api = httptest.NewTLSServer(ts.sig.APIHandler()) // the API stays on the test's loopback
	ts.apiClient = &client.APIClient{BaseURL: ts.api.URL, Secret: testSecret, HTTPClient: ts.api.Client()}
	t.Cleanup(ts.close)
	w.ts = ts
	return w
}

// joinIn joins a client whose signaling and media sockets are all in ns.
func (w *nsWorld) joinIn(t *testing.T, ns *netnstest.NS, call, id string) *client.Client {
	t.Helper()
	n, err := ns.Net()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Join(ctx, client.Config{SignalingURL: w.ts.wsURL, Token: w.ts.token(t, call, id),
		TLSConfig: &tls.Config{InsecureSkipVerify: true}, ParticipantID: id, UDPOnly: true,
		NetDialContext: ns.DialContext, ICENet: n, PublishAudio: true, PublishVideo: true, VideoBitrate: 300_000,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named(id)})
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stalled waits until c stops receiving from participant from.
func stalled(t *testing.T, c *client.Client, from string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := packetsFrom(c, from, "audio")
	for {
		time.Sleep(500 * time.Millisecond)
		n := packetsFrom(c, from, "audio")
		if n == last {
			return
		}
		last = n
		if time.Now().After(deadline) {
			t.Fatalf("media from %s still flows %v after the path was cut", from, within)
		}
	}
}

// TestGoClientSurvivesBlockedUDP: alice's UDP path is blocked for 5 s
// mid-call (nftables in her namespace; her signaling socket, over TCP, is
// untouched). Media stops both ways, then flows again within 10 s of the
// path returning — in the same session: no new join, nobody saw her leave.
func TestGoClientSurvivesBlockedUDP(t *testing.T) {
	w := newNSWorld(t, 27300)
	call := w.ts.createCall(t).State.EventID
	alice := w.joinIn(t, w.alice, call, "alice")
	bob := w.joinIn(t, w.srv, call, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := bob.WaitForMedia(ctx, []string{"alice"}, []string{"audio", "video"}); err != nil {
		t.Fatal(err)
	}
	if err := alice.WaitForMedia(ctx, []string{"bob"}, []string{"audio", "video"}); err != nil {
		t.Fatal(err)
	}
	if p := alice.Stats().Publish.Pair; p == nil || p.LocalProtocol != "udp" {
		t.Fatalf("alice's publish path %+v, want udp", p)
	}
	joinedAt := joinedAtOf(t, w.ts, call, "alice")

	w.alice.Nft(t, `table inet cut {
  chain in { type filter hook input priority 0; meta l4proto udp drop; }
  chain out { type filter hook output priority 0; meta l4proto udp drop; }
}`)
	blocked := time.Now()
	stalled(t, bob, "alice", 3*time.Second)
	stalled(t, alice, "bob", 3*time.Second)
	time.Sleep(time.Until(blocked.Add(5 * time.Second)))
	w.alice.Run(t, "nft", "delete", "table", "inet", "cut")
	back := time.Now()

	flowing(t, bob, "alice", 10*time.Second)
	flowing(t, alice, "bob", 10*time.Second-time.Since(back))
	t.Logf("media both ways %v after the path returned (UDP blocked %v); %d ICE restarts, %d resumes",
		time.Since(back).Round(time.Millisecond), back.Sub(blocked).Round(time.Millisecond), alice.ICERestarts(), alice.Resumes())
	if alice.Err() != nil {
		t.Fatalf("alice stopped: %v", alice.Err())
	}
	if got := joinedAtOf(t, w.ts, call, "alice"); !got.Equal(joinedAt) {
		t.Errorf("alice joined again (joinedAt %v → %v), want the same session", joinedAt, got)
	}
	if n := len(bob.Stats().RemoteParticipants); n != 1 {
		t.Errorf("bob sees %d participants", n)
	}
}

// TestGoClientSurvivesAddressChange: alice's address changes mid-call (the
// old one removed, a new one added: a phone moving to another network). Her
// signaling socket dies with the old address and her media path with it;
// she notices, resumes on a new socket from the new address and restarts
// ICE on both transports, and media flows again without a new join.
func TestGoClientSurvivesAddressChange(t *testing.T) {
	w := newNSWorld(t, 27310)
	call := w.ts.createCall(t).State.EventID
	alice := w.joinIn(t, w.alice, call, "alice")
	bob := w.joinIn(t, w.srv, call, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := bob.WaitForMedia(ctx, []string{"alice"}, []string{"audio", "video"}); err != nil {
		t.Fatal(err)
	}
	if err := alice.WaitForMedia(ctx, []string{"bob"}, []string{"audio", "video"}); err != nil {
		t.Fatal(err)
	}
	joinedAt := joinedAtOf(t, w.ts, call, "alice")
	before := alice.Stats()

	// Deleted first: deleting a primary address also deletes the secondary
	// ones of its subnet.
	w.alice.Run(t, "ip", "addr", "del", nsAliceIP+"/24", "dev", "v-alice")
	w.alice.Run(t, "ip", "addr", "add", "10.77.0.9/24", "dev", "v-alice")
	changed := time.Now()
	flowing(t, bob, "alice", 15*time.Second)
	flowing(t, alice, "bob", 15*time.Second-time.Since(changed))
	after := alice.Stats()
	t.Logf("media both ways %v after the address change; %d ICE restarts, %d resumes; publish path %s → %s",
		time.Since(changed).Round(time.Millisecond), alice.ICERestarts(), alice.Resumes(),
		before.Publish.Pair.LocalAddress, after.Publish.Pair.LocalAddress)
	if alice.Resumes() < 1 || alice.ICERestarts() < 2 {
		t.Errorf("%d resumes, %d ICE restarts: want the socket resumed and both transports restarted", alice.Resumes(), alice.ICERestarts())
	}
	if after.Publish.ICEUfrag == before.Publish.ICEUfrag || after.Subscribe.ICEUfrag == before.Subscribe.ICEUfrag {
		t.Errorf("ICE credentials unchanged: publish %s, subscribe %s", after.Publish.ICEUfrag, after.Subscribe.ICEUfrag)
	}
	if got := joinedAtOf(t, w.ts, call, "alice"); !got.Equal(joinedAt) {
		t.Errorf("alice joined again (joinedAt %v → %v), want the same session", joinedAt, got)
	}
}
