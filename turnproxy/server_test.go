package turnproxy

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testSecret = []byte("turn-secret-for-tests-0123456789")

// Test ports (the range 45000–45999, apart from cmd/orville's): a call owns 45500/45501,
// another 45502/45503; 45510 is some other service on the host.
const (
	callA, callB = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	portA, portB = 45500, 45502
	portOther    = 45510
	portMin      = 45500
	portMax      = 45509
)

// natIP plays the advertised --public-ip that is not a local address
// of the media sockets (a NAT address). It is a loopback address, so even a
// broken rewrite could not send a packet off this host.
var natIP = netip.MustParseAddr("127.0.0.77")

type echo struct {
	conn *net.UDPConn
	got  chan []byte
}

// newEcho is a stand-in media socket on 127.0.0.1:port that answers every
// packet with the same bytes.
func newEcho(t *testing.T, port int) *echo {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{conn: c, got: make(chan []byte, 64)}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			select {
			case e.got <- append([]byte(nil), buf[:n]...):
			default:
			}
			_, _ = c.WriteToUDP(buf[:n], from)
		}
	}()
	t.Cleanup(func() { c.Close() })
	return e
}

// revoked holds the participants whose grants a test revoked.
type revoked struct {
	mu sync.Mutex
	m  map[string]bool
}

func (r *revoked) revoke(call, participant string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]bool{}
	}
	r.m[call+"/"+participant] = true
}

func (r *revoked) granted(call, participant, grant string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return grant == testGrant && !r.m[call+"/"+participant]
}

// testGrant is the grant the test server's calls recorded.
const testGrant = "0123456789abcdef"

// newTestServer serves TURN on a loopback port; wrap, if given, wraps the
// listener (TLS).
func newTestServer(t testing.TB, wrap ...func(net.Listener) net.Listener) (*Server, string) {
	s, addr, _ := newRevocableServer(t, wrap...)
	return s, addr
}

func newRevocableServer(t testing.TB, wrap ...func(net.Listener) net.Listener) (*Server, string, *revoked) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = ln
	rev := &revoked{}
	for _, w := range wrap {
		l = w(l)
	}
	s, err := New(Config{
		Listener: l, Secret: testSecret, Logger: zap.NewNop(),
		Call: func(id string) (int, bool) {
			switch id {
			case callA:
				return portA, true
			case callB:
				return portB, true
			}
			return 0, false
		},
		Granted: rev.granted,
		PortMin: portMin, PortMax: portMax,
		PublicIPs: []netip.Addr{natIP}, BindIP: netip.MustParseAddr("127.0.0.1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, ln.Addr().String(), rev
}

// dial allocates over TURN over TCP with the given credentials.
func dial(t *testing.T, addr, user, pass string) (*turn.Client, net.PacketConn, error) {
	t.Helper()
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: addr, Conn: turn.NewSTUNConn(tc), Username: user, Password: pass,
		LoggerFactory: logging.NewDefaultLoggerFactory(), RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := cl.Allocate()
	if err != nil {
		cl.Close()
		_ = tc.Close()
		return nil, nil, err
	}
	t.Cleanup(func() { _ = relay.Close(); cl.Close(); _ = tc.Close() })
	return cl, relay, nil
}

func TestRelaysOnlyToTheCallsMediaPorts(t *testing.T) {
	s, addr := newTestServer(t)
	pub, sub := newEcho(t, portA), newEcho(t, portA+1)
	other, otherCall := newEcho(t, portOther), newEcho(t, portB)

	user, pass := Credentials(testSecret, callA, testGrant, "alice:1", time.Now().Add(time.Hour))
	_, relay, err := dial(t, addr, user, pass)
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}

	// To the advertised (NAT) address: rewritten to the bind address, and
	// the answer is reported as coming from the advertised address.
	for _, port := range []int{portA, portA + 1} {
		to := &net.UDPAddr{IP: natIP.AsSlice(), Port: port}
		msg := fmt.Appendf(nil, "media to %d", port)
		if _, err := relay.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		_ = relay.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, from, err := relay.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no echo from port %d: %v", port, err)
		}
		if !bytes.Equal(buf[:n], msg) || from.String() != to.String() {
			t.Fatalf("echo %q from %s, want %q from %s", buf[:n], from, msg, to)
		}
	}
	if len(pub.got) != 1 || len(sub.got) != 1 {
		t.Fatalf("media sockets got %d and %d packets, want 1 each", len(pub.got), len(sub.got))
	}

	// Another port on an allowed address: the permission is refused (403,
	// filter.go), nothing arrives.
	before := s.Stats().Refused + s.Stats().RefusedRequests
	for _, port := range []int{portOther, portB} {
		_, _ = relay.WriteTo([]byte("not yours"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	}
	// An address that is not this server's: the permission is refused.
	_, err = relay.WriteTo([]byte("open relay?"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: portA})
	if err == nil {
		t.Error("relaying to a foreign address was not refused")
	}
	time.Sleep(300 * time.Millisecond)
	if len(other.got)+len(otherCall.got) != 0 {
		t.Fatalf("relayed to a port that is not the call's: %d, %d packets", len(other.got), len(otherCall.got))
	}
	if got := s.Stats().Refused + s.Stats().RefusedRequests - before; got < 3 {
		t.Fatalf("refused %d relay attempts, want 3", got)
	}
	if st := s.Stats(); st.Allocations != 1 || st.Relayed != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRefusesBadCredentials(t *testing.T) {
	s, addr := newTestServer(t)
	exp := time.Now().Add(time.Hour)
	user, pass := Credentials(testSecret, callA, testGrant, "alice", exp)
	expUser, expPass := Credentials(testSecret, callA, testGrant, "alice", time.Now().Add(-time.Second))
	goneUser, gonePass := Credentials(testSecret, "cccccccccccccccccccccccccccccccc", testGrant, "alice", exp)
	revUser, revPass := Credentials(testSecret, callA, "fedcba9876543210", "alice", exp)
	_, otherPass := Credentials([]byte("some-other-secret-0123456789"), callA, testGrant, "alice", exp)
	for _, c := range []struct{ name, user, pass string }{
		{"wrong password", user, otherPass},
		{"password of another user", user[:len(user)-1] + "x", pass},
		{"expired", expUser, expPass},
		{"call not running", goneUser, gonePass},
		{"unknown grant", revUser, revPass},
		{"not a REST username", "alice", "whatever"},
	} {
		if _, _, err := dial(t, addr, c.user, c.pass); err == nil {
			t.Errorf("%s: allocation succeeded", c.name)
		}
	}
	if s.Stats().AuthFailed != 4 || s.Stats().Allocations != 0 { // the two bad passwords fail MESSAGE-INTEGRITY in pion
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestEndCallAndQuota(t *testing.T) {
	s, addr := newTestServer(t)
	newEcho(t, portA)
	user, pass := Credentials(testSecret, callA, testGrant, "bob", time.Now().Add(time.Hour))
	for range 8 {
		if _, _, err := dial(t, addr, user, pass); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := dial(t, addr, user, pass); err == nil {
		t.Fatal("a ninth allocation for one participant was allowed")
	}
	s.EndCall(callA)
	deadline := time.Now().Add(3 * time.Second)
	for s.Stats().Allocations != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("allocations left after EndCall: %+v", s.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUsernameRoundTrip(t *testing.T) {
	exp := time.Unix(1900000000, 0)
	user, pass := Credentials(testSecret, callA, testGrant, "carol:phone", exp)
	if user != "1900000000:"+callA+":"+testGrant+":carol:phone" {
		t.Fatalf("username %q", user)
	}
	u, err := ParseUsername(user)
	if err != nil || u.CallID != callA || u.Grant != testGrant || u.Participant != "carol:phone" || !u.Expires.Equal(exp) {
		t.Fatalf("%+v %v", u, err)
	}
	if len(pass) != 28 { // base64 of a 20-byte HMAC-SHA1
		t.Fatalf("password %q", pass)
	}
	if !CheckPassword(testSecret, user, pass) || CheckPassword(testSecret, user, pass[:27]+"x") {
		t.Fatal("CheckPassword")
	}
	for _, bad := range []string{"", "x:y:z", "1900000000:" + callA, "1900000000:" + callA + ":g", "-5:a:g:b",
		"1900000000::g:b", "1900000000:a::b"} {
		if _, err := ParseUsername(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
