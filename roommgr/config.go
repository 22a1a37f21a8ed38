package roommgr

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/orville/orville/events"
	"github.com/orville/orville/sfu"
	"github.com/pion/ice/v4"
	pionnet "github.com/pion/transport/v5"
	"go.uber.org/zap"
)

// Config is the room manager's share of the server configuration.
type Config struct {
	// PortStart is the first port of the media range; call N owns
	// PortStart+2N (publish) and PortStart+2N+1 (subscribe).
	PortStart int
	// MaxCalls bounds concurrent calls, and so the range: 2 × MaxCalls ports.
	MaxCalls int
	// MaxParticipants is the default and the ceiling for one call.
	MaxParticipants int
	// AudioTopN is passed to every call (sfu.Config.AudioTopN).
	AudioTopN int
	// LastN is every call's sfu.Config.LastN: the videos a participant
	// receives until it chooses (0: every video).
	LastN int
	// ListenIP is where media sockets bind.
	ListenIP net.IP
	// PublicIP / PublicIPv6 are what clients are told (roomURI, candidates).
	PublicIP, PublicIPv6 string
	// NodeID is the start-call answer's "pid": a short hex id of this server.
	NodeID string
	// EmptyTimeout ends a call nobody joined; LeaveGrace ends a call this long
	// after its last participant left; MaxCallDuration ends every call.
	EmptyTimeout, LeaveGrace, MaxCallDuration time.Duration
	// ResumeGrace is how long a participant whose media went silent is kept
	// for an ICE restart before the SFU removes it ("transport_failed"):
	// the SFU's ICE failed timeout, counted after its 5 s disconnected
	// timeout. Signaling keeps a dropped WebSocket's place as long
	// (signaling.Config.ResumeGrace). Default 20 s.
	ResumeGrace time.Duration

	Logger *zap.Logger
	// Observer and Tap are passed to every call's sfu.Config.
	Observer sfu.Observer
	Tap      func(participant, trackID string, payload []byte)
	// OnEnd, if set, runs after a call ended and its ports were returned.
	OnEnd func(id, reason string)
	// OnRemove, if set, runs after the API removed a participant and its
	// grants were revoked (Room.Remove), e.g. to close its TURN and SOCKS
	// relays at once.
	OnRemove func(callID, participantID string)
	// TCPMux, if set, is the ICE-TCP mux on the shared TCP listener, passed
	// to every call (sfu.Config.TCPMux).
	TCPMux ice.TCPMux
	// Net, if set, is every call's network (sfu.Config.Net): tests run the
	// media plane inside a network namespace or on a virtual network.
	Net pionnet.Net
	// Events receives every call's life-cycle events (package events); nil
	// means none.
	Events events.Publisher
}

func (c *Config) validate() error {
	if c.Logger == nil {
		return errors.New("roommgr: Logger is required")
	}
	if c.MaxCalls <= 0 {
		return errors.New("roommgr: max calls must be at least 1")
	}
	if c.PortStart <= 0 || c.PortStart+2*c.MaxCalls-1 > 65535 {
		return fmt.Errorf("roommgr: port range %d–%d is not within 1–65535", c.PortStart, c.PortStart+2*c.MaxCalls-1)
	}
	if c.MaxParticipants <= 0 {
		return errors.New("roommgr: max participants must be at least 1")
	}
	if c.LastN < 0 {
		return errors.New("roommgr: last-n must not be negative")
	}
	if c.ListenIP == nil {
		return errors.New("roommgr: ListenIP is required")
	}
	for _, ip := range []string{c.PublicIP, c.PublicIPv6} {
		if ip != "" && net.ParseIP(ip) == nil {
			return fmt.Errorf("roommgr: %q is not an IP address", ip)
		}
	}
	if c.EmptyTimeout <= 0 || c.LeaveGrace <= 0 || c.MaxCallDuration <= 0 {
		return errors.New("roommgr: empty timeout, leave grace and max call duration must be positive")
	}
	if c.ResumeGrace < 0 {
		return errors.New("roommgr: resume grace must not be negative")
	}
	if c.ResumeGrace == 0 {
		c.ResumeGrace = 20 * time.Second
	}
	if c.Events == nil {
		c.Events = events.Nop{}
	}
	return nil
}

// PortRange returns the first and last media port.
func (c *Config) PortRange() (first, last int) { return c.PortStart, c.PortStart + 2*c.MaxCalls - 1 }
