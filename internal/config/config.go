// Package config holds every setting of the Orville server and loads them with
// the precedence defaults < YAML file < environment (ORVILLE_*) < flags.
//
// The settings live in one table (settings.go); flags, environment names, YAML
// keys and Usage are all derived from it, so a new setting is one table row
// plus one Config field.
package config

import (
	"net"
	"net/netip"
	"time"
)

// Config is the resolved server configuration. Load returns it validated and
// with derived values (public address, node id, dev secret) filled in.
type Config struct {
	// Dev is a working local setup: loopback, unprivileged ports, console logs,
	// a generated API secret and a self-signed certificate.
	Dev bool
	// ConfigFile is the YAML file that was read, "" if none.
	ConfigFile string

	// APIListen is the TCP address of the HTTP API for the messaging server (the 444 role).
	APIListen string
	// TCPListen is the TCP address of the client listener (the 443 role).
	TCPListen string
	// TCPMaxConnsPerIP bounds the open connections of one source address on
	// TCPListen.
	TCPMaxConnsPerIP int
	// SOCKSListen is the TCP address of the SOCKS5 relay (the 8001 role);
	// "" turns it off.
	SOCKSListen string
	// APIAllow are the source networks allowed to use the HTTP API.
	APIAllow []netip.Prefix
	// APISecret is the bearer secret of the HTTP API.
	APISecret string
	// GeneratedSecret reports that APISecret was generated (dev mode); the
	// caller prints it once, since nobody else knows it.
	GeneratedSecret bool
	// TokenSecret signs join tokens; "" lets the caller choose (e.g. random per process).
	TokenSecret string
	// TokenTTL is the lifetime of a join token.
	TokenTTL time.Duration
	// TURNSecret keys the TURN REST credentials clients get with their join
	// token; "" lets the caller derive one from APISecret.
	TURNSecret string
	// TURNCredentialTTL is how long TURN (and SOCKS) credentials allow new
	// allocations.
	TURNCredentialTTL time.Duration

	// TLSCert and TLSKey are PEM files; both empty means "generate a self-signed certificate".
	TLSCert string
	TLSKey  string

	// ListenIP is where media sockets bind.
	ListenIP netip.Addr
	// PublicIP is the address clients are told (roomURI host).
	PublicIP netip.Addr
	// PublicIPDetected reports that PublicIP was auto-detected from the host's
	// interfaces, worth logging because it may be the wrong one behind NAT.
	PublicIPDetected bool
	// PublicIPv6 is the IPv6 address clients are told; invalid (zero) if unset.
	PublicIPv6 netip.Addr
	// CallingHostname is the host (optionally host:port) of the clients'
	// signaling URL; defaults to PublicIP.
	CallingHostname string

	// PortStart is the first UDP media port; call N owns PortStart+2N and PortStart+2N+1.
	PortStart int
	// MaxCalls is the number of concurrent calls (and port pairs).
	MaxCalls int
	// MaxParticipants is the per-call participant limit.
	MaxParticipants int
	// AudioTopN is how many of the loudest audio streams a participant of a
	// large call receives (plus the dominant speaker's); 0 forwards all.
	AudioTopN int
	// LastN is how many participants' videos a client receives by default
	// (the most relevant speakers); 0 is all of them.
	LastN int

	// EmptyTimeout ends a call nobody joined.
	EmptyTimeout time.Duration
	// LeaveGrace ends a call this long after the last participant left.
	LeaveGrace time.Duration
	// MaxCallDuration ends any call after this long.
	MaxCallDuration time.Duration
	// ResumeGrace keeps a participant whose WebSocket dropped or whose media
	// went silent, for its client to resume and restart ICE.
	ResumeGrace time.Duration

	// Cluster is the "cluster" field of the start-call answer.
	Cluster string
	// NodeID is the start-call "pid": 1–16 hex digits, random 4 if not configured.
	NodeID string

	// EtcdEndpoints, if any, make this node a cluster member (docs/cluster.md).
	EtcdEndpoints []string
	// EtcdPrefix roots the cluster's keys.
	EtcdPrefix string
	// EtcdLeaseTTL is how long a silent node stays registered.
	EtcdLeaseTTL time.Duration
	// AdvertiseAPI is host:port where other nodes reach this node's API;
	// resolved to public-ip and the api-listen port when empty.
	AdvertiseAPI string

	// DrainTimeout bounds a drain (SIGTERM, POST /v1/drain): calls still
	// running then end with reason server_shutdown.
	DrainTimeout time.Duration
	// HealthListen is the plain-HTTP probe listener (/healthz, /readyz);
	// "" is off.
	HealthListen string
	// WebhookURLs receive every life-cycle event (package webhooks), signed
	// with WebhookSecret; each attempt is bounded by WebhookTimeout, an event
	// is retried until it is WebhookRetryFor old.
	WebhookURLs     []string
	WebhookSecret   string
	WebhookTimeout  time.Duration
	WebhookRetryFor time.Duration

	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is json or console.
	LogFormat string
	// Pprof serves Go profiles on the API listener (opt-in: profiling costs CPU).
	Pprof bool
}

// MediaPortRange returns the first and last UDP media port (inclusive): two
// ports per call, so 50 calls from 16384 give 16384–16483.
func (c *Config) MediaPortRange() (first, last int) {
	return c.PortStart, c.PortStart + 2*c.MaxCalls - 1
}

// SignalingURL is the WebSocket URL clients use:
// wss://<calling-hostname or public-ip>:<tcp-listen port>/v1/rtc. A calling
// hostname that carries its own port (a load balancer or port forward in
// front of the server) keeps that port.
func (c *Config) SignalingURL() string {
	return "wss://" + c.signalingHostPort() + "/v1/rtc"
}

func (c *Config) signalingHostPort() string {
	if h, p, err := net.SplitHostPort(c.CallingHostname); err == nil && h != "" {
		return net.JoinHostPort(h, p)
	}
	host := c.CallingHostname
	if host == "" && c.PublicIP.IsValid() {
		host = c.PublicIP.String()
	}
	return net.JoinHostPort(host, portOf(c.TCPListen))
}

// SOCKSAddr is the SOCKS5 relay's address as clients are told it: the
// signaling URL's host with the port of --socks-listen; "" when it is off.
func (c *Config) SOCKSAddr() string {
	if c.SOCKSListen == "" {
		return ""
	}
	host, _, err := net.SplitHostPort(c.signalingHostPort())
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, portOf(c.SOCKSListen))
}

// APIURL is the URL local tools (test-calling) use to reach the HTTP API:
// https://<api-listen host, or 127.0.0.1 when it listens on all addresses>:<port>.
func (c *Config) APIURL() string {
	host, port, err := net.SplitHostPort(c.APIListen)
	if err != nil {
		return "https://" + c.APIListen
	}
	if a, err := netip.ParseAddr(host); host == "" || (err == nil && a.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(host, port)
}

// PeerAPIURL is the URL other cluster nodes use to reach this node's API.
func (c *Config) PeerAPIURL() string { return "https://" + c.AdvertiseAPI }

// AllowsAPI reports whether a request from addr may use the HTTP API.
// IPv4-mapped IPv6 addresses (from dual-stack listeners) match IPv4 prefixes.
func (c *Config) AllowsAPI(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range c.APIAllow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// portOf returns the port of a host:port address, "" if it has none.
func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}
