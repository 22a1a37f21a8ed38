package socks

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Config configures a Server. Zero limits mean the defaults.
type Config struct {
	// Listener is the TCP listener to serve (--socks-listen). Required; the
	// Server closes it.
	Listener net.Listener
	// Authenticate checks RFC 1929 credentials and says what they may
	// reach; an error refuses them. Required.
	Authenticate func(username, password string) (*Grant, error)
	// Logger is required.
	Logger *zap.Logger

	// MaxConns bounds open connections (default 1024), MaxConnsPerIP those
	// of one source address (default 64), MaxPerGrant those of one call
	// participant (default 16: signaling, two UDP associations and TURN
	// connections, with room for a reconnect).
	MaxConns, MaxConnsPerIP, MaxPerGrant int
	// HandshakeTimeout bounds greeting, authentication and request
	// (default 10 s); DialTimeout a CONNECT's dial (default 5 s).
	HandshakeTimeout, DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP association with no datagram either way for
	// this long (default 60 s; ICE consent checks, RFC 7675, run every few
	// seconds on a live one).
	UDPIdleTimeout time.Duration
}

func (c *Config) validate() error {
	if c.Listener == nil || c.Authenticate == nil || c.Logger == nil {
		return errors.New("socks: Listener, Authenticate and Logger are required")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxConns, 1024)
	def(&c.MaxConnsPerIP, min(64, c.MaxConns))
	def(&c.MaxPerGrant, 16)
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	dur(&c.HandshakeTimeout, 10*time.Second)
	dur(&c.DialTimeout, 5*time.Second)
	dur(&c.UDPIdleTimeout, time.Minute)
	if c.MaxConnsPerIP > c.MaxConns {
		return errors.New("socks: MaxConnsPerIP exceeds MaxConns")
	}
	return nil
}

// Grant is what one set of credentials may reach: nothing but the routes
// listed. Call and Participant name its holder, for the per-participant
// limit and for EndCall / EndParticipant.
type Grant struct {
	Call, Participant string
	// Connect lists the destinations of CONNECT (this server's client port).
	Connect []Route
	// UDP lists the destinations of UDP ASSOCIATE datagrams (the call's
	// two media ports).
	UDP []Route
	// Valid, if set, is asked once more after the session is registered:
	// a revocation between Authenticate and then found nothing to close.
	Valid func() bool
}

// Route is one allowed destination as the client names it, and where it
// really goes inside the host.
type Route struct {
	// Host is an IP address or a host name (compared case-insensitively);
	// host names are never resolved: a name that is not listed is refused.
	Host string
	Port uint16
	// To is where the traffic goes.
	To netip.AddrPort
}

// match reports whether the route is what dst names.
func (r *Route) match(dst Addr) bool {
	if dst.Port != r.Port {
		return false
	}
	if dst.IP.IsValid() {
		ip, err := netip.ParseAddr(r.Host)
		return err == nil && ip.Unmap() == dst.IP
	}
	return strings.EqualFold(strings.TrimSuffix(dst.Host, "."), r.Host)
}

// find returns the index of the route dst names, or -1.
func find(routes []Route, dst Addr) int {
	for i := range routes {
		if routes[i].match(dst) {
			return i
		}
	}
	return -1
}
