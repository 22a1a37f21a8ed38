package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/orville/orville/client"
)

// A few hundred junk, idle, half-open TLS and slow connections on the client
// port do not stop a new client from joining over that port (signaling and
// ICE-TCP) and getting media quickly.
func TestJunkConnectionsDoNotLockClientsOut(t *testing.T) {
	s := startStack(t, 45080)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	keep := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", s.tcpAddr, 5*time.Second)
		if err != nil {
			t.Errorf("dial: %v", err)
			return nil
		}
		keep(c)
		return c
	}
	// Half-open TLS: a ClientHello record header and a few bytes of it.
	halfHello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	for range 100 { // idle: connect and say nothing
		dial()
	}
	for range 100 { // junk: a few random bytes that name no protocol, then silence
		if c := dial(); c != nil {
			b := make([]byte, 6)
			_, _ = rand.Read(b)
			b[0] = 0x80 | b[0] // neither TLS (0x16) nor STUN (top bits 00)
			_, _ = c.Write(b)
		}
	}
	for range 100 {
		if c := dial(); c != nil {
			_, _ = c.Write(halfHello)
		}
	}
	// Slow: a finished TLS handshake, then an HTTP request a byte at a time.
	var wg sync.WaitGroup
	defer wg.Wait()
	slowCtx, stopSlow := context.WithCancel(context.Background())
	defer stopSlow() // before wg.Wait
	for range 100 {
		raw := dial()
		if raw == nil {
			continue
		}
		tc := tls.Client(raw, s.tlsConf)
		if err := tc.Handshake(); err != nil {
			continue // the listener may already have dropped it to make room
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := []byte("GET /v1/rtc HTTP/1.1\r\nHost: x\r\n")
			for i := 0; i < len(req); i++ {
				select {
				case <-slowCtx.Done():
					return
				case <-time.After(300 * time.Millisecond):
				}
				if _, err := tc.Write(req[i : i+1]); err != nil {
					return
				}
			}
		}()
	}
	t.Logf("%d connections held open", len(conns))

	_, g := s.call(t, "alice", "bob")
	alice := s.join(t, g["alice"], "alice", nil)
	start := time.Now()
	bob := s.join(t, g["bob"], "bob", func(c *client.Config) { c.ForceTCP = true })
	joined := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bob.WaitForMedia(ctx, []string{"alice"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatalf("new client got no media: %v", err)
	}
	if err := alice.WaitForMedia(ctx, []string{"bob"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatalf("media from the new client: %v", err)
	}
	media := time.Since(start)
	t.Logf("with junk: joined after %v, media both ways after %v, over %s", joined, media, bob.Stats().Publish.Path)
	if joined > 2*time.Second || media > 3*time.Second {
		t.Errorf("join %v, media %v: junk slowed a new client down", joined, media)
	}
}
