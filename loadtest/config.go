// Package loadtest drives an Orville server the way a messaging server and
// its users would: it starts calls through the HTTP API, issues join tokens
// and joins synthetic clients (package client: Opus at 50 packets/s, VP8 at
// about 1.5 Mb/s and 30 fps with a key frame every 3 s), lets media flow
// for a fixed time and reports join time, loss, jitter, end-to-end latency,
// packets forwarded and — when the server runs on this host — its CPU and
// memory.
package loadtest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/orville/orville/client"
	"go.uber.org/zap"
)

// Config describes one load test run.
type Config struct {
	// APIURL is the server's HTTP API, e.g. https://127.0.0.1:8444.
	APIURL string
	// APISecret is the API's bearer secret.
	APISecret string
	// Insecure accepts a self-signed certificate (API and WebSocket).
	Insecure bool
	// SignalingURL overrides the WebSocket URL the server advertises.
	SignalingURL string

	// Calls run at once, each with Participants participants, of whom the
	// first AudioPublishers publish audio and the first VideoPublishers
	// publish video (a participant can do both). Everybody subscribes to
	// everybody else.
	Calls, Participants, AudioPublishers, VideoPublishers int
	// Duration is how long media flows once everybody has joined.
	Duration time.Duration
	// VideoBitrate of each video publisher (default client.DefaultVideoBitrate).
	VideoBitrate int
	// E2EE encrypts every frame end to end (RFC 9605 SFrame, client.E2EE):
	// each call gets its own random secret shared by its participants, as a
	// messaging platform's E2E channel would hand out.
	E2EE bool
	// ForceTCP makes every client skip UDP (ICE-TCP or TURN over TLS/TCP).
	ForceTCP bool

	// ServerPID, when not 0, is the server's process id on this host: its
	// CPU time and memory are read from /proc.
	ServerPID int
	// Simulcast makes every video publisher send three layers (q, h, f at
	// a tenth, a third and all of VideoBitrate; client.Config.Simulcast).
	Simulcast bool
	// Tiles, when above 0, makes every participant show that many videos
	// (a `subscription`): the next Tiles video publishers after it in its
	// call, at most TileHeight pixels tall (0: no limit). 0 keeps the
	// server's default (last-N).
	Tiles, TileHeight int
	// Talkers, when above 0, makes that many of each call's audio publishers
	// talk (RFC 6464 levels well above the floor, the loudest rotating every
	// TalkRotation) and the other audio publishers send silence (-127 dBov);
	// 0: every audio publisher talks at client.DefaultAudioLevel.
	Talkers int
	// TalkRotation is how often the loudest talker changes (0: 3 s).
	TalkRotation time.Duration
	// JoinConcurrency bounds the joins in flight (0: 16). 1 joins one
	// participant at a time: each join then measures the server's join path
	// into a call of growing size, not the load generator's own CPU.
	JoinConcurrency int
	// ProcRoot is where /proc is (tests point it elsewhere); default "/proc".
	ProcRoot string

	// Progress receives a progress bar (nil: none).
	Progress io.Writer
	// Logger receives the clients' logs (nil: none).
	Logger *zap.Logger
	// SampleInterval is how often the clients' statistics are read (default
	// 500 ms); the report's timeline has one point per second.
	SampleInterval time.Duration
	// JoinTimeout bounds each participant's join (default 20 s).
	JoinTimeout time.Duration
}

// ErrConfig is matched (errors.Is) by every error Run returns for an
// invalid Config, before anything is sent to the server.
var ErrConfig = errors.New("invalid load test configuration")

type configError struct{ err error }

func (e configError) Error() string        { return e.err.Error() }
func (e configError) Is(target error) bool { return target == ErrConfig }

// maxParticipantsTotal bounds one run: every participant is a pair of pion
// peer connections in this process.
const maxParticipantsTotal = 2500

func (c *Config) validate() error {
	if c.APIURL == "" {
		return errors.New("loadtest: the API URL is required (--api)")
	}
	u, err := url.Parse(c.APIURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("loadtest: --api %q is not an http(s) URL", c.APIURL)
	}
	if c.APISecret == "" {
		return errors.New("loadtest: no API secret: set ORVILLE_API_SECRET (or --api-secret)")
	}
	if c.Calls < 1 || c.Participants < 1 {
		return errors.New("loadtest: --calls and --participants must be at least 1")
	}
	if c.Calls*c.Participants > maxParticipantsTotal {
		return fmt.Errorf("loadtest: %d participants in all is more than %d", c.Calls*c.Participants, maxParticipantsTotal)
	}
	if c.AudioPublishers < 0 || c.AudioPublishers > c.Participants ||
		c.VideoPublishers < 0 || c.VideoPublishers > c.Participants {
		return fmt.Errorf("loadtest: publishers must be between 0 and --participants (%d)", c.Participants)
	}
	if c.AudioPublishers+c.VideoPublishers == 0 {
		return errors.New("loadtest: nobody publishes: set --audio-publishers or --video-publishers")
	}
	if c.Duration <= 0 {
		return errors.New("loadtest: --duration must be positive")
	}
	if c.Tiles < 0 || c.TileHeight < 0 {
		return errors.New("loadtest: --tiles and --tile-height must not be negative")
	}
	if c.Talkers < 0 || c.Talkers > c.AudioPublishers {
		return fmt.Errorf("loadtest: Talkers %d: 0 to AudioPublishers (%d)", c.Talkers, c.AudioPublishers)
	}
	if c.TalkRotation <= 0 {
		c.TalkRotation = 3 * time.Second
	}
	if c.JoinConcurrency < 0 {
		return errors.New("loadtest: JoinConcurrency must not be negative")
	}
	if c.JoinConcurrency == 0 {
		c.JoinConcurrency = maxConcurrentJoins
	}
	if c.ServerPID < 0 {
		return errors.New("loadtest: --server-pid must be a process id")
	}
	if c.ProcRoot == "" {
		c.ProcRoot = "/proc"
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.SampleInterval <= 0 {
		c.SampleInterval = 500 * time.Millisecond
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 20 * time.Second
	}
	if c.VideoBitrate == 0 {
		c.VideoBitrate = client.DefaultVideoBitrate
	}
	return nil
}

// tlsConfig is shared by the API client and every WebSocket dial.
func (c *Config) tlsConfig() *tls.Config {
	return &tls.Config{InsecureSkipVerify: c.Insecure} //nolint:gosec // the operator's explicit choice (--insecure)
}

func (c *Config) httpClient() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: c.tlsConfig(), MaxIdleConnsPerHost: 16,
	}}
}
