package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef0123"

// env returns a getenv backed by a map, so tests never touch the process environment.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// hostIP is a detector that reports a fixed public address.
func hostIP() func() (netip.Addr, error) {
	return func() (netip.Addr, error) { return netip.MustParseAddr("203.0.113.7"), nil }
}

// noDetect fails the test if address detection is attempted.
func noDetect(t *testing.T) func() (netip.Addr, error) {
	return func() (netip.Addr, error) {
		t.Error("public IP detection should not run")
		return netip.Addr{}, errors.New("unexpected")
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "orville.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, args []string, getenv func(string) string, detect func() (netip.Addr, error)) *Config {
	t.Helper()
	c, err := load(args, getenv, detect)
	if err != nil {
		t.Fatalf("load(%q): %v", args, err)
	}
	return c
}

func loadErr(t *testing.T, args []string, getenv func(string) string) string {
	t.Helper()
	_, err := load(args, getenv, hostIP())
	if err == nil {
		t.Fatalf("load(%q): want an error", args)
	}
	return err.Error()
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, []string{"--api-secret", testSecret}, env(), hostIP())
	checks := []struct {
		name      string
		got, want any
	}{
		{"Dev", c.Dev, false},
		{"APIListen", c.APIListen, ":444"},
		{"TCPListen", c.TCPListen, ":443"},
		{"TCPMaxConnsPerIP", c.TCPMaxConnsPerIP, 512},
		{"SOCKSListen", c.SOCKSListen, ":8001"},
		{"SOCKSAddr", c.SOCKSAddr(), "203.0.113.7:8001"},
		{"TURNCredentialTTL", c.TURNCredentialTTL, 10 * time.Minute},
		{"APIAllow", c.APIAllow, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}},
		{"GeneratedSecret", c.GeneratedSecret, false},
		{"TokenTTL", c.TokenTTL, 10 * time.Minute},
		{"ListenIP", c.ListenIP, netip.MustParseAddr("0.0.0.0")},
		{"PublicIP", c.PublicIP, netip.MustParseAddr("203.0.113.7")},
		{"PublicIPDetected", c.PublicIPDetected, true},
		{"PublicIPv6", c.PublicIPv6, netip.Addr{}},
		{"CallingHostname", c.CallingHostname, "203.0.113.7"},
		{"PortStart", c.PortStart, 16384},
		{"MaxCalls", c.MaxCalls, 50},
		{"MaxParticipants", c.MaxParticipants, 50},
		{"LastN", c.LastN, 9},
		{"EmptyTimeout", c.EmptyTimeout, time.Minute},
		{"LeaveGrace", c.LeaveGrace, 10 * time.Second},
		{"MaxCallDuration", c.MaxCallDuration, 6 * time.Hour},
		{"ResumeGrace", c.ResumeGrace, 20 * time.Second},
		{"Cluster", c.Cluster, "enterprise"},
		{"LogLevel", c.LogLevel, "info"},
		{"LogFormat", c.LogFormat, "json"},
		{"SignalingURL", c.SignalingURL(), "wss://203.0.113.7:443/v1/rtc"},
		{"APIURL", c.APIURL(), "https://127.0.0.1:444"},
	}
	for _, ck := range checks {
		if !equal(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if first, last := c.MediaPortRange(); first != 16384 || last != 16483 {
		t.Errorf("MediaPortRange = %d-%d, want 16384-16483", first, last)
	}
	if len(c.NodeID) != 4 || !isHex(c.NodeID) {
		t.Errorf("NodeID = %q, want 4 random hex digits", c.NodeID)
	}
}

func equal(a, b any) bool {
	if pa, ok := a.([]netip.Prefix); ok {
		pb := b.([]netip.Prefix)
		if len(pa) != len(pb) {
			return false
		}
		for i := range pa {
			if pa[i] != pb[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "max-calls: 10\nlog-level: warn\n")
	tests := []struct {
		name   string
		args   []string
		getenv func(string) string
		want   int
	}{
		{"default", nil, env(), 50},
		{"file beats default", []string{"--config", file}, env(), 10},
		{"env beats file", []string{"--config", file}, env("ORVILLE_MAX_CALLS", "20"), 20},
		{"flag beats env and file", []string{"--config", file, "--max-calls", "30"}, env("ORVILLE_MAX_CALLS", "20"), 30},
		{"file named by env", nil, env("ORVILLE_CONFIG", file), 10},
		{"flag beats file named by env", []string{"--max-calls=30"}, env("ORVILLE_CONFIG", file), 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--api-secret", testSecret}, tt.args...)
			c := mustLoad(t, args, tt.getenv, hostIP())
			if c.MaxCalls != tt.want {
				t.Errorf("MaxCalls = %d, want %d", c.MaxCalls, tt.want)
			}
		})
	}
	// A file value the env and flags do not mention stays in force.
	c := mustLoad(t, []string{"--config", file, "--max-calls", "30"}, env("ORVILLE_API_SECRET", testSecret), hostIP())
	if c.LogLevel != "warn" || c.ConfigFile != file {
		t.Errorf("LogLevel = %q, ConfigFile = %q; want warn, %q", c.LogLevel, c.ConfigFile, file)
	}
}

func TestMaxCalls500(t *testing.T) {
	for name, c := range map[string]*Config{
		"flag": mustLoad(t, []string{"--api-secret", testSecret, "--max-calls", "500"}, env(), hostIP()),
		"env":  mustLoad(t, nil, env("ORVILLE_API_SECRET", testSecret, "ORVILLE_MAX_CALLS", "500"), hostIP()),
	} {
		if first, last := c.MediaPortRange(); first != 16384 || last != 17383 {
			t.Errorf("%s: MediaPortRange = %d-%d, want 16384-17383", name, first, last)
		}
	}
}

func TestDev(t *testing.T) {
	sources := map[string]struct {
		args   []string
		getenv func(string) string
	}{
		"flag": {[]string{"--dev"}, env()},
		"env":  {nil, env("ORVILLE_DEV", "true")},
		"file": {[]string{"--config", writeFile(t, "dev: true\n")}, env()},
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			c := mustLoad(t, src.args, src.getenv, noDetect(t))
			if !c.Dev || c.APIListen != "127.0.0.1:8444" || c.TCPListen != "127.0.0.1:8443" ||
				c.ListenIP != netip.MustParseAddr("127.0.0.1") || c.PublicIP != netip.MustParseAddr("127.0.0.1") ||
				c.LogFormat != "console" {
				t.Errorf("dev defaults not applied: %+v", c)
			}
			if !c.GeneratedSecret {
				t.Error("GeneratedSecret = false")
			}
			if b, err := base64.RawURLEncoding.DecodeString(c.APISecret); err != nil || len(b) != 32 {
				t.Errorf("APISecret %q: want 32 bytes base64url (%v)", c.APISecret, err)
			}
			if got := c.SignalingURL(); got != "wss://127.0.0.1:8443/v1/rtc" {
				t.Errorf("SignalingURL = %q", got)
			}
			if got := c.APIURL(); got != "https://127.0.0.1:8444" {
				t.Errorf("APIURL = %q", got)
			}
			if c.SOCKSListen != "127.0.0.1:8001" || c.SOCKSAddr() != "127.0.0.1:8001" {
				t.Errorf("SOCKS %q, advertised %q", c.SOCKSListen, c.SOCKSAddr())
			}
		})
	}
	// An empty --socks-listen turns the SOCKS relay off, from any source.
	if c := mustLoad(t, []string{"--dev", "--socks-listen", ""}, env(), noDetect(t)); c.SOCKSListen != "" || c.SOCKSAddr() != "" {
		t.Errorf("--socks-listen '': %q, advertised %q", c.SOCKSListen, c.SOCKSAddr())
	}
	if c := mustLoad(t, []string{"--config", writeFile(t, "dev: true\nsocks-listen: \"\"\n")}, env(), noDetect(t)); c.SOCKSListen != "" {
		t.Errorf("socks-listen \"\" in the file: %q", c.SOCKSListen)
	}

	// Explicit settings still override the dev defaults, from any source.
	c := mustLoad(t, []string{"--tcp-listen", ":9443", "--api-secret", testSecret},
		env("ORVILLE_DEV", "1", "ORVILLE_LOG_FORMAT", "json"), noDetect(t))
	if c.TCPListen != ":9443" || c.LogFormat != "json" || c.APIListen != "127.0.0.1:8444" {
		t.Errorf("overrides: tcp %q format %q api %q", c.TCPListen, c.LogFormat, c.APIListen)
	}
	if c.GeneratedSecret || c.APISecret != testSecret {
		t.Error("a configured secret must not be replaced in dev mode")
	}
	// --dev=false beats ORVILLE_DEV=true.
	c = mustLoad(t, []string{"--dev=false", "--api-secret", testSecret}, env("ORVILLE_DEV", "true"), hostIP())
	if c.Dev || c.TCPListen != ":443" {
		t.Errorf("--dev=false: Dev %v, TCPListen %q", c.Dev, c.TCPListen)
	}
}

func TestStrictYAML(t *testing.T) {
	file := writeFile(t, "api-secret: "+testSecret+"\nmax-callz: 10\n")
	msg := loadErr(t, []string{"--config", file}, env())
	for _, want := range []string{"max-callz", file, "line 2", "unknown key"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}

	file = writeFile(t, "MAX_CALLS: 10\n")
	if msg := loadErr(t, []string{"--config", file}, env()); !strings.Contains(msg, `did you mean "max-calls"`) {
		t.Errorf("error %q: want a suggestion", msg)
	}

	file = writeFile(t, "config: other.yaml\n")
	if msg := loadErr(t, []string{"--config", file}, env()); !strings.Contains(msg, `unknown key "config"`) {
		t.Errorf("error %q: config may not name a config file", msg)
	}

	file = writeFile(t, "max-calls: 1\nmax-calls: 2\n")
	if msg := loadErr(t, []string{"--config", file}, env()); !strings.Contains(msg, "max-calls") {
		t.Errorf("duplicate key error %q", msg)
	}

	if msg := loadErr(t, []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, env()); !strings.Contains(msg, "missing.yaml") {
		t.Errorf("missing file error %q does not name the file", msg)
	}

	// An empty file is no settings at all.
	mustLoad(t, []string{"--config", writeFile(t, ""), "--api-secret", testSecret}, env(), hostIP())
}

func TestBadValuesNameTheirSource(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		getenv func(string) string
		want   []string
	}{
		{"flag", []string{"--max-calls", "many"}, env(), []string{"--max-calls", "many"}},
		{"env", nil, env("ORVILLE_TOKEN_TTL", "soon"), []string{"ORVILLE_TOKEN_TTL", "soon"}},
		{"env bool", nil, env("ORVILLE_DEV", "yes please"), []string{"ORVILLE_DEV"}},
		{"file", []string{"--config", writeFile(t, "\nlisten-ip: nowhere\n")}, env(), []string{`key "listen-ip"`, "line 2", "nowhere"}},
		{"file list for scalar", []string{"--config", writeFile(t, "cluster: [a, b]\n")}, env(), []string{`key "cluster"`}},
		{"enum", []string{"--log-level", "loud"}, env(), []string{"--log-level", "debug, info, warn, error"}},
		{"listen address", []string{"--api-listen", "444"}, env(), []string{"--api-listen"}},
		{"unknown flag", []string{"--max-cals", "5"}, env(), []string{"max-cals"}},
		{"positional", []string{"serve"}, env(), []string{`"serve"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := loadErr(t, append([]string{"--api-secret", testSecret}, tt.args...), tt.getenv)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		if _, err := Load([]string{arg}, env()); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: err = %v, want flag.ErrHelp", arg, err)
		}
	}
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"max-calls zero", []string{"--max-calls", "0"}, "--max-calls (ORVILLE_MAX_CALLS) must be at least 1"},
		{"range past 65535", []string{"--port-start", "65000", "--max-calls", "500"}, "--max-calls (ORVILLE_MAX_CALLS) is too large"},
		{"port-start zero", []string{"--port-start", "0"}, "--port-start (ORVILLE_PORT_START) must be between"},
		{"participants", []string{"--max-participants", "0"}, "--max-participants (ORVILLE_MAX_PARTICIPANTS) must be at least 1"},
		{"ttl", []string{"--token-ttl", "0s"}, "--token-ttl (ORVILLE_TOKEN_TTL) must be positive"},
		{"short secret", []string{"--api-secret", "short"}, "--api-secret (ORVILLE_API_SECRET) must be at least 16"},
		{"short token secret", []string{"--token-secret", "short"}, "--token-secret (ORVILLE_TOKEN_SECRET)"},
		{"cert without key", []string{"--tls-cert", "c.pem"}, "--tls-key (ORVILLE_TLS_KEY)"},
		{"node-id", []string{"--node-id", "xyz"}, "--node-id (ORVILLE_NODE_ID) must be 1-16 hex digits"},
		{"node-id long", []string{"--node-id", "0123456789abcdef0"}, "--node-id (ORVILLE_NODE_ID)"},
		{"public-ipv6", []string{"--public-ipv6", "192.0.2.1"}, "--public-ipv6 (ORVILLE_PUBLIC_IPV6) must be a specific IPv6"},
		{"public-ip unspecified", []string{"--public-ip", "0.0.0.0"}, "--public-ip (ORVILLE_PUBLIC_IP)"},
		{"empty api-allow", []string{"--api-allow", ""}, "--api-allow (ORVILLE_API_ALLOW) must list"},
		{"conns per ip", []string{"--tcp-max-conns-per-ip", "0"}, "--tcp-max-conns-per-ip (ORVILLE_TCP_MAX_CONNS_PER_IP) must be at least 1"},
		{"turn ttl", []string{"--turn-credential-ttl", "0s"}, "--turn-credential-ttl (ORVILLE_TURN_CREDENTIAL_TTL) must be positive"},
		{"socks address", []string{"--socks-listen", "8001"}, "--socks-listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--api-secret", testSecret}, tt.args...)
			if msg := loadErr(t, args, env()); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
		})
	}

	_, err := load(nil, env(), hostIP())
	if err == nil || !strings.Contains(err.Error(), "--api-secret (ORVILLE_API_SECRET) is required") {
		t.Errorf("missing secret: %v", err)
	}

	// Several problems are reported together.
	_, err = load([]string{"--max-calls", "0", "--max-participants", "0"}, env(), hostIP())
	if err == nil || !strings.Contains(err.Error(), "max-calls") || !strings.Contains(err.Error(), "max-participants") || !strings.Contains(err.Error(), "api-secret") {
		t.Errorf("want all errors, got %v", err)
	}

	// 500 calls fit exactly up to 65535.
	mustLoad(t, []string{"--api-secret", testSecret, "--port-start", "64536", "--max-calls", "500"}, env(), hostIP())
	mustLoad(t, []string{"--api-secret", testSecret, "--node-id", "F985"}, env(), hostIP())
}

func TestPublicIP(t *testing.T) {
	noHost := func() (netip.Addr, error) { return netip.Addr{}, errors.New("no up, non-loopback IPv4 interface") }
	_, err := load([]string{"--api-secret", testSecret}, env(), noHost)
	if err == nil || !strings.Contains(err.Error(), "set --public-ip") {
		t.Errorf("undetectable public IP: %v", err)
	}

	c := mustLoad(t, []string{"--api-secret", testSecret, "--listen-ip", "10.0.0.5"}, env(), noDetect(t))
	if c.PublicIP != netip.MustParseAddr("10.0.0.5") || c.PublicIPDetected {
		t.Errorf("PublicIP = %v (detected %v), want listen-ip 10.0.0.5", c.PublicIP, c.PublicIPDetected)
	}

	c = mustLoad(t, []string{"--api-secret", testSecret, "--public-ip", "12.34.56.78", "--public-ipv6", "[2001:db8::1]"}, env(), noDetect(t))
	if c.PublicIP != netip.MustParseAddr("12.34.56.78") || c.PublicIPv6 != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("PublicIP %v PublicIPv6 %v", c.PublicIP, c.PublicIPv6)
	}
}

func TestAPIAllow(t *testing.T) {
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.5/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("::1/128"),
	}
	const list = "10.1.2.3/8, 192.168.1.5,2001:db8::/32,::1"
	sources := map[string]struct {
		args   []string
		getenv func(string) string
	}{
		"flag":        {[]string{"--api-allow", list}, env()},
		"env":         {nil, env("ORVILLE_API_ALLOW", list)},
		"yaml string": {[]string{"--config", writeFile(t, "api-allow: "+list+"\n")}, env()},
		"yaml list":   {[]string{"--config", writeFile(t, "api-allow:\n  - 10.1.2.3/8\n  - 192.168.1.5\n  - 2001:db8::/32\n  - ::1\n")}, env()},
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			c := mustLoad(t, append([]string{"--api-secret", testSecret}, src.args...), src.getenv, hostIP())
			if !equal(c.APIAllow, want) {
				t.Errorf("APIAllow = %v, want %v", c.APIAllow, want)
			}
		})
	}

	c := mustLoad(t, []string{"--api-secret", testSecret, "--api-allow", "10.0.0.0/8"}, env(), hostIP())
	for addr, ok := range map[string]bool{"10.9.8.7": true, "::ffff:10.9.8.7": true, "11.0.0.1": false, "::1": false} {
		if got := c.AllowsAPI(netip.MustParseAddr(addr)); got != ok {
			t.Errorf("AllowsAPI(%s) = %v, want %v", addr, got, ok)
		}
	}

	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.1/8/8"} {
		msg := loadErr(t, []string{"--api-secret", testSecret, "--api-allow", "127.0.0.1," + bad}, env())
		if !strings.Contains(msg, bad) || !strings.Contains(msg, "--api-allow") {
			t.Errorf("error %q does not name %q", msg, bad)
		}
	}
}

func TestURLs(t *testing.T) {
	tests := []struct {
		args           []string
		signal, apiURL string
	}{
		{[]string{"--public-ip", "12.34.56.78"}, "wss://12.34.56.78:443/v1/rtc", "https://127.0.0.1:444"},
		{[]string{"--public-ip", "2001:db8::7", "--tcp-listen", "[::]:8443", "--api-listen", "[::]:8444"},
			"wss://[2001:db8::7]:8443/v1/rtc", "https://127.0.0.1:8444"},
		{[]string{"--calling-hostname", "calls.example.com", "--api-listen", "[2001:db8::1]:444"},
			"wss://calls.example.com:443/v1/rtc", "https://[2001:db8::1]:444"},
		{[]string{"--calling-hostname", "2001:db8::9", "--api-listen", "10.0.0.2:444"},
			"wss://[2001:db8::9]:443/v1/rtc", "https://10.0.0.2:444"},
		{[]string{"--calling-hostname", "[2001:db8::9]"}, "wss://[2001:db8::9]:443/v1/rtc", "https://127.0.0.1:444"},
		{[]string{"--calling-hostname", "calls.example.com:5443", "--tcp-listen", ":8443", "--api-listen", "0.0.0.0:444"},
			"wss://calls.example.com:5443/v1/rtc", "https://127.0.0.1:444"},
	}
	for _, tt := range tests {
		c := mustLoad(t, append([]string{"--api-secret", testSecret}, tt.args...), env(), hostIP())
		if got := c.SignalingURL(); got != tt.signal {
			t.Errorf("%q: SignalingURL = %q, want %q", tt.args, got, tt.signal)
		}
		if got := c.APIURL(); got != tt.apiURL {
			t.Errorf("%q: APIURL = %q, want %q", tt.args, got, tt.apiURL)
		}
	}
}

func TestUsageListsEverySetting(t *testing.T) {
	var buf bytes.Buffer
	Usage(&buf)
	out := buf.String()
	for _, s := range settings() {
		for _, want := range []string{"--" + s.name, envName(s.name), s.help} {
			if !strings.Contains(out, want) {
				t.Errorf("Usage does not mention %q", want)
			}
		}
		if s.devDef != "" && !strings.Contains(out, s.devDef) {
			t.Errorf("Usage does not mention the dev default of %s", s.name)
		}
	}
	if !strings.Contains(out, "ORVILLE_MAX_CALLS") || !strings.Contains(out, `"16384"`) {
		t.Error("Usage misses max-calls env or port-start default")
	}
}

func TestEnvName(t *testing.T) {
	if got := envName("max-call-duration"); got != "ORVILLE_MAX_CALL_DURATION" {
		t.Errorf("envName = %q", got)
	}
}
