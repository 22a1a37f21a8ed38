package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Field setters used by the settings table: each parses a raw string (the
// same for flags, environment and YAML scalars) into one Config field.

func stringField(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, raw string) error {
		*f(c) = raw
		return nil
	}
}

func boolField(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, raw string) error {
		v, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not a boolean (want true or false)")
		}
		*f(c) = v
		return nil
	}
}

func intField(f func(*Config) *int) func(*Config, string) error {
	return func(c *Config, raw string) error {
		v, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		*f(c) = v
		return nil
	}
}

func durationField(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, raw string) error {
		v, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 90s, 10m, 6h)")
		}
		*f(c) = v
		return nil
	}
}

func enumField(f func(*Config) *string, allowed ...string) func(*Config, string) error {
	return func(c *Config, raw string) error {
		v := strings.ToLower(raw)
		for _, a := range allowed {
			if v == a {
				*f(c) = v
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

// ipField parses an IP address; "" leaves the field unset (the zero Addr).
// Brackets are accepted because operators copy IPv6 addresses from URLs.
func ipField(f func(*Config) *netip.Addr) func(*Config, string) error {
	return func(c *Config, raw string) error {
		if raw == "" {
			*f(c) = netip.Addr{}
			return nil
		}
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(raw, "["), "]"))
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("not an IP address")
		}
		*f(c) = a.Unmap()
		return nil
	}
}

// addrField checks a listen address: [host]:port with a numeric port
// (0 is allowed, tests use ephemeral ports).
func addrField(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, raw string) error {
		_, port, err := net.SplitHostPort(raw)
		if err != nil {
			return fmt.Errorf("not a host:port address")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("port must be a number from 0 to 65535")
		}
		*f(c) = raw
		return nil
	}
}

// optionalAddrField is addrField where "" means off.
func optionalAddrField(f func(*Config) *string) func(*Config, string) error {
	check := addrField(f)
	return func(c *Config, raw string) error {
		if raw == "" {
			*f(c) = ""
			return nil
		}
		return check(c, raw)
	}
}

// prefixListField parses comma-separated CIDRs; a bare IP is a single host
// (/32 or /128). Prefixes are masked so 10.1.2.3/8 means 10.0.0.0/8.
func prefixListField(f func(*Config) *[]netip.Prefix) func(*Config, string) error {
	return func(c *Config, raw string) error {
		var out []netip.Prefix
		for _, s := range strings.Split(raw, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := parsePrefix(s)
			if err != nil {
				return fmt.Errorf("%q is not a CIDR or IP address", s)
			}
			out = append(out, p)
		}
		*f(c) = out
		return nil
	}
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		// ::ffff:10.0.0.0/104 is how some tools write 10.0.0.0/8.
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("mapped prefix shorter than /96")
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// urlListField parses comma-separated http:// or https:// URLs (etcd
// endpoints); "" is the empty list.
func urlListField(f func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, raw string) error {
		var out []string
		for _, s := range strings.Split(raw, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%q is not an http:// or https:// URL", s)
			}
			out = append(out, s)
		}
		*f(c) = out
		return nil
	}
}
