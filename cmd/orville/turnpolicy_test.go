package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/turntest"
)

// turnSession allocates over TURN on the client port (TLS or plain TCP)
// with a participant's credentials from the join answer.
func (s *stack) turnSession(t *testing.T, g *client.JoinGrant, secure bool) *turntest.Client {
	t.Helper()
	raw, err := net.Dial("tcp", s.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	var conn net.Conn = raw
	if secure {
		tc := tls.Client(raw, s.tlsConf)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		conn = tc
	}
	ice := g.ICEServers[0]
	c := turntest.New(conn, ice.Username, fmt.Sprint(ice.Credential))
	t.Cleanup(func() { c.Close() })
	if code, err := c.Allocate(); err != nil || code != 0 {
		t.Fatalf("allocate: code %d, %v (%s)", code, err, c.LastErrorMessage)
	}
	return c
}

// ChannelBind through the server's TURN relay to the API port, to port 22
// and to another call's ports is refused with 403; to the call's own ports
// it succeeds. Removing the participant closes its allocation within a
// second and its credentials are refused from then on.
func TestTURNChannelBindPolicyAndRemoval(t *testing.T) {
	s := startStack(t, 45320)
	id, g := s.call(t, "alice", "bob")
	otherID, _ := s.call(t)
	other, err := s.apic.GetCall(context.Background(), otherID)
	if err != nil {
		t.Fatal(err)
	}
	call, err := s.apic.GetCall(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	_, apiPort, _ := net.SplitHostPort(s.api[len("https://"):])
	port := func(uri string) int {
		_, p, _ := net.SplitHostPort(uri)
		n, _ := strconv.Atoi(p)
		return n
	}
	own, foreign := port(call.RoomURI), port(other.RoomURI)
	api, _ := strconv.Atoi(apiPort)
	at := func(p int) *net.UDPAddr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p} }

	for _, secure := range []bool{false, true} {
		c := s.turnSession(t, g["bob"], secure)
		ch := uint16(0x4000)
		for _, c2 := range []struct {
			name string
			peer *net.UDPAddr
			want int
		}{
			{"the API port", at(api), 403},
			{"port 22", at(22), 403},
			{"another call's publish port", at(foreign), 403},
			{"another call's subscribe port", at(foreign + 1), 403},
			{"the call's publish port", at(own), 0},
			{"the call's subscribe port", at(own + 1), 0},
		} {
			code, err := c.ChannelBind(ch, c2.peer)
			ch++
			if err != nil || code != c2.want {
				t.Errorf("TLS %v: ChannelBind to %s (%s): code %d, %v; want %d", secure, c2.name, c2.peer, code, err, c2.want)
			}
		}
	}
	if m := s.scrapeCounters(t, "orville_turn_events_total"); m["refused_request"] != 8 {
		t.Errorf("refused_request = %v, want 8 (%v)", m["refused_request"], m)
	}

	s.join(t, g["alice"], "alice", nil) // in the call, over UDP
	alice := s.turnSession(t, g["alice"], true)
	start := time.Now()
	if err := s.apic.RemoveParticipant(context.Background(), id, "alice"); err != nil {
		t.Fatal(err)
	}
	_ = alice.Conn().SetReadDeadline(time.Now().Add(time.Second))
	if _, err := alice.Conn().Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("alice's TURN session 1 s after her removal: %v, want closed", err)
	}
	t.Logf("removed participant's TURN session closed after %v", time.Since(start).Round(time.Millisecond))
	raw, err := net.Dial("tcp", s.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	ice := g["alice"].ICEServers[0]
	again := turntest.New(raw, ice.Username, fmt.Sprint(ice.Credential))
	defer again.Close()
	if code, err := again.Allocate(); err != nil || code != 401 {
		t.Errorf("allocation with a removed participant's credentials: code %d, %v, want 401", code, err)
	}
}

// Joined clients get fresh TURN credentials over signaling (iceServers)
// every half of --turn-credential-ttl; the fresh ones allocate.
func TestICEServersRefresh(t *testing.T) {
	s := startStack(t, 45340, "--turn-credential-ttl", "2s")
	_, g := s.call(t, "carol", "dave")
	carol := s.join(t, g["carol"], "carol", func(c *client.Config) {
		c.ForceTCP, c.TCPPaths = true, []string{client.PathTURNTLS}
	})
	dave := s.join(t, g["dave"], "dave", nil)
	first := carol.ICEServers()[0].Username
	deadline := time.Now().Add(5 * time.Second)
	for carol.ICEServerRefreshes() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d iceServers messages in 5 s with a 2 s TTL", carol.ICEServerRefreshes())
		}
		time.Sleep(50 * time.Millisecond)
	}
	fresh := carol.ICEServers()[0]
	if fresh.Username == first {
		t.Fatalf("refreshed credentials are the old ones: %s", first)
	}
	s.turnSession(t, &client.JoinGrant{ICEServers: carol.ICEServers()}, false)
	// Media relayed with the first credentials keeps flowing past their expiry.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dave.WaitForMedia(ctx, []string{"carol"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatal(err)
	}
	before := received(dave, "carol")
	time.Sleep(time.Second)
	if after := received(dave, "carol"); after <= before {
		t.Fatalf("media over TURN stopped after the first credentials expired: %d → %d packets", before, after)
	}
	if st := carol.Stats(); st.Publish.Path != client.PathTURNTLS {
		t.Errorf("carol's path %q, want turn-tls", st.Publish.Path)
	}
}

func received(c *client.Client, from string) uint64 {
	var n uint64
	for _, r := range c.Stats().Received {
		if r.ParticipantID == from {
			n += r.Packets
		}
	}
	return n
}
