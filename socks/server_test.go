package socks

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"golang.org/x/net/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testUser, testPass = "1900000000:call:grant:alice", "right-password"
)

// world is what a test server may reach: a "client port" (TCP echo) and two
// "media ports" (UDP echoes), plus things it must not reach.
type world struct {
	stream      net.Listener
	media       [2]*net.UDPConn
	otherTCP    net.Listener
	otherUDP    *net.UDPConn
	otherUDPGot chan []byte
	mediaGot    [2]chan []byte
	revokedMu   sync.Mutex
	revoked     bool
	authCalls   int
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{otherUDPGot: make(chan []byte, 16)}
	var err error
	if w.stream, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if w.otherTCP, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	for _, l := range []net.Listener{w.stream, w.otherTCP} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
			}
		}()
		t.Cleanup(func() { l.Close() })
	}
	udpEcho := func(got chan []byte) *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				select {
				case got <- append([]byte(nil), buf[:n]...):
				default:
				}
				_, _ = c.WriteToUDPAddrPort(append([]byte("echo:"), buf[:n]...), from)
			}
		}()
		t.Cleanup(func() { c.Close() })
		return c
	}
	for i := range w.media {
		w.mediaGot[i] = make(chan []byte, 16)
		w.media[i] = udpEcho(w.mediaGot[i])
	}
	w.otherUDP = udpEcho(w.otherUDPGot)
	return w
}

func port(a net.Addr) uint16 { return uint16(addrPort(a).Port()) }

// grant advertises the client port as calls.example.com:443 and
// 203.0.113.9:443, and the media ports as 203.0.113.9:16384 and :16385.
func (w *world) grant() *Grant {
	return &Grant{Call: "call", Participant: "alice",
		Connect: []Route{
			{Host: "calls.example.com", Port: 443, To: addrPort(w.stream.Addr())},
			{Host: "203.0.113.9", Port: 443, To: addrPort(w.stream.Addr())},
		},
		UDP: []Route{
			{Host: "203.0.113.9", Port: 16384, To: addrPort(w.media[0].LocalAddr())},
			{Host: "203.0.113.9", Port: 16385, To: addrPort(w.media[1].LocalAddr())},
		},
		Valid: func() bool { w.revokedMu.Lock(); defer w.revokedMu.Unlock(); return !w.revoked },
	}
}

func newServer(t testing.TB, w *world, mod func(*Config)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listener: ln, Logger: zap.NewNop(), Authenticate: func(u, p string) (*Grant, error) {
		w.revokedMu.Lock()
		w.authCalls++
		revoked := w.revoked
		w.revokedMu.Unlock()
		if u != testUser || p != testPass || revoked {
			return nil, errors.New("bad credentials")
		}
		return w.grant(), nil
	}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dialer(t *testing.T, s *Server, user, pass string) proxy.Dialer {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", s.Addr().String(), &proxy.Auth{User: user, Password: pass}, &net.Dialer{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// rawRequest authenticates on a new connection and sends one request; it
// returns the reply code and the connection.
func rawRequest(t *testing.T, s *Server, cmd byte, dst Addr) (byte, net.Conn) {
	rep, _, c := rawRequestBound(t, s, cmd, dst)
	return rep, c
}

// rawRequestBound is rawRequest that also returns BND.ADDR:BND.PORT.
func rawRequestBound(t *testing.T, s *Server, cmd byte, dst Addr) (byte, Addr, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := []byte{5, 1, 2, 1, byte(len(testUser))}
	msg = append(append(msg, testUser...), byte(len(testPass)))
	msg = append(msg, testPass...)
	msg = appendAddr(append(msg, 5, cmd, 0), dst)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	var resp [4]byte
	if _, err := io.ReadFull(c, resp[:]); err != nil || resp[0] != 5 || resp[1] != 2 || resp[3] != 0 {
		t.Fatalf("method and auth answer %x: %v", resp, err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("reply: %v", err)
	}
	bnd, err := readAddr(c, hdr[3])
	if err != nil {
		t.Fatalf("reply address: %v", err)
	}
	_ = c.SetDeadline(time.Time{})
	return hdr[1], bnd, c
}

// CONNECT reaches the client port under each advertised name; every other
// destination — another local port, a name not listed, an address not
// listed — and BIND get 0x02; wrong credentials and clients without
// username/password get nowhere.
func TestConnectOnlyToTheClientPort(t *testing.T) {
	w := newWorld(t)
	s := newServer(t, w, nil)
	d := dialer(t, s, testUser, testPass)
	for _, addr := range []string{"calls.example.com:443", "CALLS.example.com.:443", "203.0.113.9:443"} {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("CONNECT %s: %v", addr, err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello" {
			t.Fatalf("through %s: %q %v", addr, got, err)
		}
		c.Close()
	}
	other := addrPort(w.otherTCP.Addr())
	for _, dst := range []Addr{
		{IP: other.Addr(), Port: other.Port()},                              // another local port, by its real address
		{IP: addrPort(w.stream.Addr()).Addr(), Port: port(w.stream.Addr())}, // the target's in-host address is not a name of it
		{Host: "calls.example.com", Port: 444},
		{Host: "localhost", Port: 443},
		{Host: "evil.example", Port: 443},
		{IP: netip.MustParseAddr("203.0.113.9"), Port: 22},
	} {
		if rep, _ := rawRequest(t, s, cmdConnect, dst); rep != repNotAllowed {
			t.Errorf("CONNECT %s: reply %#x, want 0x02", dst, rep)
		}
	}
	if rep, _ := rawRequest(t, s, cmdBind, Addr{Host: "calls.example.com", Port: 443}); rep != repNotAllowed {
		t.Errorf("BIND: reply %#x, want 0x02", rep)
	}
	if rep, _ := rawRequest(t, s, 0x09, Addr{Host: "calls.example.com", Port: 443}); rep != repCommandUnsupported {
		t.Errorf("unknown command: reply %#x, want 0x07", rep)
	}
	if _, err := dialer(t, s, testUser, "wrong").Dial("tcp", "calls.example.com:443"); err == nil {
		t.Error("wrong password accepted")
	}
	// No username/password method offered: X'FF'.
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte{5, 1, 0})
	resp := make([]byte, 2)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, resp); err != nil || resp[1] != 0xFF {
		t.Errorf("no acceptable method: %x %v", resp, err)
	}
	st := s.Stats()
	if st.Connects != 3 || st.NotAllowed != 7 || st.AuthFailed != 2 || st.BadRequest != 1 {
		t.Errorf("stats %+v", st)
	}
}

// udpClient is the client side of a UDP ASSOCIATE.
type udpClient struct {
	ctl   net.Conn
	pc    *net.UDPConn
	relay netip.AddrPort
}

func associate(t *testing.T, s *Server) *udpClient {
	t.Helper()
	rep, bnd, ctl := rawRequestBound(t, s, cmdUDPAssociate, Addr{IP: netip.IPv4Unspecified()})
	if rep != repSucceeded || !bnd.IP.IsValid() || bnd.Port == 0 {
		t.Fatalf("UDP ASSOCIATE: reply %#x, bound %s", rep, bnd)
	}
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return &udpClient{ctl: ctl, pc: pc, relay: netip.AddrPortFrom(bnd.IP, bnd.Port)}
}

func (u *udpClient) send(t *testing.T, dst Addr, data []byte) {
	t.Helper()
	b := appendAddr([]byte{0, 0, 0}, dst)
	if _, err := u.pc.WriteToUDPAddrPort(append(b, data...), u.relay); err != nil {
		t.Fatal(err)
	}
}

func (u *udpClient) recv(t *testing.T, within time.Duration) (Addr, []byte, bool) {
	t.Helper()
	buf := make([]byte, 2048)
	_ = u.pc.SetReadDeadline(time.Now().Add(within))
	n, from, err := u.pc.ReadFromUDPAddrPort(buf)
	if err != nil {
		return Addr{}, nil, false
	}
	if from != u.relay {
		t.Fatalf("datagram from %s, not the relay %s", from, u.relay)
	}
	dst, data, err := parseUDPHeader(buf[:n])
	if err != nil {
		t.Fatalf("reply header: %v", err)
	}
	return dst, data, true
}

// UDP ASSOCIATE relays to the grant's two media ports, and replies come
// back framed with the address the client used; datagrams to any other
// port, fragments, junk, and datagrams from other sources are dropped and
// counted; the association ends with its control connection.
func TestUDPAssociateOnlyToTheMediaPorts(t *testing.T) {
	w := newWorld(t)
	s := newServer(t, w, nil)
	u := associate(t, s)
	for i, p := range []uint16{16384, 16385} {
		dst := Addr{IP: netip.MustParseAddr("203.0.113.9"), Port: p}
		u.send(t, dst, []byte("media"))
		from, data, ok := u.recv(t, 5*time.Second)
		if !ok || from != dst || string(data) != "echo:media" {
			t.Fatalf("port %d: reply %q from %s (%v)", p, data, from, ok)
		}
		if got := <-w.mediaGot[i]; string(got) != "media" {
			t.Fatalf("media port %d got %q", p, got)
		}
	}
	other := addrPort(w.otherUDP.LocalAddr())
	before := s.Stats().DatagramsDropped
	for _, dst := range []Addr{
		{IP: other.Addr(), Port: other.Port()},
		{IP: netip.MustParseAddr("203.0.113.9"), Port: other.Port()},
		{IP: netip.MustParseAddr("203.0.113.9"), Port: 16386},
		{IP: netip.MustParseAddr("203.0.113.9"), Port: 22},
		{Host: "calls.example.com", Port: 16384},
	} {
		u.send(t, dst, []byte("not yours"))
	}
	frag := appendAddr([]byte{0, 0, 1}, Addr{IP: netip.MustParseAddr("203.0.113.9"), Port: 16384})
	_, _ = u.pc.WriteToUDPAddrPort(append(frag, "fragment"...), u.relay)
	_, _ = u.pc.WriteToUDPAddrPort([]byte{0, 0}, u.relay)
	// Another host's datagram to the relay socket (as if spoofed from a
	// stranger's address; here another local socket): dropped.
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	_, _ = stranger.WriteToUDPAddrPort(appendAddr([]byte{0, 0, 0}, Addr{IP: netip.MustParseAddr("203.0.113.9"), Port: 16384}), u.relay)
	// The other service answers nothing it never got; wait for the counter.
	deadline := time.Now().Add(3 * time.Second)
	for s.Stats().DatagramsDropped < before+8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.Stats().DatagramsDropped - before; got != 8 {
		t.Errorf("dropped %d datagrams, want 8", got)
	}
	if len(w.otherUDPGot) != 0 || len(w.mediaGot[0]) != 0 {
		t.Errorf("delivered to another port (%d) or from a stranger (%d)", len(w.otherUDPGot), len(w.mediaGot[0]))
	}
	if st := s.Stats(); st.Associations != 1 || st.DatagramsRelayed != 4 {
		t.Errorf("stats %+v", st)
	}
	// Closing the control connection ends the association.
	u.ctl.Close()
	deadline = time.Now().Add(3 * time.Second)
	for s.Stats().Open != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("association outlived its control connection: %+v", s.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	u.send(t, Addr{IP: netip.MustParseAddr("203.0.113.9"), Port: 16384}, []byte("late"))
	if _, _, ok := u.recv(t, 300*time.Millisecond); ok {
		t.Error("relayed after the association ended")
	}
}

// Connections are bounded per address and per participant; a silent one
// is closed after the handshake timeout; EndParticipant and a revocation
// end sessions.
func TestLimitsDeadlinesAndRevocation(t *testing.T) {
	w := newWorld(t)
	s := newServer(t, w, func(c *Config) {
		c.MaxConnsPerIP, c.MaxPerGrant = 3, 2
		c.HandshakeTimeout = 300 * time.Millisecond
	})
	d := dialer(t, s, testUser, testPass)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 2 {
		c, err := d.Dial("tcp", "calls.example.com:443")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if rep, _ := rawRequest(t, s, cmdConnect, Addr{Host: "calls.example.com", Port: 443}); rep != repNotAllowed {
		t.Errorf("third session of one participant: reply %#x, want 0x02", rep)
	}
	// The address now holds 2 sessions; a silent third connection fills
	// its share, a fourth is refused at once.
	silent, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	deadline := time.Now().Add(3 * time.Second)
	for s.Stats().Open != 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	fourth, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer fourth.Close()
	_ = fourth.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := fourth.Read(make([]byte, 1)); err == nil {
		t.Error("a fourth connection from one address was served")
	}
	_ = silent.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("a silent connection after the handshake timeout: %v, want closed", err)
	}
	if st := s.Stats(); st.RefusedPerIP != 1 {
		t.Errorf("stats %+v", st)
	}

	// Removal: the sessions close, and the credentials are refused.
	w.revokedMu.Lock()
	w.revoked = true
	w.revokedMu.Unlock()
	s.EndParticipant("call", "alice")
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("session after EndParticipant: %v, want closed", err)
		}
	}
	if _, err := d.Dial("tcp", "calls.example.com:443"); err == nil {
		t.Error("revoked credentials accepted")
	}
}

func TestUDPHeaderParsing(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		dst  Addr
		data string
		ok   bool
	}{
		{append(appendAddr([]byte{0, 0, 0}, Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 9}), "x"...), Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 9}, "x", true},
		{appendAddr([]byte{0, 0, 0}, Addr{IP: netip.MustParseAddr("2001:db8::1"), Port: 1}), Addr{IP: netip.MustParseAddr("2001:db8::1"), Port: 1}, "", true},
		{append(appendAddr([]byte{0, 0, 0}, Addr{Host: "a.example", Port: 443}), "yz"...), Addr{Host: "a.example", Port: 443}, "yz", true},
		{[]byte{0, 0, 0, 1, 1, 2, 3}, Addr{}, "", false},    // short IPv4
		{[]byte{0, 0, 0, 3, 9, 'a'}, Addr{}, "", false},     // short name
		{[]byte{0, 0, 0, 3, 0, 0, 1}, Addr{}, "", false},    // empty name
		{[]byte{0, 0, 0, 9, 0, 0, 0, 0}, Addr{}, "", false}, // unknown ATYP
		{[]byte{0, 1, 0, 1, 1, 2, 3, 4, 0, 1}, Addr{}, "", false},
	} {
		dst, data, err := parseUDPHeader(c.in)
		if (err == nil) != c.ok || (c.ok && (dst != c.dst || !bytes.Equal(data, []byte(c.data)))) {
			t.Errorf("%x: %v %q %v", c.in, dst, data, err)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() {
		_, _, _ = parseUDPHeader([]byte{0, 0, 0, 1, 127, 0, 0, 1, 0, 80, 'p'})
	}); allocs != 0 {
		t.Errorf("%v allocations per IPv4 datagram", allocs)
	}
}
