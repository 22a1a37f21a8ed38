package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/orville/orville/client"
)

// Exit codes of test-calling, so scripts can tell the failures apart.
const (
	exitOK          = 0
	exitNoMedia     = 1
	exitUsage       = 2
	exitUnreachable = 3
	exitRefused     = 4
)

// testCalling starts a call through the API, joins two synthetic clients,
// exchanges audio and video for a few seconds and reports each direction.
func testCalling(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("test-calling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", "https://127.0.0.1:444", "the server's API URL (TCP 444)")
	insecure := fs.Bool("insecure", false, "accept the server's certificate without verification (self-signed)")
	secret := fs.String("api-secret", "", "API secret (default: $ORVILLE_API_SECRET)")
	signalURL := fs.String("signaling-url", "", "override the WebSocket URL the server advertises")
	duration := fs.Duration("duration", 3*time.Second, "how long media flows once connected")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for media to start")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *secret == "" {
		*secret = getenv("ORVILLE_API_SECRET")
	}
	if *secret == "" {
		fmt.Fprintln(stderr, "FAIL: no API secret: set ORVILLE_API_SECRET (or --api-secret)")
		return exitUsage
	}
	tlsConf := &tls.Config{InsecureSkipVerify: *insecure} //nolint:gosec // operator's explicit choice
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	defer hc.CloseIdleConnections()
	apic := &client.APIClient{BaseURL: strings.TrimRight(*api, "/"), Secret: *secret, HTTPClient: hc}
	ctx := context.Background()

	sc, err := apic.CreateCall(ctx, nil)
	if err != nil {
		var ae *client.APIError
		if !errors.As(err, &ae) {
			fmt.Fprintln(stdout) // like the reference tool: a blank line when the API is not reachable
		}
		return apiFailure(stderr, *api, err)
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(sc.Raw)))
	defer func() { _ = apic.EndCall(context.Background(), sc.State.EventID) }()

	wsURL := sc.SignalingURL
	if *signalURL != "" {
		wsURL = *signalURL
	}
	names := []string{"test-calling-a", "test-calling-b"}
	var clients []*client.Client
	var started []time.Time
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for _, name := range names {
		g, err := apic.AddParticipant(ctx, sc.State.EventID, name)
		if err != nil {
			return apiFailure(stderr, *api, err)
		}
		jctx, cancel := context.WithTimeout(ctx, *timeout)
		started = append(started, time.Now())
		c, err := client.Join(jctx, client.Config{SignalingURL: wsURL, Token: g.Token, TLSConfig: tlsConf,
			ParticipantID: name, PublishAudio: true, PublishVideo: true, VideoBitrate: 500_000})
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "FAIL: %s could not join over the signaling channel %s: %v (is TCP %s open to clients?)\n",
				name, wsURL, err, portOf(wsURL))
			return exitNoMedia
		}
		clients = append(clients, c)
	}

	wctx, cancel := context.WithTimeout(ctx, *timeout)
	errA := clients[0].WaitForMedia(wctx, names[1:], []string{"audio", "video"})
	errB := clients[1].WaitForMedia(wctx, names[:1], []string{"audio", "video"})
	cancel()
	if errA == nil && errB == nil {
		time.Sleep(*duration)
	}
	okAll := true
	for i, c := range clients {
		from := names[1-i]
		ok, line := verdict(c.Stats(), from, names[i], started[i])
		fmt.Fprintln(stdout, line)
		okAll = okAll && ok
	}
	if !okAll {
		host, port := roomHostPort(sc.State.RoomURI)
		fmt.Fprintf(stderr, "FAIL: no UDP media between the clients and %s: open UDP ports %d–%d (and the rest of the media range, --port-start + 2 × --max-calls) from clients to this server\n",
			host, port, port+1)
		return exitNoMedia
	}
	return exitOK
}

// verdict summarizes what `to` received from `from`.
func verdict(st client.Stats, from, to string, joinStart time.Time) (bool, string) {
	var b strings.Builder
	fmt.Fprintf(&b, "udp %s → %s:", from, to)
	ok := true
	for _, kind := range []string{"audio", "video"} {
		var r *client.ReceivedTrackStats
		for i := range st.Received {
			if st.Received[i].ParticipantID == from && st.Received[i].Kind == kind {
				r = &st.Received[i]
			}
		}
		if r == nil || r.Packets == 0 {
			fmt.Fprintf(&b, " %s 0 packets;", kind)
			ok = false
			continue
		}
		first := r.FirstPacketAt.Sub(joinStart).Round(time.Millisecond)
		fmt.Fprintf(&b, " %s %d packets, loss %.1f%%, first after %v;", kind, r.Packets, 100*r.LossFraction, first)
	}
	fmt.Fprintf(&b, " rtt %v", st.Subscribe.RTT.Round(100*time.Microsecond))
	if ok {
		b.WriteString(" — OK")
	} else {
		b.WriteString(" — FAIL")
	}
	return ok, b.String()
}

func apiFailure(stderr io.Writer, api string, err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusUnauthorized:
			fmt.Fprintf(stderr, "FAIL: the API at %s refused the secret (401): check ORVILLE_API_SECRET matches the server's --api-secret\n", api)
			return exitRefused
		case http.StatusForbidden:
			fmt.Fprintf(stderr, "FAIL: the API at %s refused this host (403): add this host's address to the server's --api-allow\n", api)
			return exitRefused
		case http.StatusNotFound:
			fmt.Fprintf(stderr, "FAIL: %s answered 404: this is not an Orville API, or a proxy/firewall rule is wrong\n", api)
			return exitUnreachable
		}
		fmt.Fprintf(stderr, "FAIL: the API at %s answered %d: %s\n", api, ae.Status, ae.Message)
		return exitUnreachable
	}
	fmt.Fprintf(stderr, "FAIL: the API at %s is unreachable: %v (is TCP %s open from this host?)\n", api, err, portOf(api))
	return exitUnreachable
}

func portOf(rawURL string) string {
	rest := rawURL[strings.Index(rawURL, "://")+3:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	if _, p, err := net.SplitHostPort(rest); err == nil {
		return p
	}
	return "443"
}

func roomHostPort(uri string) (string, int) {
	host, p, err := net.SplitHostPort(uri)
	if err != nil {
		return uri, 0
	}
	var port int
	fmt.Sscan(p, &port)
	return host, port
}
