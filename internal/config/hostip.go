package config

import (
	"errors"
	"net"
	"net/netip"
)

// firstHostIPv4 returns the first IPv4 address of an up, non-loopback
// interface, the usual public address of a single-homed server. Link-local
// (169.254/16) addresses are skipped: clients cannot reach them.
func firstHostIPv4() (netip.Addr, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			ip = ip.Unmap()
			if ok && ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errors.New("no up, non-loopback IPv4 interface")
}
