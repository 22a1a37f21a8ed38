package sfu

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pion/ice/v4"
	pion "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"go.uber.org/zap"
)

// Config describes one call's media plane: the port pair it owns and what clients
// are told about it. Every call gets its own Config (and so its own sockets), which
// is what isolates calls from each other.
type Config struct {
	// ID names the call in logs and events.
	ID string
	// ListenIP is the address the two UDP sockets bind to (0.0.0.0 for all).
	ListenIP net.IP
	// PublishPort (P, even) receives every participant's publish transport;
	// SubscribePort (P+1) carries every participant's subscribe transport.
	PublishPort, SubscribePort int
	// AdvertiseIPs replace the bound address in candidates (NAT 1:1 mapping:
	// --public-ip / --public-ipv6). Empty means the bound address is reachable.
	AdvertiseIPs []string
	// Logger is required.
	Logger *zap.Logger
	// Net opens the call's sockets and is the ICE agents' network. Nil is the
	// host's network; tests pass a pion vnet.Net to run calls on a virtual
	// network with loss, delay and NAT.
	Net pion.Net
	// TCPMux, if set, adds an ICE-TCP passive candidate (RFC 6544) on the
	// shared TCP listener to both transports. One mux serves every call: it
	// hands each connection to the agent whose ICE ufrag its first binding
	// request names, and ufrags are random per transport.
	TCPMux ice.TCPMux
	// Certificate is the DTLS certificate of the call's transports (RFC 8827
	// §6.5: only its fingerprint matters). Nil generates one per call.
	Certificate *tls.Certificate

	// QueueSize bounds the send queue of a transport that can block (ICE-TCP,
	// packets). A full queue loses packets instead of stalling the publisher.
	QueueSize int
	// PLIInterval is the minimum time between two keyframe requests relayed to
	// one publisher: many subscribers asking at once cost one keyframe.
	PLIInterval time.Duration
	// ICEDisconnectedTimeout / ICEFailedTimeout bound how long a silent client is kept.
	ICEDisconnectedTimeout, ICEFailedTimeout time.Duration
	// OfferTimeout is how long a subscribe offer may stay unanswered before
	// the server stops waiting for it and offers again.
	OfferTimeout time.Duration
	// AudioTopN, when above 0, forwards in a call of more than AudioTopN+1
	// participants only the AudioTopN loudest audio tracks plus the dominant
	// speaker's, and no silence (speaker.go); 0 forwards every audio track.
	AudioTopN int
	// Tap, when set, sees every forwarded packet's RTP payload (test-only: proves
	// the server only ever handles ciphertext). Must not retain the slice.
	Tap func(participant, trackID string, payload []byte)
	// Observer receives counters for metrics; nil means none.
	Observer Observer
	// LastN is how many participants' videos a subscriber receives when
	// it did not choose (the `subscription` message): the most relevant
	// speakers first. 0 is every video (the server's --last-n is 9).
	LastN int
	// OnTrack, if set, is told when a participant's track starts (published)
	// and stops being forwarded, once each, on the goroutine that made the
	// change: it must not block (the room manager queues an event).
	OnTrack func(participantID string, t TrackInfo, published bool)
}

const (
	defaultQueueSize    = 512
	defaultPLIInterval  = 500 * time.Millisecond
	defaultOfferTimeout = 10 * time.Second
)

func (c *Config) validate() error {
	if c.Logger == nil {
		return errors.New("sfu: Logger is required")
	}
	if c.ListenIP == nil {
		return errors.New("sfu: ListenIP is required")
	}
	for _, p := range []int{c.PublishPort, c.SubscribePort} {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("sfu: port %d out of range", p)
		}
	}
	if c.PublishPort == c.SubscribePort {
		return errors.New("sfu: publish and subscribe ports must differ")
	}
	for _, ip := range c.AdvertiseIPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("sfu: advertised address %q is not an IP", ip)
		}
	}
	if c.Net == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			return fmt.Errorf("sfu: network: %w", err)
		}
		c.Net = n
	}
	if c.QueueSize <= 0 {
		c.QueueSize = defaultQueueSize
	}
	if c.PLIInterval <= 0 {
		c.PLIInterval = defaultPLIInterval
	}
	if c.ICEDisconnectedTimeout <= 0 {
		c.ICEDisconnectedTimeout = 5 * time.Second
	}
	if c.ICEFailedTimeout <= 0 {
		c.ICEFailedTimeout = 15 * time.Second
	}
	if c.OfferTimeout <= 0 {
		c.OfferTimeout = defaultOfferTimeout
	}
	if c.AudioTopN < 0 {
		return errors.New("sfu: AudioTopN must not be negative")
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.LastN < 0 {
		return errors.New("sfu: LastN must not be negative")
	}
	return nil
}
