package signaling

import (
	"net"
	"net/url"
	"strconv"
)

// network describes what clients must reach: the signaling host and TCP
// port (also ICE-TCP and TURN) and the UDP media range. Clients show it
// when media cannot connect ("allow UDP 16384–16483 and TCP 443 to …").
func (s *Server) network() networkInfo {
	var n networkInfo
	if u, err := url.Parse(s.cfg.SignalingURL); err == nil {
		n.Host = u.Hostname()
		n.TCPPort = 443
		if p, err := strconv.Atoi(u.Port()); err == nil {
			n.TCPPort = p
		}
	}
	rc := s.rooms.Config()
	n.UDPPortFirst, n.UDPPortLast = rc.PortRange()
	if n.Host == "" {
		n.Host = net.IP(rc.ListenIP).String()
	}
	return n
}
