package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/config"
	"go.uber.org/zap"
)

// stack is a whole server running in the test process (runServer, the code
// of `orville serve`) on loopback: media ports from portStart (the issue's
// range 45000–45999), the API and the client port on free TCP ports.
type stack struct {
	api, secret string
	tcpAddr     string // --tcp-listen
	apic        *client.APIClient
	tlsConf     *tls.Config
}

const stackSecret = "fallback-test-api-secret-0123456789"

func startStack(t *testing.T, portStart int, extra ...string) *stack {
	t.Helper()
	apiPort, tcpPort := freeTCPPort(t), freeTCPPort(t)
	args := append([]string{"--dev", "--api-secret", stackSecret,
		"--api-listen", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"--tcp-listen", fmt.Sprintf("127.0.0.1:%d", tcpPort),
		"--port-start", fmt.Sprint(portStart), "--max-calls", "4", "--log-level", "error",
		"--socks-listen", "127.0.0.1:0"}, extra...)
	cfg, err := config.Load(args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	slog := zap.NewNop()
	if os.Getenv("ORVILLE_TEST_LOG") != "" {
		slog, _ = zap.NewDevelopment()
	}
	go func() { done <- runServer(ctx, cfg, slog, zap.NewAtomicLevel(), io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	tlsConf := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test server's self-signed certificate
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	t.Cleanup(hc.CloseIdleConnections)
	s := &stack{api: fmt.Sprintf("https://127.0.0.1:%d", apiPort), secret: stackSecret,
		tcpAddr: fmt.Sprintf("127.0.0.1:%d", tcpPort), tlsConf: tlsConf}
	s.apic = &client.APIClient{BaseURL: s.api, Secret: stackSecret, HTTPClient: hc}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.apic.ListCalls(context.Background()); err == nil {
			return s
		} else if time.Now().After(deadline) {
			t.Fatalf("server not up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call starts a call and returns a join grant per participant.
func (s *stack) call(t *testing.T, participants ...string) (string, map[string]*client.JoinGrant) {
	t.Helper()
	ctx := context.Background()
	sc, err := s.apic.CreateCall(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	grants := map[string]*client.JoinGrant{}
	for _, p := range participants {
		g, err := s.apic.AddParticipant(ctx, sc.State.EventID, p)
		if err != nil {
			t.Fatal(err)
		}
		grants[p] = g
	}
	return sc.State.EventID, grants
}

// join joins with audio and video; mod adjusts the client config.
func (s *stack) join(t *testing.T, g *client.JoinGrant, name string, mod func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{SignalingURL: g.SignalingURL, Token: g.Token, TLSConfig: s.tlsConf, ParticipantID: name,
		PublishAudio: true, PublishVideo: true, VideoBitrate: 300_000}
	if mod != nil {
		mod(&cfg)
	}
	c, err := client.Join(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%s: join: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// firstMedia is when the first packet from participant `from` arrived.
func firstMedia(st client.Stats, from string) time.Time {
	var first time.Time
	for _, r := range st.Received {
		if r.ParticipantID == from && r.Packets > 0 && (first.IsZero() || r.FirstPacketAt.Before(first)) {
			first = r.FirstPacketAt
		}
	}
	return first
}

func isTCPPath(p string) bool {
	return p == client.PathTCP || p == client.PathTURNTLS || p == client.PathTURNTCP
}

// The reference rule with UDP blocked: the client tries UDP, and 3 s after
// it started joining it also tries TCP, connects over it and media flows
// both ways; join to first media lands between 3.0 and 4.5 s. The server is
// the real one; only the client's UDP is dropped (its ICE network, Config.ICENet,
// loses every datagram it sends, as a firewall at the client would).
func TestTCPFallbackWhenUDPIsBlocked(t *testing.T) {
	s := startStack(t, 45000)
	_, g := s.call(t, "alice", "bob")
	alice := s.join(t, g["alice"], "alice", nil)

	start := time.Now()
	bob := s.join(t, g["bob"], "bob", func(c *client.Config) { c.ICENet = newUDPBlockedNet(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bob.WaitForMedia(ctx, []string{"alice"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatalf("bob got no media over TCP: %v; stats %+v", err, bob.Stats())
	}
	if err := alice.WaitForMedia(ctx, []string{"bob"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatalf("alice got no media from bob: %v", err)
	}
	st := bob.Stats()
	d := firstMedia(st, "alice").Sub(start)
	t.Logf("UDP blocked: join to first media %v; publish over %s after %v, subscribe over %s after %v",
		d, st.Publish.Path, st.Publish.ConnectedAfter, st.Subscribe.Path, st.Subscribe.ConnectedAfter)
	if d < 3*time.Second || d > 4500*time.Millisecond {
		t.Errorf("join to first media %v, want 3.0–4.5 s", d)
	}
	if !isTCPPath(st.Publish.Path) || !isTCPPath(st.Subscribe.Path) {
		t.Errorf("bob's paths %q/%q, want TCP ones", st.Publish.Path, st.Subscribe.Path)
	}
	if ast := alice.Stats(); ast.Publish.Path != client.PathUDP || ast.Subscribe.Path != client.PathUDP {
		t.Errorf("alice (UDP open) connected over %q/%q, want udp", ast.Publish.Path, ast.Subscribe.Path)
	}
	if ast := alice.Stats(); ast.Publish.ConnectedAfter > 2*time.Second {
		t.Errorf("alice (UDP open) waited %v: UDP must not wait for anything", ast.Publish.ConnectedAfter)
	}
}

// ForceTCP connects over TCP at once, without the 3 s wait; two calls use
// the one ICE-TCP mux at the same time (it demultiplexes by ICE ufrag).
func TestForceTCPConnectsWithoutWaiting(t *testing.T) {
	s := startStack(t, 45020)
	force := func(c *client.Config) { c.ForceTCP = true }
	type pair struct{ a, b *client.Client }
	var pairs []pair
	var starts []time.Time
	for i := range 2 {
		a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		_, g := s.call(t, a, b)
		ca := s.join(t, g[a], a, force)
		starts = append(starts, time.Now())
		cb := s.join(t, g[b], b, force)
		pairs = append(pairs, pair{ca, cb})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, p := range pairs {
		a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		if err := p.b.WaitForMedia(ctx, []string{a}, []string{client.KindAudio, client.KindVideo}); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if err := p.a.WaitForMedia(ctx, []string{b}, []string{client.KindAudio, client.KindVideo}); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		st := p.b.Stats()
		d := firstMedia(st, a).Sub(starts[i])
		t.Logf("ForceTCP call %d: join to first media %v over %s/%s", i, d, st.Publish.Path, st.Subscribe.Path)
		if d >= 2500*time.Millisecond {
			t.Errorf("ForceTCP waited %v for media, want well under the 3 s fallback", d)
		}
		for _, c := range []*client.Client{p.a, p.b} {
			if cs := c.Stats(); !isTCPPath(cs.Publish.Path) || !isTCPPath(cs.Subscribe.Path) {
				t.Errorf("%s: paths %q/%q with ForceTCP", cs.ParticipantID, cs.Publish.Path, cs.Subscribe.Path)
			}
		}
	}
}

// The join answer and `joined` carry TURN over TLS and TCP on the client
// port with credentials for this call and participant.
func TestJoinHandsOutTURN(t *testing.T) {
	s := startStack(t, 45040)
	id, g := s.call(t, "carol")
	ice := g["carol"].ICEServers
	if len(ice) != 1 {
		t.Fatalf("iceServers %+v", ice)
	}
	want := []string{"turns:" + s.tcpAddr + "?transport=tcp", "turn:" + s.tcpAddr + "?transport=tcp"}
	if strings.Join(ice[0].URLs, " ") != strings.Join(want, " ") {
		t.Errorf("urls %v, want %v", ice[0].URLs, want)
	}
	if !regexp.MustCompile(`^\d+:`+id+`:[0-9a-f]{16}:carol$`).MatchString(ice[0].Username) || ice[0].Credential == "" {
		t.Errorf("credentials %q / %v", ice[0].Username, ice[0].Credential)
	}
}
