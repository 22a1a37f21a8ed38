package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/sockstest"
)

// curlSOCKS runs curl through the SOCKS relay (--socks5-hostname: curl sends
// the host name for the relay to resolve) and returns its output and exit
// code.
func curlSOCKS(t *testing.T, proxyAddr, user, pass, target string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed (.ci/run installs Debian's curl)")
	}
	auth := url.UserPassword(user, pass).String() // percent-encoded: TURN usernames hold colons
	cmd := exec.Command("curl", "-sk", "--max-time", "10", "--socks5-hostname", auth+"@"+proxyAddr, target)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// The SOCKS relay on --socks-listen: curl with a participant's credentials
// (from the join answer, which advertises the relay) reaches the client
// port's /healthz; CONNECT to the API port, to another local port, and with
// wrong credentials is refused. A Go client exchanges media through UDP
// ASSOCIATE; datagrams to any port but the call's two media ports are
// dropped and counted.
func TestSOCKSRelay(t *testing.T) {
	s := startStack(t, 45360)
	id, g := s.call(t, "alice", "bob", "mallory")
	otherID, _ := s.call(t)
	alice := g["alice"]
	if alice.SOCKS == nil || alice.SOCKS.Username != alice.ICEServers[0].Username ||
		alice.SOCKS.Password != fmt.Sprint(alice.ICEServers[0].Credential) {
		t.Fatalf("the join answer advertises no SOCKS relay with the TURN credentials: %+v", alice.SOCKS)
	}
	proxy := alice.SOCKS.Address
	user, pass := alice.SOCKS.Username, alice.SOCKS.Password

	out, code := curlSOCKS(t, proxy, user, pass, "https://"+s.tcpAddr+"/healthz")
	if code != 0 || !strings.Contains(out, `"status":"ok"`) {
		t.Fatalf("curl through SOCKS to the client port: exit %d, %s", code, out)
	}
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, c := range []struct{ name, user, pass, target string }{
		{"the API port", user, pass, s.api + "/healthz"},
		{"another local port", user, pass, "http://" + other.Addr().String() + "/"},
		{"wrong credentials", user, "d3JvbmcgcGFzc3dvcmQ=", "https://" + s.tcpAddr + "/healthz"},
		{"another participant's username", g["bob"].SOCKS.Username, pass, "https://" + s.tcpAddr + "/healthz"},
	} {
		if out, code := curlSOCKS(t, proxy, c.user, c.pass, c.target); code == 0 {
			t.Errorf("curl through SOCKS to %s was not refused: %s", c.name, out)
		}
	}
	m := s.scrapeCounters(t, "orville_socks_connections_total")
	if m["connect"] != 1 || m["not_allowed"] != 2 || m["auth_failed"] != 2 {
		t.Errorf("socks counters %v: want 1 connect, 2 not_allowed, 2 auth_failed", m)
	}

	// Media through UDP ASSOCIATE (signaling through CONNECT) for both.
	via := func(name string) func(*client.Config) {
		return func(c *client.Config) { c.SOCKS = g[name].SOCKS }
	}
	a := s.join(t, alice, "alice", via("alice"))
	b := s.join(t, g["bob"], "bob", via("bob"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitForMedia(ctx, []string{"alice"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatalf("bob through SOCKS: %v", err)
	}
	if err := a.WaitForMedia(ctx, []string{"bob"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatalf("alice through SOCKS: %v", err)
	}
	for _, c := range []*client.Client{a, b} {
		if st := c.Stats(); st.Publish.Path != client.PathSOCKS || st.Subscribe.Path != client.PathSOCKS {
			t.Errorf("%s: paths %q/%q, want socks", st.ParticipantID, st.Publish.Path, st.Subscribe.Path)
		}
	}
	if m := s.scrapeCounters(t, "orville_socks_datagrams_total"); m["relayed"] < 100 {
		t.Errorf("socks datagrams %v: media did not go through the relay", m)
	}

	// Datagrams to anything but the call's media ports: dropped, counted.
	assoc, err := sockstest.Associate(proxy, g["mallory"].SOCKS.Username, g["mallory"].SOCKS.Password)
	if err != nil {
		t.Fatal(err)
	}
	defer assoc.Close()
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	call, _ := s.apic.GetCall(context.Background(), id)
	otherCall, _ := s.apic.GetCall(context.Background(), otherID)
	_, p, _ := net.SplitHostPort(call.RoomURI)
	_, op, _ := net.SplitHostPort(otherCall.RoomURI)
	own, _ := strconv.Atoi(p)
	foreign, _ := strconv.Atoi(op)
	lo := func(port int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	}
	before := s.scrapeCounters(t, "orville_socks_datagrams_total")["dropped"]
	targets := []netip.AddrPort{lo(foreign), lo(foreign + 1), lo(own + 2), lo(sink.LocalAddr().(*net.UDPAddr).Port), lo(53)}
	for _, dst := range targets {
		if err := assoc.Send(dst, []byte("not yours")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	var dropped float64
	for time.Now().Before(deadline) {
		if dropped = s.scrapeCounters(t, "orville_socks_datagrams_total")["dropped"] - before; dropped >= float64(len(targets)) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dropped != float64(len(targets)) {
		t.Errorf("%v datagrams counted dropped, want %d", dropped, len(targets))
	}
	_ = sink.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := sink.ReadFrom(make([]byte, 100)); err == nil {
		t.Errorf("a datagram of %d bytes reached another port", n)
	}
}
