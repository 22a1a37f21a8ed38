package socks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// RFC 1928 and RFC 1929 constants.
const (
	version5       = 0x05
	authVersion    = 0x01 // RFC 1929 §2: the sub-negotiation's version
	methodUserPass = 0x02 // RFC 1928 §3: USERNAME/PASSWORD
	methodNone     = 0xFF // no acceptable methods

	cmdConnect      = 0x01
	cmdBind         = 0x02
	cmdUDPAssociate = 0x03

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04

	// Replies (RFC 1928 §6).
	repSucceeded          = 0x00
	repGeneralFailure     = 0x01
	repNotAllowed         = 0x02 // connection not allowed by ruleset
	repHostUnreachable    = 0x04
	repConnectionRefused  = 0x05
	repCommandUnsupported = 0x07
	repAddressUnsupported = 0x08
)

// Addr is a destination as a client names it: a host name or an IP
// address, and a port.
type Addr struct {
	Host string     // set for ATYP DOMAINNAME
	IP   netip.Addr // set for ATYP IPv4 / IPv6
	Port uint16
}

func (a Addr) String() string {
	if a.IP.IsValid() {
		return netip.AddrPortFrom(a.IP, a.Port).String()
	}
	return fmt.Sprintf("%s:%d", a.Host, a.Port)
}

// Errors of the wire format; each is a reason to close the connection.
var (
	errVersion  = errors.New("socks: not SOCKS version 5")
	errNoMethod = errors.New("socks: no methods offered")
	errAuthVer  = errors.New("socks: not the RFC 1929 sub-negotiation")
	errReserved = errors.New("socks: reserved byte is not zero")
	errAtyp     = errors.New("socks: unknown address type")
	errDomain   = errors.New("socks: empty domain name")
	errFragment = errors.New("socks: fragmented datagram")
)

// readGreeting reads the method selection message (RFC 1928 §3) and
// reports whether USERNAME/PASSWORD is among the methods.
func readGreeting(r io.Reader) (userPass bool, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return false, err
	}
	if hdr[0] != version5 {
		return false, errVersion
	}
	if hdr[1] == 0 {
		return false, errNoMethod
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return false, err
	}
	for _, m := range methods {
		if m == methodUserPass {
			return true, nil
		}
	}
	return false, nil
}

// readUserPass reads the RFC 1929 §2 request: VER ULEN UNAME PLEN PASSWD.
func readUserPass(r io.Reader) (user, pass string, err error) {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", err
	}
	if b[0] != authVersion {
		return "", "", errAuthVer
	}
	u, err := readLenString(r)
	if err != nil {
		return "", "", err
	}
	p, err := readLenString(r)
	if err != nil {
		return "", "", err
	}
	return u, p, nil
}

// readLenString reads a one-byte length and that many bytes (at most 255).
func readLenString(r io.Reader) (string, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	b := make([]byte, n[0])
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// readRequest reads a request (RFC 1928 §4): VER CMD RSV ATYP DST.ADDR
// DST.PORT. An unknown address type is errAtyp (answered 0x08).
func readRequest(r io.Reader) (cmd byte, dst Addr, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, Addr{}, err
	}
	if hdr[0] != version5 {
		return 0, Addr{}, errVersion
	}
	if hdr[2] != 0 {
		return 0, Addr{}, errReserved
	}
	dst, err = readAddr(r, hdr[3])
	return hdr[1], dst, err
}

// readAddr reads DST.ADDR and DST.PORT of address type atyp.
func readAddr(r io.Reader, atyp byte) (Addr, error) {
	var a Addr
	switch atyp {
	case atypIPv4:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return a, err
		}
		a.IP = netip.AddrFrom4(b)
	case atypIPv6:
		var b [16]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return a, err
		}
		a.IP = netip.AddrFrom16(b).Unmap()
	case atypDomain:
		h, err := readLenString(r)
		if err != nil {
			return a, err
		}
		if h == "" {
			return a, errDomain
		}
		a.Host = h
	default:
		return a, errAtyp
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return a, err
	}
	a.Port = binary.BigEndian.Uint16(p[:])
	return a, nil
}

// appendAddr appends ATYP, the address and the port.
func appendAddr(b []byte, a Addr) []byte {
	switch {
	case a.IP.Is4():
		v := a.IP.As4()
		b = append(append(b, atypIPv4), v[:]...)
	case a.IP.IsValid():
		v := a.IP.As16()
		b = append(append(b, atypIPv6), v[:]...)
	default:
		b = append(append(b, atypDomain, byte(len(a.Host))), a.Host...)
	}
	return binary.BigEndian.AppendUint16(b, a.Port)
}

// reply encodes a reply (RFC 1928 §6) with bound address bnd.
func reply(rep byte, bnd netip.AddrPort) []byte {
	a := Addr{IP: bnd.Addr().Unmap(), Port: bnd.Port()}
	if !a.IP.IsValid() {
		a.IP = netip.IPv4Unspecified()
	}
	return appendAddr([]byte{version5, rep, 0}, a)
}

// parseUDPHeader splits a UDP ASSOCIATE datagram (RFC 1928 §7): RSV RSV
// FRAG ATYP DST.ADDR DST.PORT DATA, without allocating for IP addresses.
// Fragments (FRAG ≠ 0) are not supported and reported as an error, so that
// the datagram is dropped.
func parseUDPHeader(b []byte) (dst Addr, data []byte, err error) {
	if len(b) < 4 {
		return dst, nil, io.ErrUnexpectedEOF
	}
	if b[0] != 0 || b[1] != 0 {
		return dst, nil, errReserved
	}
	if b[2] != 0 {
		return dst, nil, errFragment
	}
	rest := b[4:]
	switch b[3] {
	case atypIPv4:
		if len(rest) < 4+2 {
			return dst, nil, io.ErrUnexpectedEOF
		}
		dst.IP = netip.AddrFrom4([4]byte(rest[:4]))
		rest = rest[4:]
	case atypIPv6:
		if len(rest) < 16+2 {
			return dst, nil, io.ErrUnexpectedEOF
		}
		dst.IP = netip.AddrFrom16([16]byte(rest[:16])).Unmap()
		rest = rest[16:]
	case atypDomain:
		if len(rest) < 1 || len(rest) < 1+int(rest[0])+2 {
			return dst, nil, io.ErrUnexpectedEOF
		}
		if rest[0] == 0 {
			return dst, nil, errDomain
		}
		dst.Host = string(rest[1 : 1+rest[0]])
		rest = rest[1+rest[0]:]
	default:
		return dst, nil, errAtyp
	}
	dst.Port = binary.BigEndian.Uint16(rest[:2])
	return dst, rest[2:], nil
}
