package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/netnstest"
)

// The loss test's network: the real `orville` binary in one namespace
// (10.78.0.1), the clients in another (10.78.0.2), a veth pair between
// them, and 5% random loss in the clients' namespace made by nftables.
const (
	lossServerIP = "10.78.0.1"
	lossClientIP = "10.78.0.2"
	lossSecret   = "loss-test-api-secret-0123456789"
	// lossWindow is how long frames are counted with and without loss:
	// 300 frames at 30 fps, so the frames in flight at its edges weigh
	// little.
	lossWindow = 10 * time.Second
)

// videoFrames is how many whole video frames c depacketized from `from`.
func videoFrames(c *client.Client, from string) uint64 {
	for _, r := range c.Stats().Received {
		if r.ParticipantID == from && r.Kind == client.KindVideo {
			return r.Frames
		}
	}
	return 0
}

// sentFrames is how many video frames c sent.
func sentFrames(c *client.Client) uint64 {
	for _, s := range c.Stats().Sent {
		if s.Kind == client.KindVideo {
			return s.Frames
		}
	}
	return 0
}

// delivery is the share of pub's video frames sub received whole in one
// window: frames are counted at both ends, so a loaded machine's slower
// sender does not pass for loss.
func delivery(pub, sub *client.Client) (sent, got uint64) {
	s0, r0 := sentFrames(pub), videoFrames(sub, pub.ParticipantID())
	time.Sleep(lossWindow)
	return sentFrames(pub) - s0, videoFrames(sub, pub.ParticipantID()) - r0
}

// NACK recovery measured: with 5% of the packets dropped at random both ways
// in the clients' namespace (nftables `numgen random mod 100 < 5 drop`;
// this kernel has no netem), a subscriber still gets at least 95% of the
// video frames it gets without loss. Black box: the server is the built
// binary, the clients talk to it only over the network (UDP media, the
// signaling WebSocket, the API).
func TestNACKRecoversFromRandomLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary in network namespaces")
	}
	netnstest.Require(t)
	bin := buildBinary(t)
	srv, cli := netnstest.New(t, "lsrv"), netnstest.New(t, "lcli")
	netnstest.Link(t, srv, "v-lsrv", lossServerIP+"/24", cli, "v-lcli", lossClientIP+"/24")

	cmd := srv.Command(bin, "serve", "--api-secret", lossSecret, "--api-allow", lossClientIP+"/32",
		"--api-listen", lossServerIP+":8444", "--tcp-listen", lossServerIP+":8443", "--socks-listen", "",
		"--listen-ip", lossServerIP, "--public-ip", lossServerIP, "--port-start", "20000", "--max-calls", "2",
		"--log-level", "warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})

	tlsConf := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test server's self-signed certificate
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf, DialContext: cli.DialContext}}
	defer hc.CloseIdleConnections()
	apic := &client.APIClient{BaseURL: "https://" + lossServerIP + ":8444", Secret: lossSecret, HTTPClient: hc}
	ctx := context.Background()
	var sc *client.StartCall
	for deadline := time.Now().Add(15 * time.Second); ; {
		var err error
		if sc, err = apic.CreateCall(ctx, nil); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("server not up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	join := func(id string, publish bool) *client.Client {
		g, err := apic.AddParticipant(ctx, sc.State.EventID, id)
		if err != nil {
			t.Fatal(err)
		}
		n, err := cli.Net()
		if err != nil {
			t.Fatal(err)
		}
		jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		// UDP only: loss on UDP is what NACK must repair (TCP would hide it).
		c, err := client.Join(jctx, client.Config{SignalingURL: g.SignalingURL, Token: g.Token, TLSConfig: tlsConf,
			ParticipantID: id, UDPOnly: true, NetDialContext: cli.DialContext, ICENet: n,
			PublishVideo: publish, VideoBitrate: 1_000_000})
		if err != nil {
			t.Fatalf("join %s: %v", id, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	pub, sub := join("pub", true), join("sub", false)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := sub.WaitForMedia(wctx, []string{"pub"}, []string{client.KindVideo}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // past the first key frame and the start of the bandwidth estimate

	cleanSent, cleanGot := delivery(pub, sub)
	// 5% of the UDP datagrams dropped at random each way on the clients'
	// side of the link (RFC 4588 retransmissions and RTCP included).
	cli.Nft(t, `table inet loss {
  chain in { type filter hook input priority 0; iifname "v-lcli" meta l4proto udp numgen random mod 100 < 5 drop; }
  chain out { type filter hook output priority 0; oifname "v-lcli" meta l4proto udp numgen random mod 100 < 5 drop; }
}`)
	time.Sleep(500 * time.Millisecond)
	lossySent, lossyGot := delivery(pub, sub)
	if req, err := http.NewRequest(http.MethodGet, apic.BaseURL+"/metrics", nil); err == nil {
		req.Header.Set("Authorization", "Bearer "+lossSecret)
		if resp, err := hc.Do(req); err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(b.String(), "\n") {
				if strings.HasPrefix(l, "orville_nacks_total") || strings.HasPrefix(l, "orville_packets_dropped_total") {
					t.Log(l)
				}
			}
		}
	}
	clean, lossy := float64(cleanGot)/float64(cleanSent), float64(lossyGot)/float64(lossySent)
	t.Logf("video frames received whole in %v: %d of %d sent without loss (%.1f%%), %d of %d with 5%% loss each way (%.1f%%): %.1f%% of the loss-free run",
		lossWindow, cleanGot, cleanSent, 100*clean, lossyGot, lossySent, 100*lossy, 100*lossy/clean)
	if cleanSent < uint64(lossWindow/time.Second)*10 || cleanGot == 0 {
		t.Fatalf("only %d frames sent, %d received in %v without loss: the test measured nothing", cleanSent, cleanGot, lossWindow)
	}
	if lossy < 0.95*clean {
		t.Errorf("with 5%% loss %.1f%% of the frames arrived whole, against %.1f%% without; want at least 95%% of that (NACK recovery)",
			100*lossy, 100*clean)
	}
	if p := sub.Stats().Subscribe.Path; p != client.PathUDP {
		t.Errorf("subscriber path %q, want udp", p)
	}
}
