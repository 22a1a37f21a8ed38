package config

import (
	"net/netip"
	"strings"
	"time"
)

// setting is one row of the settings table. The flag is --name, the
// environment variable envName(name) and the YAML key name.
type setting struct {
	name string
	// arg names the value in Usage ("ADDR", "N", …); "" for booleans.
	arg string
	// def is the default; devDef, if not "", replaces it when dev is on.
	def    string
	devDef string
	help   string
	// set parses a raw value (from any source) into the Config field.
	set func(c *Config, raw string) error
	// list settings also accept a YAML sequence (joined with commas).
	list bool
	// noFile marks --config: a file cannot name the file it is read from.
	noFile bool
}

// envPrefix prefixes every environment variable.
const envPrefix = "ORVILLE_"

// envName maps a flag name to its environment variable: max-calls → ORVILLE_MAX_CALLS.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// flagEnv names a setting the way validation errors do: "--max-calls (ORVILLE_MAX_CALLS)".
func flagEnv(name string) string {
	return "--" + name + " (" + envName(name) + ")"
}

const (
	nameDev    = "dev"
	nameConfig = "config"
)

// settings is the single table of every server setting, in Usage order.
// Defaults follow the reference deployment (see DESIGN.md "Facts").
func settings() []setting {
	return []setting{
		{name: nameDev, def: "false",
			help: "local setup without root or files: loopback, unprivileged ports, console logs, generated API secret, self-signed certificate",
			set:  boolField(func(c *Config) *bool { return &c.Dev })},
		{name: nameConfig, arg: "FILE", noFile: true,
			help: "YAML file with settings (keys are the flag names; unknown keys are an error)",
			set:  stringField(func(c *Config) *string { return &c.ConfigFile })},

		{name: "api-listen", arg: "ADDR", def: ":444", devDef: "127.0.0.1:8444",
			help: "TCP address of the HTTPS API for the messaging server",
			set:  addrField(func(c *Config) *string { return &c.APIListen })},
		{name: "tcp-listen", arg: "ADDR", def: ":443", devDef: "127.0.0.1:8443",
			help: "TCP address for clients: WebSocket signaling, ICE-TCP and TURN",
			set:  addrField(func(c *Config) *string { return &c.TCPListen })},
		{name: "tcp-max-conns-per-ip", arg: "N", def: "512",
			help: "open connections one source address may hold on --tcp-listen (a meeting behind one NAT shares an address); past it new ones are refused",
			set:  intField(func(c *Config) *int { return &c.TCPMaxConnsPerIP })},
		{name: "socks-listen", arg: "ADDR", def: ":8001", devDef: "127.0.0.1:8001",
			help: "TCP address of the SOCKS5 relay, reaching only this server's client port and each participant's own call media (empty: off)",
			set:  optionalAddrField(func(c *Config) *string { return &c.SOCKSListen })},
		{name: "api-allow", arg: "CIDRS", def: "127.0.0.1/32,::1/128", list: true,
			help: "comma-separated networks allowed to use the API (a bare IP is a single host)",
			set:  prefixListField(func(c *Config) *[]netip.Prefix { return &c.APIAllow })},
		{name: "api-secret", arg: "SECRET",
			help: "bearer secret the messaging server sends to the API, at least 16 characters (generated with --dev)",
			set:  stringField(func(c *Config) *string { return &c.APISecret })},
		{name: "token-secret", arg: "SECRET",
			help: "key signing client join tokens (optional)",
			set:  stringField(func(c *Config) *string { return &c.TokenSecret })},
		{name: "token-ttl", arg: "DURATION", def: "10m",
			help: "lifetime of a join token",
			set:  durationField(func(c *Config) *time.Duration { return &c.TokenTTL })},
		{name: "turn-secret", arg: "SECRET",
			help: "key of the TURN REST credentials (coturn's static-auth-secret), at least 16 characters (default: derived from the API secret)",
			set:  stringField(func(c *Config) *string { return &c.TURNSecret })},
		{name: "turn-credential-ttl", arg: "DURATION", def: "10m",
			help: "how long TURN/SOCKS credentials allow new allocations; clients get fresh ones over signaling, and removal revokes them at once",
			set:  durationField(func(c *Config) *time.Duration { return &c.TURNCredentialTTL })},
		{name: "tls-cert", arg: "FILE",
			help: "PEM certificate (chain) for TLS; with --tls-key; neither means self-signed",
			set:  stringField(func(c *Config) *string { return &c.TLSCert })},
		{name: "tls-key", arg: "FILE",
			help: "PEM private key for --tls-cert",
			set:  stringField(func(c *Config) *string { return &c.TLSKey })},

		{name: "listen-ip", arg: "IP", def: "0.0.0.0", devDef: "127.0.0.1",
			help: "IP address the UDP media sockets bind to",
			set:  ipField(func(c *Config) *netip.Addr { return &c.ListenIP })},
		{name: "public-ip", arg: "IP", devDef: "127.0.0.1",
			help: "IP address clients are told (default: listen-ip if specific, else the host's first non-loopback IPv4 address)",
			set:  ipField(func(c *Config) *netip.Addr { return &c.PublicIP })},
		{name: "public-ipv6", arg: "IP",
			help: "IPv6 address clients are also told (roomURI_ipv6); empty for none",
			set:  ipField(func(c *Config) *netip.Addr { return &c.PublicIPv6 })},
		{name: "calling-hostname", arg: "HOST",
			help: "host[:port] in the clients' signaling URL when it differs from public-ip (NAT, load balancer, proxy)",
			set:  stringField(func(c *Config) *string { return &c.CallingHostname })},

		{name: "port-start", arg: "PORT", def: "16384",
			help: "first UDP media port; each call uses 2 ports, so the range is port-start … port-start+2*max-calls-1",
			set:  intField(func(c *Config) *int { return &c.PortStart })},
		{name: "max-calls", arg: "N", def: "50",
			help: "maximum concurrent calls (one UDP port pair each)",
			set:  intField(func(c *Config) *int { return &c.MaxCalls })},
		{name: "max-participants", arg: "N", def: "50",
			help: "maximum participants per call",
			set:  intField(func(c *Config) *int { return &c.MaxParticipants })},
		{name: "audio-top-n", arg: "N", def: "3",
			help: "in calls of more than N+1 participants, forward only the N loudest audio streams plus the dominant speaker, and no silence (0: forward every stream)",
			set:  intField(func(c *Config) *int { return &c.AudioTopN })},
		{name: "last-n", arg: "N", def: "9",
			help: "how many participants' videos a client receives until it chooses (a subscription message): the most recent speakers first; 0 sends every video",
			set:  intField(func(c *Config) *int { return &c.LastN })},

		{name: "empty-timeout", arg: "DURATION", def: "1m",
			help: "end a call nobody joined within this time",
			set:  durationField(func(c *Config) *time.Duration { return &c.EmptyTimeout })},
		{name: "leave-grace", arg: "DURATION", def: "10s",
			help: "end a call this long after the last participant left",
			set:  durationField(func(c *Config) *time.Duration { return &c.LeaveGrace })},
		{name: "max-call-duration", arg: "DURATION", def: "6h",
			help: "end any call after this long",
			set:  durationField(func(c *Config) *time.Duration { return &c.MaxCallDuration })},
		{name: "resume-grace", arg: "DURATION", def: "20s",
			help: "keep a participant whose connection dropped this long for its client to resume (network change, WebSocket reconnect)",
			set:  durationField(func(c *Config) *time.Duration { return &c.ResumeGrace })},

		{name: "cluster", arg: "NAME", def: "enterprise",
			help: `"cluster" field of the start-call answer`,
			set:  stringField(func(c *Config) *string { return &c.Cluster })},
		{name: "node-id", arg: "HEX",
			help: `"pid" of the start-call answer, 1-16 hex digits (default: 4 random hex digits)`,
			set:  stringField(func(c *Config) *string { return &c.NodeID })},

		{name: "etcd-endpoints", arg: "URLS", list: true,
			help: "comma-separated etcd client URLs; set, this node joins the cluster they coordinate (docs/cluster.md); empty: a single node",
			set:  urlListField(func(c *Config) *[]string { return &c.EtcdEndpoints })},
		{name: "etcd-prefix", arg: "PREFIX", def: "/orville/",
			help: "etcd key prefix of this cluster (several clusters may share one etcd)",
			set:  stringField(func(c *Config) *string { return &c.EtcdPrefix })},
		{name: "etcd-lease-ttl", arg: "DURATION", def: "10s",
			help: "how long a silent node stays registered: a dead node's calls leave every listing within it (whole seconds, at least 2s)",
			set:  durationField(func(c *Config) *time.Duration { return &c.EtcdLeaseTTL })},
		{name: "advertise-api", arg: "HOST:PORT",
			help: "where the other cluster nodes reach this node's API (default: public-ip and the api-listen port)",
			set:  stringField(func(c *Config) *string { return &c.AdvertiseAPI })},

		// Operations: drain, health probes, webhooks (README "Install", docs/webhooks.md).
		{name: "drain-timeout", arg: "DURATION", def: "1h",
			help: "on SIGTERM or POST /v1/drain, take no new calls and let running ones go on this long; then end them (server_shutdown) and exit; 0 ends them at once",
			set:  durationField(func(c *Config) *time.Duration { return &c.DrainTimeout })},
		{name: "health-listen", arg: "ADDR",
			help: "plain-HTTP address serving only /healthz and /readyz, no secret and no data beyond the state, for orchestrators and load balancers outside --api-allow (e.g. 0.0.0.0:8080); empty: off",
			set:  optionalAddrField(func(c *Config) *string { return &c.HealthListen })},
		{name: "webhook-url", arg: "URLS", list: true,
			help: "URL(s) that receive every call and participant event as a signed JSON POST (docs/webhooks.md); repeat the flag or separate with commas; empty: none",
			set:  urlListField(func(c *Config) *[]string { return &c.WebhookURLs })},
		{name: "webhook-secret", arg: "SECRET",
			help: "key of the webhooks' X-Orville-Signature (HMAC-SHA256), at least 16 characters; required with --webhook-url",
			set:  stringField(func(c *Config) *string { return &c.WebhookSecret })},
		{name: "webhook-timeout", arg: "DURATION", def: "5s",
			help: "bound on one webhook attempt (connect, TLS, request, response headers)",
			set:  durationField(func(c *Config) *time.Duration { return &c.WebhookTimeout })},
		{name: "webhook-retry-for", arg: "DURATION", def: "10m",
			help: "retry a failed webhook event (exponential backoff with jitter) until it is this old, then drop it (counted in /metrics)",
			set:  durationField(func(c *Config) *time.Duration { return &c.WebhookRetryFor })},

		{name: "log-level", arg: "LEVEL", def: "info",
			help: "log verbosity: debug, info, warn or error",
			set:  enumField(func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error")},
		{name: "pprof", def: "false",
			help: "serve Go profiles at /debug/pprof/ on the API listener (behind --api-allow and the API secret)",
			set:  boolField(func(c *Config) *bool { return &c.Pprof })},
		{name: "log-format", arg: "FORMAT", def: "json", devDef: "console",
			help: "log format on stdout: json or console",
			set:  enumField(func(c *Config) *string { return &c.LogFormat }, "json", "console")},
	}
}
