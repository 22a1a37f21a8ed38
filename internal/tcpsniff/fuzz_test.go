package tcpsniff

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// FuzzClassify runs the classifier on arbitrary first bytes: no panic, and
// its verdicts follow the framing rules (STUN: cookie at 4–7; ICE-TCP: an
// RFC 4571 length of a whole STUN header, then STUN).
func FuzzClassify(f *testing.F) {
	ice := append([]byte{0, stunHeaderLen}, stunBinding()...)
	for _, s := range [][]byte{
		stunBinding(), ice, {tlsHandshakeRecord, 3, 1, 0, 200}, []byte("GET / HTTP/1.1\r\n"),
		make([]byte, plainSniffLen), {0, 19, 0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42}, {0xC0, 0, 0, 0, 0x21, 0x12, 0xA4, 0x42, 0, 0},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= tlsSniffLen {
			if k := classifyTLS(b[:tlsSniffLen]); k != KindHTTP && k != KindTURN {
				t.Fatalf("classifyTLS(%x) = %v", b, k)
			}
		}
		if len(b) < plainSniffLen {
			return
		}
		k, ok := classifyPlain(b[:plainSniffLen])
		switch {
		case !ok:
		case k == KindTURN:
			if b[0]&0xC0 != 0 || binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
				t.Fatalf("%x classified as TURN without a STUN header", b)
			}
		case k == KindICETCP:
			if binary.BigEndian.Uint16(b[0:2]) < stunHeaderLen || binary.BigEndian.Uint32(b[6:10]) != stunMagicCookie {
				t.Fatalf("%x classified as ICE-TCP without RFC 4571 framing of STUN", b)
			}
		default:
			t.Fatalf("classifyPlain(%x) = %v", b, k)
		}
	})
}

// FuzzListener sends arbitrary first bytes to a real listener: each
// connection is handed out to the right consumer or closed within the
// deadlines, and the accounting returns to zero.
func FuzzListener(f *testing.F) {
	f.Add(stunBinding())
	f.Add(append([]byte{0, stunHeaderLen}, stunBinding()...))
	f.Add([]byte{tlsHandshakeRecord, 3, 1, 0, 5, 1, 2, 3})
	f.Add([]byte("junk junk junk"))
	f.Add([]byte{})
	l, _ := newTestListener(f, func(c *Config) {
		c.FirstBytesTimeout, c.HandshakeTimeout = 100*time.Millisecond, 200*time.Millisecond
	})
	handed := make(chan net.Conn, 16)
	for _, sub := range []net.Listener{l.HTTP(), l.TURN(), l.ICETCP()} {
		go func() {
			for {
				c, err := sub.Accept()
				if err != nil {
					return
				}
				handed <- c
			}
		}()
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(b)
		deadline := time.After(3 * time.Second)
		for {
			select {
			case h := <-handed:
				h.Close() // a consumer got it: the kind was recognised
				c.Close()
			case <-deadline:
				t.Fatalf("%x: neither handed out nor closed: %+v", b, l.Stats())
			case <-time.After(5 * time.Millisecond):
				if s := l.Stats(); s.Open == 0 && s.Pending == 0 {
					c.Close()
					return
				}
				continue
			}
			break
		}
		for end := time.Now().Add(3 * time.Second); l.Stats().Open != 0; {
			if time.Now().After(end) {
				t.Fatalf("%x: connection slot not released: %+v", b, l.Stats())
			}
			time.Sleep(time.Millisecond)
		}
	})
}
