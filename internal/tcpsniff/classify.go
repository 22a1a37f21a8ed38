package tcpsniff

import "encoding/binary"

// Kind is what a connection on the shared TCP port turned out to carry.
type Kind int

// The kinds a connection is handed out as.
const (
	// KindHTTP is HTTP inside TLS: WebSocket signaling, the web client, /healthz.
	KindHTTP Kind = iota
	// KindTURN is TURN over TLS or over plain TCP (RFC 8656 §3.1; STUN framing
	// on the stream, RFC 8489 §6.2.2).
	KindTURN
	// KindICETCP is ICE-TCP: RFC 4571 framing (a 2-byte length before every
	// packet), RFC 6544 passive candidates.
	KindICETCP
	numKinds
)

func (k Kind) String() string {
	switch k {
	case KindHTTP:
		return "http"
	case KindTURN:
		return "turn"
	case KindICETCP:
		return "ice-tcp"
	}
	return "unknown"
}

const (
	// tlsHandshakeRecord is the first byte of every TLS connection: the
	// record content type "handshake" (RFC 8446 §5.1) carrying ClientHello.
	tlsHandshakeRecord = 0x16
	// stunMagicCookie is the fixed value in bytes 4–7 of every STUN message
	// header (RFC 8489 §5), which is what tells STUN from anything else.
	stunMagicCookie = 0x2112A442
	// stunHeaderLen is the STUN header size (RFC 8489 §5).
	stunHeaderLen = 20
	// plainSniffLen is how many bytes of a plain connection decide its kind:
	// with RFC 4571 framing the cookie sits at bytes 6–9 (after the 2-byte
	// length); without (TURN over TCP) at bytes 4–7.
	plainSniffLen = 10
	// tlsSniffLen is how many bytes inside TLS decide between TURN and HTTP:
	// the cookie at bytes 4–7. Any HTTP request line is longer than this.
	tlsSniffLen = 8
)

// isSTUNHeader reports whether b starts a STUN message: the two most
// significant bits are zero (RFC 8489 §5) and the magic cookie follows the
// type and length. b must hold at least 8 bytes.
func isSTUNHeader(b []byte) bool {
	return b[0]&0xC0 == 0 && binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie
}

// classifyPlain decides the kind of a plain (non-TLS) connection from its
// first plainSniffLen bytes; ok is false for anything else (junk).
func classifyPlain(b []byte) (Kind, bool) {
	switch {
	case isSTUNHeader(b):
		return KindTURN, true
	case binary.BigEndian.Uint16(b[0:2]) >= stunHeaderLen && isSTUNHeader(b[2:]):
		// RFC 4571 §2: LENGTH then the packet, here a STUN binding request
		// (the first packet of an ICE-TCP connection is a connectivity check).
		return KindICETCP, true
	}
	return 0, false
}

// classifyTLS decides between TURN and HTTP inside TLS from the first
// tlsSniffLen bytes. Everything that is not STUN goes to the HTTP server,
// which answers junk with 400 itself.
func classifyTLS(b []byte) Kind {
	if isSTUNHeader(b) {
		return KindTURN
	}
	return KindHTTP
}
