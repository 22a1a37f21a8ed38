package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/internal/netnstest"
)

// rulesFor runs `orville firewall-rules` in-process and returns its output
// without the comment lines.
func rulesFor(t *testing.T, env map[string]string, args ...string) []string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := firewallRules(args, &out, &errb, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("firewall-rules %q: exit %d: %s", args, code, errb.String())
	}
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

// The rules follow the configuration, from each of its sources, in each
// format: the API port only from --api-allow, the client, media, SOCKS and
// health ports open, nothing else.
func TestFirewallRulesMatchTheConfiguration(t *testing.T) {
	yamlFile := filepath.Join(t.TempDir(), "orville.yaml")
	if err := os.WriteFile(yamlFile, []byte("api-listen: \":4444\"\napi-allow:\n  - 10.1.0.0/16\n  - 2001:db8::/32\nmax-calls: 500\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ORVILLE_PORT_START": "20000", "ORVILLE_PUBLIC_IP": "192.0.2.10"}
	args := []string{"--config", yamlFile, "--tcp-listen", "0.0.0.0:8443", "--socks-listen", "", "--health-listen", ":8080"}

	nft := rulesFor(t, env, args...)
	wantNft := []string{
		"table inet orville", "delete table inet orville", "table inet orville {",
		"set api_allow_v4 {", "type ipv4_addr", "flags interval", "elements = { 10.1.0.0/16 }", "}",
		"set api_allow_v6 {", "type ipv6_addr", "flags interval", "elements = { 2001:db8::/32 }", "}",
		"chain input {", "type filter hook input priority filter - 10; policy accept;",
		"tcp dport 4444 ip saddr @api_allow_v4 accept",
		"tcp dport 4444 ip6 saddr @api_allow_v6 accept",
		`tcp dport 4444 counter drop comment "orville API: only --api-allow"`,
		`tcp dport 8443 accept comment "orville clients"`,
		// 500 calls from 20000: 1000 ports.
		`udp dport 20000-20999 accept comment "orville media"`,
		`tcp dport 8080 accept comment "orville health probes"`,
		"}", "}",
	}
	if !slices.Equal(nft, wantNft) {
		t.Errorf("nftables:\n%s\nwant:\n%s", strings.Join(nft, "\n"), strings.Join(wantNft, "\n"))
	}
	if ufw := rulesFor(t, env, append([]string{"--format", "ufw"}, args...)...); !slices.Equal(ufw, []string{
		"ufw allow proto tcp from 10.1.0.0/16 to any port 4444 comment 'orville API'",
		"ufw allow proto tcp from 2001:db8::/32 to any port 4444 comment 'orville API'",
		"ufw deny proto tcp from any to any port 4444 comment 'orville API: only --api-allow'",
		"ufw allow proto tcp from any to any port 8443 comment 'orville clients'",
		"ufw allow proto udp from any to any port 20000:20999 comment 'orville media'",
		"ufw allow proto tcp from any to any port 8080 comment 'orville health probes'",
	}) {
		t.Errorf("ufw:\n%s", strings.Join(ufw, "\n"))
	}
	if fw := rulesFor(t, env, append([]string{"--format=firewalld"}, args...)...); !slices.Equal(fw, []string{
		`firewall-cmd --permanent --add-rich-rule='rule family="ipv4" source address="10.1.0.0/16" port port="4444" protocol="tcp" accept'`,
		`firewall-cmd --permanent --add-rich-rule='rule family="ipv6" source address="2001:db8::/32" port port="4444" protocol="tcp" accept'`,
		"firewall-cmd --permanent --add-port=8443/tcp",
		"firewall-cmd --permanent --add-port=20000-20999/udp",
		"firewall-cmd --permanent --add-port=8080/tcp",
		"firewall-cmd --reload",
	}) {
		t.Errorf("firewalld:\n%s", strings.Join(fw, "\n"))
	}

	// The defaults: the reference ports, SOCKS on 8001, the API from loopback.
	def := rulesFor(t, map[string]string{"ORVILLE_PUBLIC_IP": "192.0.2.10"}, "--format", "ufw")
	for _, want := range []string{
		"ufw allow proto tcp from 127.0.0.1/32 to any port 444 comment 'orville API'",
		"ufw allow proto tcp from any to any port 443 comment 'orville clients'",
		"ufw allow proto udp from any to any port 16384:16483 comment 'orville media'",
		"ufw allow proto tcp from any to any port 8001 comment 'orville SOCKS relay'",
	} {
		if !slices.Contains(def, want) {
			t.Errorf("defaults: no %q in:\n%s", want, strings.Join(def, "\n"))
		}
	}

	if _, err := exec.LookPath("nft"); err == nil {
		var out bytes.Buffer
		firewallRules(append([]string{}, args...), &out, &bytes.Buffer{}, func(k string) string { return env[k] })
		cmd := exec.Command("nft", "-c", "-f", "-")
		cmd.Stdin = &out
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("nft -c rejects the ruleset: %v\n%s", err, b)
		}
	}

	var errb bytes.Buffer
	for _, bad := range [][]string{{"--format", "iptables"}, {"--format"}, {"--api-listen", ":0"}} {
		errb.Reset()
		if code := firewallRules(bad, &bytes.Buffer{}, &errb, func(k string) string { return env[k] }); code != exitUsage {
			t.Errorf("firewall-rules %q: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

// The nftables rules, loaded into a namespace of the test's own, do what
// they say: the API port answers a source in --api-allow and drops another;
// the client and media ports answer anyone.
func TestFirewallRulesNftablesEnforce(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("nftables is needed (.ci/run installs it): %v", err)
	}
	srv, cli := netnstest.New(t, "fw-s"), netnstest.New(t, "fw-c")
	netnstest.Link(t, srv, "fws", "10.78.0.1/24", cli, "fwc", "10.78.0.2/24")
	cli.Run(t, "ip", "addr", "add", "10.78.0.3/24", "dev", "fwc")
	var out bytes.Buffer
	if code := firewallRules([]string{"--public-ip", "10.78.0.1", "--api-allow", "10.78.0.2", "--max-calls", "2"},
		&out, os.Stderr, func(string) string { return "" }); code != 0 {
		t.Fatal("firewall-rules failed")
	}
	srv.Nft(t, out.String())

	for _, port := range []string{"444", "443"} {
		ln, err := srv.Listen("tcp", "10.78.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	var udp net.PacketConn
	if err := srv.Do(func() (err error) { udp, err = net.ListenPacket("udp", "10.78.0.1:16385"); return }); err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	go func() {
		b := make([]byte, 64)
		for {
			n, a, err := udp.ReadFrom(b)
			if err != nil {
				return
			}
			_, _ = udp.WriteTo(b[:n], a)
		}
	}()

	reach := func(network, from, to string) bool {
		t.Helper()
		var ok bool
		err := cli.Do(func() error {
			d := net.Dialer{Timeout: time.Second, LocalAddr: localAddr(network, from)}
			c, err := d.DialContext(context.Background(), network, to)
			if err != nil {
				return nil
			}
			defer c.Close()
			if network == "tcp" {
				ok = true
				return nil
			}
			_ = c.SetDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte("ping")); err == nil {
				b := make([]byte, 8)
				n, err := c.Read(b)
				ok = err == nil && string(b[:n]) == "ping"
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, c := range []struct {
		network, from, to string
		want              bool
	}{
		{"tcp", "10.78.0.2", "10.78.0.1:444", true},
		{"tcp", "10.78.0.3", "10.78.0.1:444", false},
		{"tcp", "10.78.0.3", "10.78.0.1:443", true},
		{"udp", "10.78.0.3", "10.78.0.1:16385", true},
	} {
		if got := reach(c.network, c.from, c.to); got != c.want {
			t.Errorf("%s from %s to %s: reached %v, want %v", c.network, c.from, c.to, got, c.want)
		}
	}
}

func localAddr(network, ip string) net.Addr {
	if network == "udp" {
		return &net.UDPAddr{IP: net.ParseIP(ip)}
	}
	return &net.TCPAddr{IP: net.ParseIP(ip)}
}
