package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/orville/orville/loadtest"
)

// loadTest runs `orville loadtest`: synthetic calls against a server's API,
// then the report on stdout (text, or JSON with --json).
func loadTest(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadtest.Config
	fs.StringVar(&cfg.APIURL, "api", "https://127.0.0.1:444", "the server's API URL (TCP 444)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "accept the server's certificate without verification (self-signed)")
	fs.StringVar(&cfg.APISecret, "api-secret", "", "API secret (default: $ORVILLE_API_SECRET)")
	fs.StringVar(&cfg.SignalingURL, "signaling-url", "", "override the WebSocket URL the server advertises")
	fs.IntVar(&cfg.Calls, "calls", 1, "concurrent calls")
	fs.IntVar(&cfg.Participants, "participants", 3, "participants per call (everybody subscribes to everybody)")
	fs.IntVar(&cfg.AudioPublishers, "audio-publishers", 3, "participants per call publishing Opus audio (50 packets/s, 32 kb/s)")
	fs.IntVar(&cfg.VideoPublishers, "video-publishers", 0, "participants per call publishing VP8 video (1.5 Mb/s, 30 fps, key frame every 3 s)")
	fs.IntVar(&cfg.VideoBitrate, "video-bitrate", 0, "video bitrate in bits/s (default 1500000)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long media flows once everybody has joined")
	fs.BoolVar(&cfg.E2EE, "e2ee", false, "encrypt every frame end to end (RFC 9605 SFrame), one random secret per call")
	fs.BoolVar(&cfg.ForceTCP, "force-tcp", false, "clients skip UDP: ICE-TCP or TURN over TLS/TCP from the start")
	fs.BoolVar(&cfg.Simulcast, "simulcast", false, "video publishers send three simulcast layers (q, h, f: a tenth, a third and all of --video-bitrate)")
	fs.IntVar(&cfg.Tiles, "tiles", 0, "every participant shows this many videos (a subscription: the next video publishers of its call); 0: the server's last-N")
	fs.IntVar(&cfg.TileHeight, "tile-height", 0, "with --tiles, the tiles' height in pixels (the server sends the layer that fits; 0: no limit)")
	fs.IntVar(&cfg.Talkers, "talkers", 0, "per call, this many audio publishers talk (the loudest rotating every 3 s), the others send silence; 0: everyone talks")
	fs.IntVar(&cfg.JoinConcurrency, "join-concurrency", 16, "joins in flight at once (1: one at a time, the server's join path alone)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "the server's process id on this host: report its CPU time and memory from /proc")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	plot := fs.String("plot", "", "write bitrate, loss and server CPU over time to this PNG file")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "orville loadtest: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if cfg.APISecret == "" {
		cfg.APISecret = getenv("ORVILLE_API_SECRET")
	}
	cfg.Progress = stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadtest.Run(ctx, cfg)
	if errors.Is(err, loadtest.ErrConfig) {
		fmt.Fprintf(stderr, "orville %v\n", err)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "orville %v\n", err)
		return exitNoMedia
	}
	if *plot != "" {
		if err := loadtest.WritePlot(*plot, rep); err != nil {
			fmt.Fprintf(stderr, "orville loadtest: %v\n", err)
			return exitNoMedia
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "orville loadtest: %v\n", err)
			return exitNoMedia
		}
	} else {
		rep.WriteText(stdout)
	}
	if rep.JoinFailures > 0 || rep.Joined == 0 || rep.Forwarded.ReceivedByClients == 0 || rep.DecryptFailures > 0 {
		return exitNoMedia
	}
	return exitOK
}
