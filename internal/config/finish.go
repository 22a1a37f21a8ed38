package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

const (
	// minSecretLen keeps bearer and signing secrets out of guessing range.
	minSecretLen = 16
	// generatedSecretBytes is the entropy of the --dev API secret (256 bits).
	generatedSecretBytes = 32
	// maxPort is the highest UDP port number.
	maxPort = 65535
	// maxNodeIDLen is the longest "pid" allowed (64 bits as hex).
	maxNodeIDLen = 16
)

// finish validates the merged settings and fills in derived values. Every
// error names the flag and its environment variable, because the operator
// may have used either.
func (c *Config) finish(detectIPv4 func() (netip.Addr, error)) error {
	var errs []error
	bad := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s %s", flagEnv(name), fmt.Sprintf(format, a...)))
	}

	switch {
	case c.APISecret == "" && c.Dev:
		c.APISecret = randomSecret()
		c.GeneratedSecret = true
	case c.APISecret == "":
		bad("api-secret", "is required (at least %d characters); --dev generates one", minSecretLen)
	case len(c.APISecret) < minSecretLen:
		bad("api-secret", "must be at least %d characters", minSecretLen)
	}
	if c.TokenSecret != "" && len(c.TokenSecret) < minSecretLen {
		bad("token-secret", "must be at least %d characters if set", minSecretLen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, fmt.Errorf("%s and %s must be set together (neither means a self-signed certificate)",
			flagEnv("tls-cert"), flagEnv("tls-key")))
	}
	if len(c.APIAllow) == 0 {
		bad("api-allow", "must list at least one network")
	}

	switch {
	case c.PortStart < 1 || c.PortStart > maxPort:
		bad("port-start", "must be between 1 and %d", maxPort)
	case c.MaxCalls < 1:
		bad("max-calls", "must be at least 1")
	default:
		if first, last := c.MediaPortRange(); last > maxPort {
			bad("max-calls", "is too large: %d calls need UDP ports %d-%d, past %d; lower it or --port-start",
				c.MaxCalls, first, last, maxPort)
		}
	}
	if c.MaxParticipants < 1 {
		bad("max-participants", "must be at least 1")
	}
	if c.AudioTopN < 0 {
		bad("audio-top-n", "must not be negative")
	}
	if c.LastN < 0 {
		bad("last-n", "must be 0 (every video) or more")
	}
	if c.TCPMaxConnsPerIP < 1 {
		bad("tcp-max-conns-per-ip", "must be at least 1")
	}
	for _, d := range []struct {
		name      string
		v         int64
		allowZero bool
	}{
		{"token-ttl", int64(c.TokenTTL), false},
		{"turn-credential-ttl", int64(c.TURNCredentialTTL), false},
		{"empty-timeout", int64(c.EmptyTimeout), false},
		{"leave-grace", int64(c.LeaveGrace), true},
		{"max-call-duration", int64(c.MaxCallDuration), false},
		{"resume-grace", int64(c.ResumeGrace), false},
	} {
		if d.v < 0 || (d.v == 0 && !d.allowZero) {
			bad(d.name, "must be positive")
		}
	}

	c.finishOperations(bad)

	if c.Cluster == "" {
		bad("cluster", "must not be empty")
	}
	switch {
	case c.NodeID == "":
		c.NodeID = randomHex(2) // 4 hex digits, like the reference "pid"
	case len(c.NodeID) > maxNodeIDLen || !isHex(c.NodeID):
		bad("node-id", "must be 1-%d hex digits", maxNodeIDLen)
	}

	c.resolveAddresses(bad, detectIPv4)
	c.resolveCluster(bad)
	return errors.Join(errs...)
}

// resolveAddresses checks the media addresses and derives the advertised
// ones: public-ip falls back to a specific listen-ip, else to the host's first
// IPv4 address; calling-hostname falls back to public-ip.
func (c *Config) resolveAddresses(bad func(name, format string, a ...any), detectIPv4 func() (netip.Addr, error)) {
	if !c.ListenIP.IsValid() {
		bad("listen-ip", "must be set (0.0.0.0 for all addresses)")
		return
	}
	if c.PublicIPv6.IsValid() && (!c.PublicIPv6.Is6() || c.PublicIPv6.IsUnspecified()) {
		bad("public-ipv6", "must be a specific IPv6 address")
	}
	switch {
	case c.PublicIP.IsValid() && c.PublicIP.IsUnspecified():
		bad("public-ip", "must be a specific address that clients can reach")
	case c.PublicIP.IsValid():
	case !c.ListenIP.IsUnspecified():
		c.PublicIP = c.ListenIP
	default:
		ip, err := detectIPv4()
		if err != nil {
			bad("public-ip", "is not set and could not be detected (%v); set --public-ip to the address clients reach", err)
			return
		}
		c.PublicIP, c.PublicIPDetected = ip, true
	}

	// Brackets are URL syntax, not part of the host.
	if strings.HasPrefix(c.CallingHostname, "[") && strings.HasSuffix(c.CallingHostname, "]") {
		c.CallingHostname = c.CallingHostname[1 : len(c.CallingHostname)-1]
	}
	if strings.ContainsAny(c.CallingHostname, "/ ") {
		bad("calling-hostname", "must be a host or host:port, not a URL")
	}
	if c.CallingHostname == "" {
		c.CallingHostname = c.PublicIP.String()
	}
}

// randomSecret returns generatedSecretBytes random bytes as unpadded base64url,
// safe to paste into a header or an environment variable.
func randomSecret() string {
	b := make([]byte, generatedSecretBytes)
	_, _ = rand.Read(b) // never fails since Go 1.24 (it crashes instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func isHex(s string) bool {
	_, err := hex.DecodeString(strings.Repeat("0", len(s)%2) + s)
	return err == nil
}

// resolveCluster checks the cluster settings and derives where peers reach
// this node's API: public-ip and the api-listen port unless set.
func (c *Config) resolveCluster(bad func(name, format string, a ...any)) {
	if len(c.EtcdEndpoints) == 0 {
		return
	}
	if c.EtcdLeaseTTL < 2*time.Second || c.EtcdLeaseTTL%time.Second != 0 {
		bad("etcd-lease-ttl", "must be whole seconds, at least 2s")
	}
	if c.EtcdPrefix == "" || strings.ContainsAny(c.EtcdPrefix, " \n") {
		bad("etcd-prefix", "must be a non-empty key prefix")
	}
	if c.AdvertiseAPI == "" {
		host := "127.0.0.1"
		if c.PublicIP.IsValid() {
			host = c.PublicIP.String()
		}
		c.AdvertiseAPI = net.JoinHostPort(host, portOf(c.APIListen))
	}
	if h, p, err := net.SplitHostPort(c.AdvertiseAPI); err != nil || h == "" || p == "" || p == "0" {
		bad("advertise-api", "must be host:port with a port other nodes can dial (not 0)")
	}
}
