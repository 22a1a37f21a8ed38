package client

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

const serverSDP = "v=0\r\n" +
	"o=- 1 2 IN IP4 0.0.0.0\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
	"a=mid:0\r\n" +
	"a=candidate:1 1 udp 2130706431 203.0.113.10 16384 typ host\r\n" +
	"a=candidate:2 1 tcp 1671430143 203.0.113.10 443 typ host tcptype passive\r\n" +
	"a=end-of-candidates\r\n"

func TestGateHoldsTCPCandidatesUntilItOpens(t *testing.T) {
	g := newGate("publish", time.Hour, true, zap.NewNop())
	defer g.close()
	out := g.stripTCPCandidates(serverSDP)
	if strings.Contains(out, " tcp ") || !strings.Contains(out, " udp ") {
		t.Fatalf("stripped SDP:\n%s", out)
	}
	if strings.Replace(serverSDP, "a=candidate:2 1 tcp 1671430143 203.0.113.10 443 typ host tcptype passive\r\n", "", 1) != out {
		t.Fatalf("the rest of the SDP changed:\n%s", out)
	}
	trickled := webrtc.ICECandidateInit{Candidate: "candidate:3 1 TCP 1 203.0.113.11 443 typ host tcptype passive"}
	if !g.hold(trickled) {
		t.Fatal("a trickled TCP candidate was not held")
	}
	if got := g.takeHeld(); got != nil {
		t.Fatalf("candidates released before the gate opened: %v", got)
	}
	added := 0
	g.mu.Lock()
	g.onOpen = func() { added = len(g.takeHeld()) }
	g.mu.Unlock()
	g.openNow("test")
	if added != 2 {
		t.Fatalf("released %d candidates when the gate opened, want 2", added)
	}
	if g.stripTCPCandidates(serverSDP) != serverSDP || g.hold(trickled) {
		t.Fatal("an open gate still holds candidates back")
	}
}

func TestGateTimerConnectAndSibling(t *testing.T) {
	pub := newGate("publish", 50*time.Millisecond, true, zap.NewNop())
	sub := newGate("subscribe", time.Hour, true, zap.NewNop())
	defer pub.close()
	defer sub.close()
	pub.setSibling(sub)
	select {
	case <-pub.open:
	case <-time.After(2 * time.Second):
		t.Fatal("the gate did not open after its delay")
	}
	// TURN connections: the TLS one wins, the TCP one is closed.
	tlsSide, tlsPeer := net.Pipe()
	tcpSide, tcpPeer := net.Pipe()
	defer tlsPeer.Close()
	defer tcpPeer.Close()
	if !pub.track(tlsSide, true) || !pub.track(tcpSide, false) {
		t.Fatal("track refused before the race was over")
	}
	pub.connected(PathTURNTLS)
	if _, err := tcpPeer.Read(make([]byte, 1)); err == nil {
		t.Fatal("the losing TURN connection is still open")
	}
	go func() { _, _ = tlsPeer.Read(make([]byte, 1)) }()
	if _, err := tlsSide.Write([]byte{1}); err != nil {
		t.Fatalf("the winning TURN connection was closed: %v", err)
	}
	select {
	case <-sub.open: // a TCP win tells the other transport not to wait
	default:
		t.Fatal("the sibling gate did not open after a TCP win")
	}
	if pub.track(tlsSide, true) {
		t.Fatal("a connection was tracked after the race was over")
	}
}

func TestUDPWinClosesEveryTURNConnection(t *testing.T) {
	g := newGate("subscribe", 0, true, zap.NewNop())
	sib := newGate("publish", time.Hour, true, zap.NewNop())
	defer sib.close()
	g.setSibling(sib)
	a, peer := net.Pipe()
	defer peer.Close()
	g.track(a, true)
	g.connected(PathUDP)
	if _, err := peer.Read(make([]byte, 1)); err == nil {
		t.Fatal("TURN connection left open after a UDP win")
	}
	select {
	case <-sib.open:
		t.Fatal("a UDP win opened the sibling's TCP gate")
	default:
	}
}

func TestTURNDialerRoutesAndWaits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := newTURNDialer(nil, nil)
	g := newGate("publish", time.Hour, true, zap.NewNop())
	all := func(string) bool { return true }
	servers := d.iceServers([]webrtc.ICEServer{{
		URLs:     []string{"turns:127.0.0.1:" + port + "?transport=tcp", "turn:127.0.0.1:" + port + "?transport=tcp", "stun:127.0.0.1:3478"},
		Username: "u", Credential: "p",
	}}, "publish", g, all)
	if len(servers) != 1 || len(servers[0].URLs) != 3 ||
		servers[0].URLs[0] != "turns:turn-publish-0.orville.invalid:"+port+"?transport=tcp" ||
		servers[0].URLs[1] != "turn:turn-publish-1.orville.invalid:"+port+"?transport=tcp" ||
		servers[0].URLs[2] != "stun:127.0.0.1:3478" {
		t.Fatalf("rewritten servers %+v", servers)
	}
	onlyTLS := d.iceServers([]webrtc.ICEServer{{URLs: []string{"turn:127.0.0.1:" + port + "?transport=tcp"}}},
		"subscribe", g, func(p string) bool { return p == PathTURNTLS })
	if len(onlyTLS) != 0 {
		t.Fatalf("a TURN over TCP URL survived TCPPaths=[turn-tls]: %+v", onlyTLS)
	}

	done := make(chan error, 1)
	go func() {
		c, err := d.Dial("tcp4", "turn-publish-1.orville.invalid:"+port)
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("dialed before the gate opened: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	g.openNow("test")
	if err := <-done; err != nil {
		t.Fatalf("dial after the gate opened: %v", err)
	}
	g.connected(PathTCP)
	if _, err := d.Dial("tcp4", "turn-publish-1.orville.invalid:"+port); err == nil {
		t.Fatal("dialed TURN after the race was over")
	}
	if _, err := d.Dial("tcp4", "elsewhere.example:443"); err == nil {
		t.Fatal("dialed an address that is no TURN route")
	}
}

func TestPathOf(t *testing.T) {
	for want, p := range map[string]*CandidatePair{
		PathUDP:     {LocalType: "host", LocalProtocol: "udp"},
		PathTCP:     {LocalType: "host", LocalProtocol: "tcp"},
		PathTURNTLS: {LocalType: "relay", LocalProtocol: "udp", RelayProtocol: "tls"},
		PathTURNTCP: {LocalType: "relay", LocalProtocol: "udp", RelayProtocol: "tcp"},
		"":          nil,
	} {
		if got := pathOf(p); got != want {
			t.Errorf("pathOf(%+v) = %q, want %q", p, got, want)
		}
	}
}
