package sfu

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"go.uber.org/goleak"
)

// TestClientNominationMovesThePath: a controlling client that nominates a
// second address (as Chromium does when another of its interfaces becomes
// usable) gets the server's packets there, though pion's agent would keep
// the first pair (the new one has a lower priority). Only a request that
// names this transport and carries its password moves anything.
func TestClientNominationMovesThePath(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := newTestCall(t, 41070)
	defer c.Close("test")
	pub := joinTestPeer(t, c, "pub")
	defer pub.close()
	sub := joinTestPeer(t, c, "sub")
	defer sub.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go pub.send(ctx)
	waitFor(t, 5*time.Second, "media from pub", func() bool { return sub.count("pub", "video") > 10 })

	tr := pub.p.pubT
	before := *tr.remote.Load()
	ufrag, pwd := tr.localCredentials()
	clientUfrag := tr.currentRemoteUfrag()
	b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	newAddr := b.LocalAddr().(*net.UDPAddr).AddrPort()
	server := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 41070))

	check := func(user, password string, nominate bool) {
		t.Helper()
		setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(user),
			ice.AttrControlling(1), ice.PriorityAttr(1)} // the lowest priority: pion alone would ignore it
		if nominate {
			setters = append(setters, ice.UseCandidate())
		}
		setters = append(setters, stun.NewShortTermIntegrity(password), stun.Fingerprint)
		m, err := stun.Build(setters...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.WriteToUDP(m.Raw, server); err != nil {
			t.Fatal(err)
		}
	}
	stays := func(what string) {
		t.Helper()
		time.Sleep(300 * time.Millisecond)
		if got := *tr.remote.Load(); got != before {
			t.Fatalf("%s moved the path to %v", what, got)
		}
	}
	check(ufrag+":"+clientUfrag, pwd, false)
	stays("a check without USE-CANDIDATE")
	check(ufrag+":"+clientUfrag, "not-the-password-of-this-transport", true)
	stays("a nomination with the wrong password")
	check(ufrag+":someone-else", pwd, true)
	stays("a nomination naming another client")
	check("unknown:"+clientUfrag, pwd, true)
	stays("a nomination for another transport")

	check(ufrag+":"+clientUfrag, pwd, true)
	waitFor(t, 2*time.Second, "the path on the nominated address", func() bool { return *tr.remote.Load() == newAddr })
	if sel, err := tr.agent.GetSelectedCandidatePair(); err != nil || sel == nil || sel.Remote.Port() == int(newAddr.Port()) {
		t.Fatalf("pion's own selection changed too (%v, %v): this test no longer shows anything", sel, err)
	}

	// The server's next packet to the publisher (a key frame request for a
	// new subscriber) arrives at the new address, SRTCP.
	late := joinTestPeer(t, c, "late")
	defer late.close()
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for {
		n, _, err := b.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no SRTP or SRTCP at the nominated address: %v", err)
		}
		if n > 0 && buf[0] >= 128 && buf[0] < 192 {
			break
		}
	}
}
