// Package turntest is a minimal TURN-over-TCP client for tests: it sends
// single requests (Allocate, CreatePermission, ChannelBind, Refresh) with
// long-term credentials and reports the server's answer code, which pion's
// own client hides behind its retries and background refreshes.
package turntest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pion/stun/v4"
)

// Client is one TURN session on one stream connection.
type Client struct {
	conn             net.Conn
	user, pass       string
	realm, nonce     string
	integrity        stun.MessageIntegrity
	authenticated    bool
	ReadTimeout      time.Duration
	LastErrorMessage string
}

// New wraps an established connection (TCP, or TLS on top of it).
func New(conn net.Conn, username, password string) *Client {
	return &Client{conn: conn, user: username, pass: password, ReadTimeout: 5 * time.Second}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the underlying connection.
func (c *Client) Conn() net.Conn { return c.conn }

// Allocate requests a UDP allocation (RFC 8656 §7.1) and returns the answer
// code: 0 for success, else the ERROR-CODE (401, 403, 437, 486, …).
func (c *Client) Allocate() (int, error) {
	// REQUESTED-TRANSPORT: UDP (17), RFC 8656 §18.8.
	transport := stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}
	return c.do(stun.MethodAllocate, transport)
}

// CreatePermission asks for permissions for the peers (RFC 8656 §9).
func (c *Client) CreatePermission(peers ...*net.UDPAddr) (int, error) {
	var setters []stun.Setter
	for _, p := range peers {
		setters = append(setters, peerAddr(p))
	}
	return c.do(stun.MethodCreatePermission, setters...)
}

// ChannelBind binds channel (0x4000–0x4FFF) to peer (RFC 8656 §11).
func (c *Client) ChannelBind(channel uint16, peer *net.UDPAddr) (int, error) {
	num := stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(channel >> 8), byte(channel), 0, 0}}
	return c.do(stun.MethodChannelBind, num, peerAddr(peer))
}

// Refresh refreshes the allocation for lifetime (0 deletes it, §7.3).
func (c *Client) Refresh(lifetime time.Duration) (int, error) {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, uint32(lifetime/time.Second))
	return c.do(stun.MethodRefresh, stun.RawAttribute{Type: stun.AttrLifetime, Value: v})
}

// Send sends data to peer in a Send indication (RFC 8656 §10.1); there is
// no answer.
func (c *Client) Send(peer *net.UDPAddr, data []byte) error {
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
		peerAddr(peer), stun.RawAttribute{Type: stun.AttrData, Value: data}, stun.Fingerprint)
	if err != nil {
		return err
	}
	_, err = c.conn.Write(m.Raw)
	return err
}

type xorPeer struct{ addr *net.UDPAddr }

func (p xorPeer) AddTo(m *stun.Message) error {
	return (&stun.XORMappedAddress{IP: p.addr.IP, Port: p.addr.Port}).AddToAs(m, stun.AttrXORPeerAddress)
}

func peerAddr(a *net.UDPAddr) stun.Setter { return xorPeer{a} }

// do sends one request, answering a first 401 (or a 438 stale nonce) with
// credentials, and returns 0 or the final error code.
func (c *Client) do(method stun.Method, attrs ...stun.Setter) (int, error) {
	for attempt := 0; attempt < 3; attempt++ {
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if c.authenticated {
			setters = append(setters, stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(c.nonce), c.integrity)
		}
		setters = append(setters, stun.Fingerprint)
		req, err := stun.Build(setters...)
		if err != nil {
			return 0, err
		}
		if _, err := c.conn.Write(req.Raw); err != nil {
			return 0, err
		}
		resp, err := c.read(req.TransactionID)
		if err != nil {
			return 0, err
		}
		if resp.Type.Class == stun.ClassSuccessResponse {
			return 0, nil
		}
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(resp); err != nil {
			return 0, fmt.Errorf("turntest: error response without ERROR-CODE: %w", err)
		}
		c.LastErrorMessage = string(code.Reason)
		var nonce stun.Nonce
		var realm stun.Realm
		retry := (code.Code == stun.CodeUnauthorized && !c.authenticated) || code.Code == stun.CodeStaleNonce
		if !retry || nonce.GetFrom(resp) != nil || realm.GetFrom(resp) != nil {
			return int(code.Code), nil
		}
		c.nonce, c.realm = nonce.String(), realm.String()
		c.integrity = stun.NewLongTermIntegrity(c.user, c.realm, c.pass)
		c.authenticated = true
	}
	return 0, errors.New("turntest: no final answer after retries")
}

// read returns the response to transaction id, skipping indications and
// ChannelData.
func (c *Client) read(id [stun.TransactionIDSize]byte) (*stun.Message, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(c.ReadTimeout))
	defer func() { _ = c.conn.SetReadDeadline(time.Time{}) }()
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(hdr[2:4]))
		if hdr[0]>>6 == 1 { // ChannelData, padded to 4 bytes over streams
			if _, err := io.CopyN(io.Discard, c.conn, int64((n+3)&^3)); err != nil {
				return nil, err
			}
			continue
		}
		raw := make([]byte, 20+n)
		copy(raw, hdr[:])
		if _, err := io.ReadFull(c.conn, raw[4:]); err != nil {
			return nil, err
		}
		m := &stun.Message{Raw: raw}
		if err := m.Decode(); err != nil {
			return nil, err
		}
		if m.TransactionID == id {
			return m, nil
		}
	}
}
