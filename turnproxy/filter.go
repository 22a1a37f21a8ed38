package turnproxy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// TURN over a stream (RFC 8656 §12.5, RFC 8489 §6.2.2): STUN messages and
// ChannelData messages back to back, each ChannelData padded to 4 bytes.
const (
	stunHeaderLen    = 20
	channelHeaderLen = 4
	stunMagicCookie  = 0x2112A442
	// filterBufSize holds a media packet's frame or several control
	// messages; larger frames are read through it.
	filterBufSize = 2048
	// maxConnUsers bounds the usernames remembered per connection (a
	// client uses one; a few more cover a reconnecting one).
	maxConnUsers = 4
)

var errBadFrame = errors.New("turnproxy: not a STUN or ChannelData frame")

// filterConn sits between a TURN client's connection and pion: it hands pion
// one whole frame per Read, and answers itself the ChannelBind and
// CreatePermission requests pion would grant although their peer is not one
// of the call's two media ports (pion's permission handler sees only the
// peer's IP address). It also remembers whose credentials the connection
// carries, so that removing a participant closes its connections.
type filterConn struct {
	net.Conn
	s *Server
	r *bufio.Reader

	mu    sync.Mutex
	users []User
}

func newFilterConn(c net.Conn, s *Server) *filterConn {
	return &filterConn{Conn: c, s: s, r: bufio.NewReaderSize(c, filterBufSize)}
}

// Read returns exactly one frame. A frame larger than p (pion's read buffer,
// its inbound MTU) is skipped, as pion would not take it either.
func (c *filterConn) Read(p []byte) (int, error) {
	for {
		var hdr [channelHeaderLen]byte
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			return 0, err
		}
		size := frameSize(hdr)
		if size < 0 {
			return 0, errBadFrame // pion closes such a connection too
		}
		if size > len(p) {
			if _, err := io.CopyN(io.Discard, c.r, int64(size-channelHeaderLen)); err != nil {
				return 0, err
			}
			continue
		}
		copy(p, hdr[:])
		if _, err := io.ReadFull(c.r, p[channelHeaderLen:size]); err != nil {
			return 0, err
		}
		if !c.intercept(p[:size]) {
			return size, nil
		}
	}
}

// frameSize is the length of the frame that starts with hdr, or -1.
func frameSize(hdr [channelHeaderLen]byte) int {
	n := int(binary.BigEndian.Uint16(hdr[2:4]))
	switch hdr[0] >> 6 {
	case 0: // STUN: the two top bits are zero (RFC 8489 §5)
		return stunHeaderLen + n
	case 1: // ChannelData: channel numbers 0x4000–0x7FFF (RFC 8656 §12.4)
		return channelHeaderLen + (n+3)&^3
	}
	return -1
}

// intercept inspects a control request. It reports true when it answered
// the request itself (403), so pion must not see it.
func (c *filterConn) intercept(frame []byte) bool {
	if len(frame) < stunHeaderLen || frame[0]>>6 != 0 ||
		binary.BigEndian.Uint32(frame[4:8]) != stunMagicCookie {
		return false // ChannelData, or not STUN (pion answers)
	}
	t := stun.MessageType{}
	t.ReadValue(binary.BigEndian.Uint16(frame[0:2]))
	if t.Class != stun.ClassRequest {
		return false
	}
	switch t.Method {
	case stun.MethodAllocate, stun.MethodRefresh, stun.MethodCreatePermission, stun.MethodChannelBind:
	default:
		return false
	}
	m := &stun.Message{Raw: append([]byte(nil), frame...)}
	if m.Decode() != nil {
		return false
	}
	var username stun.Username
	if username.GetFrom(m) != nil {
		return false
	}
	u, err := ParseUsername(username.String())
	if err != nil {
		return false
	}
	c.remember(u)
	if t.Method != stun.MethodCreatePermission && t.Method != stun.MethodChannelBind {
		return false
	}
	if c.peersAllowed(m, u) {
		return false
	}
	// Only a request that proves the credentials gets our answer; anything
	// else goes on to pion, which answers 401 or 438.
	var realm stun.Realm
	if realm.GetFrom(m) != nil || realm.String() != c.s.cfg.Realm {
		return false
	}
	key := turn.GenerateAuthKey(username.String(), c.s.cfg.Realm, restPassword(c.s.cfg.Secret, username.String()))
	integrity := stun.MessageIntegrity(key)
	if integrity.Check(m) != nil {
		return false
	}
	// RFC 8656 §9.1 (CreatePermission) and §11.2 (ChannelBind): 403 when
	// the server's policy refuses the peer.
	resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(t.Method, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeForbidden, Reason: []byte("Forbidden: not a media port of this call")},
		integrity, stun.Fingerprint)
	if err != nil {
		return false
	}
	c.s.refusedRequests.Add(1)
	c.s.logRefused(u, c.RemoteAddr())
	_, _ = c.Write(resp.Raw) // concurrent with pion's writes: net.Conn writes whole buffers
	return true
}

// peersAllowed reports whether every XOR-PEER-ADDRESS of a CreatePermission
// or ChannelBind request is one of the call's two media ports on one of
// this server's media addresses.
func (c *filterConn) peersAllowed(m *stun.Message, u User) bool {
	port, ok := c.s.cfg.Call(u.CallID)
	if !ok {
		return true // auth fails in pion: the call is not running
	}
	for _, a := range m.Attributes {
		if a.Type != stun.AttrXORPeerAddress {
			continue
		}
		var peer stun.XORMappedAddress
		one := &stun.Message{TransactionID: m.TransactionID, Attributes: stun.Attributes{a}}
		if peer.GetFromAs(one, stun.AttrXORPeerAddress) != nil {
			return true // malformed: pion answers 400
		}
		if (peer.Port != port && peer.Port != port+1) || peer.Port < c.s.cfg.PortMin || peer.Port > c.s.cfg.PortMax {
			return false
		}
		if !c.s.isTarget(peer.IP) {
			return false
		}
	}
	return true // no peer at all: pion answers 400
}

// remember records whose credentials this connection carries.
func (c *filterConn) remember(u User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.users {
		if v.CallID == u.CallID && v.Participant == u.Participant {
			return
		}
	}
	if len(c.users) < maxConnUsers {
		c.users = append(c.users, u)
	}
}

// carries reports whether the connection used credentials of the call (and
// of the participant, unless participant is "").
func (c *filterConn) carries(callID, participant string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.users {
		if v.CallID == callID && (participant == "" || v.Participant == participant) {
			return true
		}
	}
	return false
}

// Close unregisters the connection. Idempotent through the listener's set.
func (c *filterConn) Close() error {
	c.s.forget(c)
	return c.Conn.Close()
}
