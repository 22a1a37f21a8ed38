package main

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/coturntest"
)

// turnError matches a TURN error response (e.g. "error 403") or a failure
// as uclient reports them (its TLS version probing is not one).
var turnError = regexp.MustCompile(`error \d{3}|ERROR:`)

// coturn's turnutils_uclient against our TURN over TCP and over TLS on the
// client port, with the credentials the API hands out: allocation and
// relaying to the call's media ports (uclient sends to -r and -r+1, the
// port pair) succeed; a wrong password fails; an address that is not this
// server's is refused; another port on this server's address gets nothing.
// Go clients limited to one TURN path each then get media through it.
func TestTURNWithAPICredentials(t *testing.T) {
	s := startStack(t, 45100)
	// One participant (and so one credential) per uclient run: they run at
	// once, and each credential has its own allocation quota.
	_, g := s.call(t, "alice", "bob", "carol", "u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7")
	creds := func(i int) (string, string) {
		ice := g[fmt.Sprintf("u%d", i)].ICEServers[0]
		return ice.Username, fmt.Sprint(ice.Credential)
	}
	host, port, _ := net.SplitHostPort(s.tcpAddr)
	roomPort := 45100 // the first call gets the first pair

	// A service on this host that is not a media port of the call (outside
	// the server's range 45100–45107): nothing may reach it through TURN.
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 45190})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var otherGot sync.WaitGroup
	otherPackets := 0
	otherGot.Add(1)
	go func() {
		defer otherGot.Done()
		buf := make([]byte, 2048)
		for {
			if _, _, err := other.ReadFrom(buf); err != nil {
				return
			}
			otherPackets++
		}
	}()

	type run struct {
		name string
		args []string
		out  string
		code int
	}
	var runs []*run
	for i, mode := range [][]string{{"-t"}, {"-t", "-S"}} {
		name := strings.Join(mode, " ")
		with := func(args ...string) []string { return append(append([]string{}, mode...), args...) }
		user, pass := creds(4 * i)
		user1, pass1 := creds(4*i + 1)
		user2, pass2 := creds(4*i + 2)
		runs = append(runs,
			&run{name: name + " media ports", args: with("-u", user, "-w", pass, "-e", "127.0.0.1",
				"-r", fmt.Sprint(roomPort), "-n", "5", "-p", port, host)},
			&run{name: name + " wrong password", args: with("-u", user1, "-w", "d3JvbmcgcGFzc3dvcmQ=",
				"-e", "127.0.0.1", "-r", fmt.Sprint(roomPort), "-n", "5", "-p", port, host)},
			&run{name: name + " foreign address", args: with("-u", user1, "-w", pass1, "-e", "127.0.0.2",
				"-r", fmt.Sprint(roomPort), "-n", "5", "-p", port, host)},
			&run{name: name + " another port", args: with("-c", "-u", user2, "-w", pass2, "-e", "127.0.0.1",
				"-r", "45190", "-n", "5", "-p", port, host)},
		)
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// uclient waits ~10 s for echoes that media ports never send.
			r.out, r.code = coturntest.Run(t, 8*time.Second, r.args...)
		}()
	}
	wg.Wait()
	for _, r := range runs {
		sent, _, counted := coturntest.Counts(r.out)
		switch {
		case strings.HasSuffix(r.name, "media ports"):
			if turnError.MatchString(r.out) || !counted || sent != 10 {
				t.Errorf("%s: exit %d, sent %d (want 10: 5 to each port of the pair):\n%s", r.name, r.code, sent, r.out)
			}
		case strings.HasSuffix(r.name, "wrong password"):
			if r.code <= 0 || !strings.Contains(r.out, "Cannot complete Allocation") {
				t.Errorf("%s: exit %d:\n%s", r.name, r.code, r.out)
			}
		case strings.HasSuffix(r.name, "foreign address"):
			if r.code <= 0 || counted && sent > 0 {
				t.Errorf("%s: not refused (exit %d):\n%s", r.name, r.code, r.out)
			}
		}
	}
	_ = other.Close()
	otherGot.Wait()
	if otherPackets != 0 {
		t.Errorf("%d packets were relayed to a port that is not the call's", otherPackets)
	}

	// Media through each TURN path, with the same kind of credentials.
	alice := s.join(t, g["alice"], "alice", nil)
	bob := s.join(t, g["bob"], "bob", func(c *client.Config) {
		c.ForceTCP, c.TCPPaths = true, []string{client.PathTURNTLS}
	})
	carol := s.join(t, g["carol"], "carol", func(c *client.Config) {
		c.ForceTCP, c.TCPPaths = true, []string{client.PathTURNTCP}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []*client.Client{alice, bob, carol} {
		var from []string
		for _, o := range []string{"alice", "bob", "carol"} {
			if o != c.ParticipantID() {
				from = append(from, o)
			}
		}
		if err := c.WaitForMedia(ctx, from, []string{client.KindAudio, client.KindVideo}); err != nil {
			t.Fatalf("%s: %v", c.ParticipantID(), err)
		}
	}
	for c, want := range map[*client.Client]string{bob: client.PathTURNTLS, carol: client.PathTURNTCP} {
		if st := c.Stats(); st.Publish.Path != want || st.Subscribe.Path != want {
			t.Errorf("%s: paths %q/%q, want %s", st.ParticipantID, st.Publish.Path, st.Subscribe.Path, want)
		}
	}
}

// With --public-ip a NAT address that is not on this host (127.0.0.77; the
// media sockets listen on 127.0.0.1), clients are told the NAT address, and
// media relayed by our TURN still reaches the call's sockets inside the host.
func TestTURNBehindNATPublicIP(t *testing.T) {
	s := startStack(t, 45120, "--public-ip", "127.0.0.77", "--calling-hostname", "127.0.0.1")
	_, g := s.call(t, "alice", "bob")
	turnOnly := func(c *client.Config) { c.ForceTCP, c.TCPPaths = true, []string{client.PathTURNTLS} }
	alice := s.join(t, g["alice"], "alice", turnOnly)
	bob := s.join(t, g["bob"], "bob", turnOnly)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bob.WaitForMedia(ctx, []string{"alice"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatal(err)
	}
	if err := alice.WaitForMedia(ctx, []string{"bob"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatal(err)
	}
	st := bob.Stats()
	if st.Subscribe.Pair == nil || !strings.HasPrefix(st.Subscribe.Pair.RemoteAddress, "127.0.0.77:") {
		t.Errorf("bob's pair %+v: want the advertised NAT address as the server's", st.Subscribe.Pair)
	}
}
