package socks

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

func ip4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }
func ip6() netip.Addr                { return netip.MustParseAddr("2001:db8::1") }

// FuzzRequest feeds arbitrary bytes to the handshake parsers in the order a
// connection runs them: greeting, RFC 1929 authentication, request. They
// never panic and never read past what they are given.
func FuzzRequest(f *testing.F) {
	auth := func(u, p string) []byte {
		return append(append(append([]byte{1, byte(len(u))}, u...), byte(len(p))), p...)
	}
	connect := appendAddr([]byte{5, cmdConnect, 0}, Addr{Host: "calls.example.com", Port: 443})
	seeds := [][]byte{
		{}, {5}, {5, 0}, {5, 1, 2}, {4, 1, 0}, {5, 255},
		append(append([]byte{5, 1, 2}, auth(testUser, testPass)...), connect...),
		append(append([]byte{5, 2, 0, 2}, auth("", "")...), appendAddr([]byte{5, cmdUDPAssociate, 0}, Addr{IP: ip4(0, 0, 0, 0)})...),
		append(append([]byte{5, 1, 2}, auth("u", "p")...), 5, 1, 1, atypDomain, 0, 1, 187),
		append(append([]byte{5, 1, 2}, auth("u", "p")...), 5, 1, 0, 9, 1, 2),
		append(append([]byte{5, 1, 2}, auth("u", "p")...), appendAddr([]byte{5, cmdBind, 0}, Addr{IP: ip6(), Port: 1})...),
		append([]byte{5, 1, 2, 2, 3}, "abc"...),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		userPass, err := readGreeting(r)
		if err != nil || !userPass {
			return
		}
		u, p, err := readUserPass(r)
		if err != nil {
			return
		}
		if len(u) > 255 || len(p) > 255 {
			t.Fatalf("credentials longer than their length byte allows: %d, %d", len(u), len(p))
		}
		cmd, dst, err := readRequest(r)
		if err != nil {
			return
		}
		// What parsed encodes back to what was read.
		enc := appendAddr([]byte{5, cmd, 0}, dst)
		consumed := b[:len(b)-r.Len()]
		if !bytes.HasSuffix(consumed, enc) {
			t.Fatalf("request %x parsed as %d %v, which encodes as %x", consumed, cmd, dst, enc)
		}
	})
}

// FuzzUDPHeader parses arbitrary datagrams (RFC 1928 §7): no panic, and a
// parsed header encodes back to the bytes it came from.
func FuzzUDPHeader(f *testing.F) {
	for _, s := range [][]byte{
		{}, {0, 0, 0}, {0, 0, 0, 1, 127, 0, 0, 1, 0x40, 0, 'x'}, {0, 0, 1, 1, 127, 0, 0, 1, 0, 1},
		append([]byte{0, 0, 0, 4}, make([]byte, 18)...), {0, 0, 0, 3, 3, 'a', '.', 'b', 0, 80, 'd'},
		{0, 0, 0, 3, 0, 0, 80}, {0, 0, 0, 3, 200, 'a'}, {1, 0, 0, 1, 1, 1, 1, 1, 0, 0},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dst, data, err := parseUDPHeader(b)
		if err != nil {
			return
		}
		enc := append(appendAddr([]byte{0, 0, 0}, dst), data...)
		dst2, data2, err := parseUDPHeader(enc)
		if err != nil || dst2 != dst || !bytes.Equal(data2, data) {
			t.Fatalf("%x parsed as %v + %x; its encoding %x parses as %v + %x (%v)", b, dst, data, enc, dst2, data2, err)
		}
	})
}

// FuzzServer sends arbitrary bytes to a running relay: it answers or closes
// within its handshake timeout, never panics, and relays nothing but its
// grant's routes (the world's other services count what they get).
func FuzzServer(f *testing.F) {
	auth := append(append(append([]byte{5, 1, 2, 1, byte(len(testUser))}, testUser...), byte(len(testPass))), testPass...)
	f.Add([]byte{5, 1, 0})
	f.Add(append(append([]byte{}, auth...), appendAddr([]byte{5, cmdConnect, 0}, Addr{Host: "calls.example.com", Port: 443})...))
	f.Add(append(append([]byte{}, auth...), appendAddr([]byte{5, cmdConnect, 0}, Addr{Host: "evil.example", Port: 22})...))
	f.Add(append(append([]byte{}, auth...), appendAddr([]byte{5, cmdUDPAssociate, 0}, Addr{IP: ip4(0, 0, 0, 0)})...))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	w := newWorld(f)
	s := newServer(f, w, func(c *Config) {
		c.HandshakeTimeout = 200 * time.Millisecond
		c.UDPIdleTimeout = 200 * time.Millisecond
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		opened := s.Stats().Connects + s.Stats().Associations
		_, _ = c.Write(b)
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		// The relay answers, then closes (a CONNECT to the echo stays open:
		// close our side after a while).
		buf := make([]byte, 4096)
		for {
			_, err := c.Read(buf)
			if err == io.EOF {
				break
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				if s.Stats().Connects+s.Stats().Associations == opened {
					t.Fatalf("no answer and no close within 1 s to %x", b)
				}
				break
			}
			if err != nil {
				break
			}
		}
		if len(w.otherUDPGot) != 0 {
			t.Fatal("a datagram reached a port outside the grant")
		}
	})
}
