// Package client is Orville's Go calling client. It joins a call over the
// signaling WebSocket (docs/signaling.md), publishes synthetic audio and video
// on the publish transport, receives everybody else's media on the subscribe
// transport and measures what arrives.
//
// It is used by tests, by `orville test-calling` and by the load tester, so it
// imports only pion, gorilla/websocket, zap, the standard library and this
// repository's e2ee package (end-to-end encryption, client/e2ee.go): never a
// server package (internal/archtest enforces it).
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"

	pionnet "github.com/pion/transport/v5"
	"go.uber.org/zap"
)

// Defaults for Config. The video numbers match a typical 360p WebRTC camera
// stream, so a load test with default settings resembles real calls.
const (
	DefaultVideoBitrate     = 1_500_000 // bits per second
	DefaultVideoFPS         = 30
	DefaultKeyframeInterval = 3 * time.Second
	DefaultJoinTimeout      = 10 * time.Second
)

// Media kinds as used in signaling messages, Stats and FrameTransform.
const (
	KindAudio = "audio"
	KindVideo = "video"
)

// Transport names as used in signaling messages and WaitConnected.
const (
	TransportPublish   = "publish"
	TransportSubscribe = "subscribe"
)

// FrameTransform changes whole media frames: Encrypt runs on every frame
// before it is packetized and sent, Decrypt on every frame after it has been
// depacketized. It is the hook for end-to-end encryption (RFC 9605 SFrame):
// the transform must keep the codec's clear prefix (VP8: 10 bytes for key
// frames, 3 for delta frames; Opus: 1 byte) in front of its output so the
// SFU and the depacketizer still see the frame tag.
//
// kind is KindAudio or KindVideo. Encrypt returning nil drops the frame.
// The kind is a plain string so that an implementation (package e2ee) needs
// no import of this package.
type FrameTransform interface {
	Encrypt(kind string, frame []byte) []byte
	Decrypt(kind string, frame []byte) ([]byte, error)
}

// Config configures one client. The zero value of every optional field means
// "use the default".
type Config struct {
	// SignalingURL is the WebSocket URL, e.g. wss://calls.example.com/v1/rtc.
	SignalingURL string
	// Token is the join token from the API (POST /v1/calls/{id}/participants).
	Token string
	// TLSConfig is used for the WebSocket dial (tests set InsecureSkipVerify).
	TLSConfig *tls.Config
	// ParticipantID is only used to label log lines; the server decides the
	// participant id from the token.
	ParticipantID string

	// AudioLevel is the synthetic microphone's level in -dBov (RFC 6464):
	// 0 means DefaultAudioLevel, Silence (127) a muted room;
	// Client.SetAudioLevel changes it during the call.
	AudioLevel uint8
	// PublishAudio and PublishVideo select the synthetic tracks to send.
	PublishAudio bool
	PublishVideo bool
	// VideoBitrate in bits per second (default 1.5 Mb/s).
	VideoBitrate int
	// VideoFPS in frames per second (default 30).
	VideoFPS int
	// KeyframeInterval between periodic VP8 key frames (default 3 s).
	KeyframeInterval time.Duration
	// Simulcast sends the video as three encodings, rids q, h and f, at a
	// tenth, a third and all of VideoBitrate, a quarter, half and the full
	// picture (simulcast.go); the server turns them off and on (`layers`).
	Simulcast bool

	// Transform, when set, encrypts sent frames and decrypts received ones.
	Transform FrameTransform

	// ForceTCP skips UDP: the client connects over ICE-TCP or the server's
	// TURN over TLS/TCP from the start (the reference client's "force TCP").
	ForceTCP bool
	// UDPOnly never falls back to TCP (diagnostics: `test-calling` checks
	// UDP and TCP separately).
	UDPOnly bool
	// TCPFallbackDelay is how long after the start of Join a transport that
	// has not connected over UDP also tries TCP (default
	// DefaultTCPFallbackDelay, 3 s).
	TCPFallbackDelay time.Duration
	// TCPPaths limits the TCP paths tried (PathTCP, PathTURNTLS,
	// PathTURNTCP); nil means all of them. Diagnostics use it to check
	// each path on its own.
	TCPPaths []string
	// SOCKS, if set, reaches the call only through this SOCKS5 relay (the
	// join answer's "socks"): signaling and TURN over CONNECT, media over
	// UDP ASSOCIATE (socks.go). ICE-TCP, which would go around it, is off.
	SOCKS *SOCKSProxy

	// NetDialContext, if set, opens the signaling socket's TCP connection
	// (tests run a client inside a network namespace with it).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ICENet, if set, is the network the ICE agents gather candidates on
	// and open sockets in, instead of the host's (pion's transport.Net).
	ICENet pionnet.Net

	// Logger receives the client's logs (nil: no logs).
	Logger *zap.Logger
	// JoinTimeout bounds Join from the dial to the publish answer (default 10 s).
	JoinTimeout time.Duration
}

// tcpPathAllowed reports whether TCPPaths allows path.
func (c *Config) tcpPathAllowed(path string) bool {
	return c.TCPPaths == nil || slices.Contains(c.TCPPaths, path)
}

// validate fills in defaults and checks the configuration.
func (c *Config) validate() error {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.VideoBitrate == 0 {
		c.VideoBitrate = DefaultVideoBitrate
	}
	if c.VideoFPS == 0 {
		c.VideoFPS = DefaultVideoFPS
	}
	if c.KeyframeInterval == 0 {
		c.KeyframeInterval = DefaultKeyframeInterval
	}
	if c.JoinTimeout == 0 {
		c.JoinTimeout = DefaultJoinTimeout
	}
	if c.TCPFallbackDelay == 0 {
		c.TCPFallbackDelay = DefaultTCPFallbackDelay
	}
	if c.ForceTCP && c.UDPOnly {
		return errors.New("client: ForceTCP and UDPOnly exclude each other")
	}
	if c.SOCKS != nil && (c.SOCKS.Address == "" || c.SOCKS.Username == "") {
		return errors.New("client: SOCKS needs an address and credentials")
	}
	if c.SOCKS != nil && c.ForceTCP {
		return errors.New("client: SOCKS relays UDP: it excludes ForceTCP")
	}
	for _, p := range c.TCPPaths {
		if p != PathTCP && p != PathTURNTLS && p != PathTURNTCP {
			return fmt.Errorf("client: TCPPaths: unknown path %q (tcp, turn-tls, turn-tcp)", p)
		}
	}
	if c.TCPFallbackDelay < 0 {
		return fmt.Errorf("client: TCPFallbackDelay %v is negative", c.TCPFallbackDelay)
	}

	if c.SignalingURL == "" {
		return errors.New("client: SignalingURL is required")
	}
	u, err := url.Parse(c.SignalingURL)
	if err != nil {
		return fmt.Errorf("client: SignalingURL: %w", err)
	}
	if u.Scheme != "wss" && u.Scheme != "ws" {
		return fmt.Errorf("client: SignalingURL %q: scheme must be wss (or ws)", c.SignalingURL)
	}
	if u.Host == "" {
		return fmt.Errorf("client: SignalingURL %q has no host", c.SignalingURL)
	}
	if c.Token == "" {
		return errors.New("client: Token is required")
	}
	if c.VideoFPS < 1 || c.VideoFPS > 120 {
		return fmt.Errorf("client: VideoFPS %d out of range 1..120", c.VideoFPS)
	}
	// Every frame must at least hold the VP8 key frame header and the marker.
	if c.VideoBitrate < 8*(vp8KeyHeaderLen+markerLen)*c.VideoFPS {
		return fmt.Errorf("client: VideoBitrate %d b/s is too low for %d fps", c.VideoBitrate, c.VideoFPS)
	}
	if c.Simulcast && float64(c.VideoBitrate)*simulcastShare[0] < float64(8*(vp8KeyHeaderLen+markerLen)*c.VideoFPS) {
		return fmt.Errorf("client: VideoBitrate %d b/s is too low for simulcast at %d fps (its q layer gets a tenth)", c.VideoBitrate, c.VideoFPS)
	}
	if c.KeyframeInterval < 0 {
		return fmt.Errorf("client: KeyframeInterval %v is negative", c.KeyframeInterval)
	}
	if c.JoinTimeout < 0 {
		return fmt.Errorf("client: JoinTimeout %v is negative", c.JoinTimeout)
	}
	return nil
}
