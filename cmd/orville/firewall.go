package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/orville/orville/internal/config"
)

// firewallRules is `orville firewall-rules [--format nftables|ufw|firewalld]
// [server settings]`: it reads the configuration exactly as `orville serve`
// would (flags, ORVILLE_* environment, --config file) and prints the rules
// that open what clients need and keep the API to --api-allow.
func firewallRules(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	format, rest, err := firewallFormat(args)
	if err != nil {
		fmt.Fprintf(stderr, "orville firewall-rules: %v\n", err)
		return exitUsage
	}
	// The API secret is required to serve, not to write rules: a placeholder
	// first, so that a real one (flag, environment, file) is never needed.
	cfg, err := config.Load(append([]string{"--api-secret", "firewall-rules-needs-no-secret"}, rest...), getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "usage: orville firewall-rules [--format nftables|ufw|firewalld] [the server's settings, as for serve]")
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "orville firewall-rules: %v\n", err)
		return exitUsage
	}
	plan, err := planFirewall(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "orville firewall-rules: %v\n", err)
		return exitUsage
	}
	switch format {
	case "nftables":
		plan.nftables(stdout)
	case "ufw":
		plan.ufw(stdout)
	case "firewalld":
		plan.firewalld(stdout)
	}
	return exitOK
}

// firewallFormat takes --format out of args (the rest are server settings).
func firewallFormat(args []string) (string, []string, error) {
	format := "nftables"
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--format" || a == "-format":
			if i+1 == len(args) {
				return "", nil, errors.New("--format needs a value: nftables, ufw or firewalld")
			}
			i++
			format = args[i]
		case strings.HasPrefix(a, "--format=") || strings.HasPrefix(a, "-format="):
			_, format, _ = strings.Cut(a, "=")
		default:
			rest = append(rest, a)
		}
	}
	switch format {
	case "nftables", "ufw", "firewalld":
		return format, rest, nil
	}
	return "", nil, fmt.Errorf("--format %q: want nftables, ufw or firewalld", format)
}

// portRange is one rule's ports, open to every source.
type portRange struct {
	proto       string // tcp or udp
	first, last int
	what, why   string // a short label; the setting it comes from
	note        string // said in the header, if set
}

func (p portRange) String() string {
	if p.first == p.last {
		return strconv.Itoa(p.first)
	}
	return fmt.Sprintf("%d-%d", p.first, p.last)
}

// firewallPlan is what the rules do: the API port only from apiAllow, the
// open ports from anywhere.
type firewallPlan struct {
	apiPort  int
	apiAllow []netip.Prefix
	open     []portRange
}

func planFirewall(cfg *config.Config) (firewallPlan, error) {
	var errs []error
	port := func(name, addr string) int {
		_, p, err := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("--%s %q has no fixed port to write a rule for", name, addr))
		}
		return n
	}
	plan := firewallPlan{apiPort: port("api-listen", cfg.APIListen), apiAllow: cfg.APIAllow}
	first, last := cfg.MediaPortRange()
	plan.open = append(plan.open,
		portRange{proto: "tcp", first: port("tcp-listen", cfg.TCPListen), what: "clients", why: "--tcp-listen " + cfg.TCPListen,
			note: "signaling, web client, ICE-TCP, TURN"},
		portRange{proto: "udp", first: first, last: last, what: "media",
			why: fmt.Sprintf("--port-start %d, --max-calls %d", cfg.PortStart, cfg.MaxCalls), note: "2 ports per call"})
	if cfg.SOCKSListen != "" {
		plan.open = append(plan.open, portRange{proto: "tcp", first: port("socks-listen", cfg.SOCKSListen), what: "SOCKS relay",
			why: "--socks-listen " + cfg.SOCKSListen})
	}
	if cfg.HealthListen != "" {
		plan.open = append(plan.open, portRange{proto: "tcp", first: port("health-listen", cfg.HealthListen), what: "health probes",
			why: "--health-listen " + cfg.HealthListen, note: "state only; narrow it to your probes' sources if you like"})
	}
	for i := range plan.open {
		if plan.open[i].last == 0 {
			plan.open[i].last = plan.open[i].first
		}
	}
	return plan, errors.Join(errs...)
}

func (p firewallPlan) header(w io.Writer, format string) {
	allow := make([]string, len(p.apiAllow))
	for i, a := range p.apiAllow {
		allow[i] = a.String()
	}
	fmt.Fprintf(w, "# Orville firewall rules (%s), from `orville firewall-rules` and this configuration:\n", format)
	fmt.Fprintf(w, "#   TCP %d, the API (--api-listen): only from --api-allow %s\n", p.apiPort, strings.Join(allow, ", "))
	for _, o := range p.open {
		note := ""
		if o.note != "" {
			note = " (" + o.note + ")"
		}
		fmt.Fprintf(w, "#   %s %s, %s (%s): from anywhere%s\n", strings.ToUpper(o.proto), o, o.what, o.why, note)
	}
}

func (p firewallPlan) families() (v4, v6 []string) {
	for _, a := range p.apiAllow {
		if a.Addr().Is4() {
			v4 = append(v4, a.String())
		} else {
			v6 = append(v6, a.String())
		}
	}
	return v4, v6
}

// nftables prints a table of its own, loaded with `nft -f`: reloading
// replaces it, `nft delete table inet orville` removes it.
func (p firewallPlan) nftables(w io.Writer) {
	fmt.Fprintln(w, "#!/usr/sbin/nft -f")
	p.header(w, "nftables")
	fmt.Fprintln(w, "# Load: nft -f orville.nft. Remove: nft delete table inet orville.")
	fmt.Fprintln(w, "# A base chain's accept does not overrule another table's drop: if your input")
	fmt.Fprintln(w, "# policy is drop, accept the open ports below in that chain too.")
	fmt.Fprintln(w, "table inet orville")
	fmt.Fprintln(w, "delete table inet orville")
	fmt.Fprintln(w, "table inet orville {")
	v4, v6 := p.families()
	for _, s := range []struct {
		name, typ string
		elems     []string
	}{{"api_allow_v4", "ipv4_addr", v4}, {"api_allow_v6", "ipv6_addr", v6}} {
		if len(s.elems) > 0 {
			fmt.Fprintf(w, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\telements = { %s }\n\t}\n",
				s.name, s.typ, strings.Join(s.elems, ", "))
		}
	}
	fmt.Fprintln(w, "\tchain input {")
	fmt.Fprintln(w, "\t\ttype filter hook input priority filter - 10; policy accept;")
	if len(v4) > 0 {
		fmt.Fprintf(w, "\t\ttcp dport %d ip saddr @api_allow_v4 accept\n", p.apiPort)
	}
	if len(v6) > 0 {
		fmt.Fprintf(w, "\t\ttcp dport %d ip6 saddr @api_allow_v6 accept\n", p.apiPort)
	}
	fmt.Fprintf(w, "\t\ttcp dport %d counter drop comment \"orville API: only --api-allow\"\n", p.apiPort)
	for _, o := range p.open {
		fmt.Fprintf(w, "\t\t%s dport %s accept comment \"orville %s\"\n", o.proto, o, o.what)
	}
	fmt.Fprintln(w, "\t}")
	fmt.Fprintln(w, "}")
}

// ufw prints commands; ufw applies the first matching rule, so the API's
// allows come before its deny.
func (p firewallPlan) ufw(w io.Writer) {
	p.header(w, "ufw")
	for _, a := range p.apiAllow {
		fmt.Fprintf(w, "ufw allow proto tcp from %s to any port %d comment 'orville API'\n", a, p.apiPort)
	}
	fmt.Fprintf(w, "ufw deny proto tcp from any to any port %d comment 'orville API: only --api-allow'\n", p.apiPort)
	for _, o := range p.open {
		fmt.Fprintf(w, "ufw allow proto %s from any to any port %s comment 'orville %s'\n", o.proto,
			strings.Replace(o.String(), "-", ":", 1), o.what)
	}
}

// firewalld prints commands for the default zone: the open ports as ports,
// the API as rich rules per allowed network (a zone refuses what it does not
// list, so nobody else reaches it).
func (p firewallPlan) firewalld(w io.Writer) {
	p.header(w, "firewalld")
	for _, a := range p.apiAllow {
		family := "ipv4"
		if a.Addr().Is6() {
			family = "ipv6"
		}
		fmt.Fprintf(w, "firewall-cmd --permanent --add-rich-rule='rule family=\"%s\" source address=\"%s\" port port=\"%d\" protocol=\"tcp\" accept'\n",
			family, a, p.apiPort)
	}
	for _, o := range p.open {
		fmt.Fprintf(w, "firewall-cmd --permanent --add-port=%s/%s\n", o, o.proto)
	}
	fmt.Fprintln(w, "firewall-cmd --reload")
}
