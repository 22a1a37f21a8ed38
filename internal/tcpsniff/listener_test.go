package tcpsniff

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/orville/orville/internal/tlsutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stunBinding returns a minimal STUN binding request header (RFC 8489 §5).
func stunBinding() []byte {
	b := make([]byte, stunHeaderLen)
	binary.BigEndian.PutUint16(b[0:2], 0x0001)
	binary.BigEndian.PutUint32(b[4:8], stunMagicCookie)
	copy(b[8:], "transactionI")
	return b
}

func newTestListener(t testing.TB, mod func(*Config)) (*Listener, *tls.Config) {
	t.Helper()
	cert, err := tlsutil.SelfSigned([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listener: ln, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, Logger: zap.NewNop()}
	if mod != nil {
		mod(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return l, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// acceptOne returns the next connection of ln or fails after a while.
func acceptOne(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			ch <- c
		}
	}()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection handed out")
		return nil
	}
}

func TestClassifiesAndReplays(t *testing.T) {
	l, clientTLS := newTestListener(t, nil)
	addr := l.Addr().String()

	iceFrame := append([]byte{0, stunHeaderLen}, stunBinding()...)
	for _, c := range []struct {
		name  string
		tls   bool
		first []byte
		ln    net.Listener
	}{
		{"TURN over TCP", false, stunBinding(), l.TURN()},
		{"ICE-TCP (RFC 4571 framing)", false, iceFrame, l.ICETCP()},
		{"TURN over TLS", true, stunBinding(), l.TURN()},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cc net.Conn
			var err error
			if c.tls {
				cc, err = tls.Dial("tcp", addr, clientTLS)
			} else {
				cc, err = net.Dial("tcp", addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			if _, err := cc.Write(c.first); err != nil {
				t.Fatal(err)
			}
			sc := acceptOne(t, c.ln)
			defer sc.Close()
			got := make([]byte, len(c.first))
			_ = sc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(sc, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.first) {
				t.Fatalf("replayed %x, want %x", got, c.first)
			}
			// The stream goes on after the replayed bytes, both ways.
			if _, err := cc.Write([]byte("more")); err != nil {
				t.Fatal(err)
			}
			more := make([]byte, 4)
			if _, err := io.ReadFull(sc, more); err != nil || string(more) != "more" {
				t.Fatalf("after replay: %q %v", more, err)
			}
			if _, err := sc.Write([]byte("back")); err != nil {
				t.Fatal(err)
			}
			_ = cc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(cc, more); err != nil || string(more) != "back" {
				t.Fatalf("server to client: %q %v", more, err)
			}
		})
	}

	t.Run("HTTP inside TLS", func(t *testing.T) {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "hello "+r.URL.Path)
		})}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(l.HTTP()) }()
		defer func() { _ = srv.Close(); <-done }()
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}, Timeout: 5 * time.Second}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello /healthz" {
			t.Fatalf("body %q", body)
		}
	})

	t.Run("junk is closed", func(t *testing.T) {
		before := l.Stats().Junk
		cc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		_, _ = cc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		_ = cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := cc.Read(make([]byte, 10)); err == nil {
			t.Fatalf("junk connection answered %d bytes", n)
		}
		waitFor(t, func() bool { return l.Stats().Junk == before+1 })
	})
	waitFor(t, func() bool { return l.Stats().Open == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Idle and half-open connections time out, and past the per-address limit
// the oldest make room: a new client from the same address still gets in.
func TestLimitsAndTimeouts(t *testing.T) {
	l, clientTLS := newTestListener(t, func(c *Config) {
		c.FirstBytesTimeout = 300 * time.Millisecond
		c.HandshakeTimeout = 500 * time.Millisecond
		c.MaxPendingPerIP = 8
		c.MaxPending = 16
		c.MaxConns = 32
	})
	addr := l.Addr().String()
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 40 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if len(idle)%2 == 1 {
			_, _ = c.Write([]byte{tlsHandshakeRecord, 3, 1}) // half a ClientHello
		}
		idle = append(idle, c)
	}
	waitFor(t, func() bool { return l.Stats().Accepted == 40 })
	if s := l.Stats(); s.Pending > 8 || s.Evicted < 32 {
		t.Fatalf("limits not enforced: %+v", s)
	}
	cc, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatalf("a new client is locked out: %v", err)
	}
	_, _ = cc.Write(stunBinding())
	acceptOne(t, l.TURN()).Close()
	cc.Close()
	waitFor(t, func() bool { s := l.Stats(); return s.Pending == 0 && s.Open == 0 })
	if s := l.Stats(); s.Timeouts+s.TLSFailed == 0 {
		t.Fatalf("no timeouts counted: %+v", s)
	}
}

// One source address holding its whole share of handed-out connections is
// refused further ones (counted), while another address still gets in, and
// a closed connection gives its slot back.
func TestPerAddressCapOnOpenConnections(t *testing.T) {
	l, clientTLS := newTestListener(t, func(c *Config) {
		c.MaxPendingPerIP = 2
		c.MaxConnsPerIP = 4
	})
	addr := l.Addr().String()
	dialFrom := func(ip string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		_, _ = c.Write(stunBinding()) // TURN over TCP: handed out at once
		return c, nil
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 4 {
		c, err := dialFrom("127.0.0.2")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		held = append(held, acceptOne(t, l.TURN()))
	}
	c, err := dialFrom("127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a fifth connection from the same address was served")
	}
	waitFor(t, func() bool { return l.Stats().RefusedPerIP == 1 })

	// Another address is not affected.
	cc, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = cc.Write(stunBinding())
	acceptOne(t, l.TURN()).Close()
	cc.Close()

	// Closing a handed-out connection frees its address's slot.
	held[1].Close()
	waitFor(t, func() bool { return l.Stats().Open == 3 })
	c2, err := dialFrom("127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, c2, acceptOne(t, l.TURN()))
	if s := l.Stats(); s.RefusedPerIP != 1 || s.Open != 4 {
		t.Fatalf("stats %+v", s)
	}
}
