package turnproxy

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/orville/orville/internal/turntest"
)

func rawClient(t *testing.T, addr, user, pass string) *turntest.Client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := turntest.New(c, user, pass)
	t.Cleanup(func() { tc.Close() })
	if code, err := tc.Allocate(); err != nil || code != 0 {
		t.Fatalf("allocate: code %d, %v (%s)", code, err, tc.LastErrorMessage)
	}
	return tc
}

func udp(ip string, port int) *net.UDPAddr { return &net.UDPAddr{IP: net.ParseIP(ip), Port: port} }

// ChannelBind and CreatePermission are answered 403 for any peer but the
// call's two media ports on this server's addresses (the NAT address or the
// bind address): another port of the host, another call's ports, another
// address. The ports of the call succeed. A Send indication to another port
// of an allowed address (permissions are per IP) is dropped and counted.
func TestChannelBindAndPermissionPolicy(t *testing.T) {
	s, addr := newTestServer(t)
	other := newEcho(t, portOther)
	user, pass := Credentials(testSecret, callA, testGrant, "alice", time.Now().Add(time.Hour))
	c := rawClient(t, addr, user, pass)

	ch := uint16(0x4000)
	for _, peer := range []*net.UDPAddr{udp(natIP.String(), portA), udp(natIP.String(), portA+1), udp("127.0.0.1", portA)} {
		if code, err := c.ChannelBind(ch, peer); err != nil || code != 0 {
			t.Errorf("ChannelBind %s: code %d, %v, want success", peer, code, err)
		}
		ch++
		if code, err := c.CreatePermission(peer); err != nil || code != 0 {
			t.Errorf("CreatePermission %s: code %d, %v, want success", peer, code, err)
		}
	}
	refused := []*net.UDPAddr{
		udp("127.0.0.1", 22), udp("127.0.0.1", portOther), udp("127.0.0.1", portB), udp("127.0.0.1", portB+1),
		udp(natIP.String(), portB), udp("127.0.0.2", portA),
	}
	for _, peer := range refused {
		if code, err := c.ChannelBind(ch, peer); err != nil || code != 403 {
			t.Errorf("ChannelBind %s: code %d, %v, want 403", peer, code, err)
		}
		ch++
		if code, err := c.CreatePermission(peer); err != nil || code != 403 {
			t.Errorf("CreatePermission %s: code %d, %v, want 403", peer, code, err)
		}
	}
	// One bad peer among good ones refuses the whole request.
	if code, _ := c.CreatePermission(udp("127.0.0.1", portA), udp("127.0.0.1", portOther)); code != 403 {
		t.Errorf("mixed CreatePermission: code %d, want 403", code)
	}
	if got := s.Stats().RefusedRequests; got != uint64(2*len(refused)+1) {
		t.Errorf("RefusedRequests %d, want %d", got, 2*len(refused)+1)
	}

	// 127.0.0.1 has a permission (for portA); a Send indication to another
	// port of it reaches pion, and the relay socket drops it.
	before := s.Stats().Refused
	if err := c.Send(udp("127.0.0.1", portOther), []byte("not yours")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for s.Stats().Refused == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Stats().Refused != before+1 || len(other.got) != 0 {
		t.Errorf("Send to another port: refused %d → %d, delivered %d", before, s.Stats().Refused, len(other.got))
	}
	// The session still works after the refusals.
	if code, err := c.Refresh(10 * time.Minute); err != nil || code != 0 {
		t.Errorf("refresh: code %d, %v", code, err)
	}
}

// Expired credentials make no new allocation, but the allocation made while
// they were valid can still be refreshed and given permissions with them.
func TestExpiredCredentialsKeepTheirAllocation(t *testing.T) {
	s, addr := newTestServer(t)
	exp := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	user, pass := Credentials(testSecret, callA, testGrant, "dave", exp)
	c := rawClient(t, addr, user, pass)
	time.Sleep(time.Until(exp) + 1100*time.Millisecond)
	if code, err := c.Refresh(10 * time.Minute); err != nil || code != 0 {
		t.Errorf("refresh after expiry: code %d, %v", code, err)
	}
	if code, err := c.CreatePermission(udp(natIP.String(), portA)); err != nil || code != 0 {
		t.Errorf("permission after expiry: code %d, %v", code, err)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fresh := turntest.New(nc, user, pass)
	defer fresh.Close()
	if code, err := fresh.Allocate(); err != nil || code != 401 {
		t.Errorf("new allocation with expired credentials: code %d, %v, want 401", code, err)
	}
	if st := s.Stats(); st.Allocations != 1 {
		t.Errorf("stats %+v", st)
	}
}

// Removing a participant revokes its credentials and closes its allocation
// and connection within a second; other participants keep theirs.
func TestRemovalClosesAllocations(t *testing.T) {
	s, addr, rev := newRevocableServer(t)
	exp := time.Now().Add(time.Hour)
	eveUser, evePass := Credentials(testSecret, callA, testGrant, "eve", exp)
	frankUser, frankPass := Credentials(testSecret, callA, testGrant, "frank", exp)
	eve := rawClient(t, addr, eveUser, evePass)
	frank := rawClient(t, addr, frankUser, frankPass)
	if st := s.Stats(); st.Allocations != 2 {
		t.Fatalf("stats %+v", st)
	}
	start := time.Now()
	rev.revoke(callA, "eve")
	s.EndParticipant(callA, "eve")
	_ = eve.Conn().SetReadDeadline(time.Now().Add(time.Second))
	if _, err := eve.Conn().Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("eve's TURN connection after removal: %v, want closed", err)
	}
	for s.Stats().Allocations != 1 {
		if time.Since(start) > time.Second {
			t.Fatalf("allocation not closed within 1 s: %+v", s.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	again := turntest.New(nc, eveUser, evePass)
	defer again.Close()
	if code, err := again.Allocate(); err != nil || code != 401 {
		t.Errorf("allocation with revoked credentials: code %d, %v, want 401", code, err)
	}
	if code, err := frank.Refresh(10 * time.Minute); err != nil || code != 0 {
		t.Errorf("another participant's allocation: code %d, %v", code, err)
	}
}
