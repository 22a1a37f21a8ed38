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

// testCalling starts a call through the API and checks UDP and TCP
// separately: for each, it joins two synthetic clients (UDPOnly, then
// ForceTCP), exchanges audio and video for a few seconds and prints a verdict
// per direction. --force-tcp checks TCP alone, --socks the SOCKS relay alone.
// It exits 0 only when every check passed.
func testCalling(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("test-calling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", "https://127.0.0.1:444", "the server's API URL (TCP 444)")
	insecure := fs.Bool("insecure", false, "accept the server's certificate without verification (self-signed)")
	secret := fs.String("api-secret", "", "API secret (default: $ORVILLE_API_SECRET)")
	signalURL := fs.String("signaling-url", "", "override the WebSocket URL the server advertises")
	duration := fs.Duration("duration", 3*time.Second, "how long media flows once connected")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for media to start")
	forceTCP := fs.Bool("force-tcp", false, "check only the TCP path (ICE-TCP, TURN over TLS/TCP on the client port), as clients that force TCP use it")
	viaSOCKS := fs.Bool("socks", false, "check only the SOCKS5 relay (--socks-listen, TCP 8001): signaling through CONNECT, media through UDP ASSOCIATE, with each participant's credentials from the join answer")
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
	chk := &callCheck{apic: apic, eventID: sc.State.EventID, wsURL: wsURL, tlsConf: tlsConf,
		timeout: *timeout, duration: *duration, stdout: stdout, stderr: stderr}
	host, port := roomHostPort(sc.State.RoomURI)
	if *viaSOCKS {
		chk.needSOCKS = true
		switch c := chk.run(ctx, "socks", func(cfg *client.Config) { cfg.SOCKS = chk.grant.SOCKS }); c {
		case exitNoMedia:
			fmt.Fprintf(stderr, "FAIL: no media through the SOCKS relay %s: open TCP %s to it, and UDP to this server's ephemeral ports (UDP ASSOCIATE relays from one)\n",
				chk.socksAddr, portOf("socks://"+chk.socksAddr))
			return exitNoMedia
		default:
			return c
		}
	}
	code := exitOK
	if !*forceTCP {
		// UDP alone: what clients use when the media ports are open.
		switch c := chk.run(ctx, "udp", func(cfg *client.Config) { cfg.UDPOnly = true }); c {
		case exitOK:
		case exitNoMedia:
			fmt.Fprintf(stderr, "FAIL: no UDP media between the clients and %s: open UDP ports %d–%d (and the rest of the media range, --port-start + 2 × --max-calls) from clients to this server\n",
				host, port, port+1)
			code = exitNoMedia
		default:
			return c
		}
	}
	// TCP alone (ForceTCP): ICE-TCP or TURN over TLS/TCP on the client port,
	// what clients fall back to when UDP is blocked.
	switch c := chk.run(ctx, "tcp", func(cfg *client.Config) { cfg.ForceTCP = true }); c {
	case exitOK:
	case exitNoMedia:
		fmt.Fprintf(stderr, "FAIL: no media over TCP to %s: open TCP %s (the client port: signaling, ICE-TCP and TURN) from clients to this server\n",
			wsURL, portOf(wsURL))
		code = exitNoMedia
	default:
		return c
	}
	return code
}

// callCheck joins two synthetic clients to one call per check and reports
// what each received from the other.
type callCheck struct {
	apic              *client.APIClient
	eventID, wsURL    string
	tlsConf           *tls.Config
	timeout, duration time.Duration
	stdout, stderr    io.Writer
	// needSOCKS: the check goes through the SOCKS relay the join answer
	// names; grant is the participant being joined, socksAddr the relay.
	needSOCKS bool
	grant     *client.JoinGrant
	socksAddr string
}

// run joins two participants named after label, with mod applied to their
// config, and prints a verdict per direction. It returns exitOK,
// exitNoMedia, or the API's failure code.
func (k *callCheck) run(ctx context.Context, label string, mod func(*client.Config)) int {
	names := []string{"test-calling-" + label + "-a", "test-calling-" + label + "-b"}
	var clients []*client.Client
	var started []time.Time
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for _, name := range names {
		g, err := k.apic.AddParticipant(ctx, k.eventID, name)
		if err != nil {
			return apiFailure(k.stderr, k.apic.BaseURL, err)
		}
		if k.needSOCKS && g.SOCKS == nil {
			fmt.Fprintln(k.stderr, "FAIL: the join answer names no SOCKS relay: the server runs none (--socks-listen is empty)")
			return exitRefused
		}
		if g.SOCKS != nil {
			k.socksAddr = g.SOCKS.Address
		}
		k.grant = g
		jctx, cancel := context.WithTimeout(ctx, k.timeout)
		started = append(started, time.Now())
		cfg := client.Config{SignalingURL: k.wsURL, Token: g.Token, TLSConfig: k.tlsConf,
			ParticipantID: name, PublishAudio: true, PublishVideo: true, VideoBitrate: 500_000}
		mod(&cfg)
		c, err := client.Join(jctx, cfg)
		cancel()
		if err != nil {
			fmt.Fprintf(k.stderr, "FAIL: %s could not join over the signaling channel %s: %v (is TCP %s open to clients?)\n",
				name, k.wsURL, err, portOf(k.wsURL))
			return exitNoMedia
		}
		clients = append(clients, c)
	}

	wctx, cancel := context.WithTimeout(ctx, k.timeout)
	errA := clients[0].WaitForMedia(wctx, names[1:], []string{"audio", "video"})
	errB := clients[1].WaitForMedia(wctx, names[:1], []string{"audio", "video"})
	cancel()
	if errA == nil && errB == nil {
		time.Sleep(k.duration)
	}
	okAll := true
	for i, c := range clients {
		ok, line := verdict(label, c.Stats(), names[1-i], names[i], started[i])
		fmt.Fprintln(k.stdout, line)
		okAll = okAll && ok
	}
	if !okAll {
		return exitNoMedia
	}
	return exitOK
}

// verdict summarizes what `to` received from `from` in the check label.
func verdict(label string, st client.Stats, from, to string, joinStart time.Time) (bool, string) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s → %s:", label, from, to)
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
	if st.Subscribe.Path != "" {
		fmt.Fprintf(&b, " via %s", st.Subscribe.Path) // udp, tcp (ICE-TCP), turn-tls, turn-tcp
	}
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
