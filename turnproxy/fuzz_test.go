package turnproxy

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// signedRequest builds a TURN request with long-term credentials, as a
// client that passed the 401 round would send it.
func signedRequest(t testing.TB, method stun.Method, user, pass string, peer *net.UDPAddr) []byte {
	t.Helper()
	key := turn.GenerateAuthKey(user, "orville", pass)
	m, err := stun.Build(stun.TransactionID, stun.NewType(method, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x01, 0, 0}},
		xorPeerSetter{peer}, stun.NewUsername(user), stun.NewRealm("orville"), stun.NewNonce("nonce"),
		stun.MessageIntegrity(key), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

type xorPeerSetter struct{ a *net.UDPAddr }

func (p xorPeerSetter) AddTo(m *stun.Message) error {
	return (&stun.XORMappedAddress{IP: p.a.IP, Port: p.a.Port}).AddToAs(m, stun.AttrXORPeerAddress)
}

// FuzzFilterFrames streams arbitrary bytes through the frame filter in
// front of pion: no panic, every frame handed on has the length its header
// says, and a refused request is answered on the connection.
func FuzzFilterFrames(f *testing.F) {
	user, pass := Credentials(testSecret, callA, testGrant, "alice", time.Now().Add(time.Hour))
	chanData := []byte{0x40, 0x01, 0, 5, 'm', 'e', 'd', 'i', 'a', 0, 0, 0}
	f.Add(signedRequest(f, stun.MethodChannelBind, user, pass, &net.UDPAddr{IP: natIP.AsSlice(), Port: portA}))
	f.Add(signedRequest(f, stun.MethodChannelBind, user, pass, &net.UDPAddr{IP: natIP.AsSlice(), Port: 22}))
	f.Add(signedRequest(f, stun.MethodCreatePermission, user, pass, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: portB}))
	f.Add(signedRequest(f, stun.MethodCreatePermission, user, "wrong", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: portB}))
	f.Add(append(chanData, chanData...))
	f.Add([]byte{0x80, 0, 0, 0})
	f.Add([]byte{0, 1, 0xff, 0xff, 0x21, 0x12, 0xA4, 0x42})
	s, _ := newTestServer(f)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		fc := newFilterConn(server, s)
		defer fc.Close()
		before := s.Stats().RefusedRequests
		answers := make(chan int, 1)
		go func() {
			_ = client.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = client.Write(b)
			_ = client.(*net.TCPConn).CloseWrite()
			n, _ := io.Copy(io.Discard, client)
			answers <- int(n)
		}()
		buf := make([]byte, 1600)
		total := 0
		for {
			_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := fc.Read(buf)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("%x: filter stuck", b)
				}
				break
			}
			var hdr [channelHeaderLen]byte
			copy(hdr[:], buf[:channelHeaderLen])
			if n < channelHeaderLen || frameSize(hdr) != n {
				t.Fatalf("frame of %d bytes with header %x (size %d)", n, hdr, frameSize(hdr))
			}
			total += n
		}
		_ = server.Close()
		got := <-answers
		if total > len(b) {
			t.Fatalf("handed on %d bytes of %d", total, len(b))
		}
		if refused := s.Stats().RefusedRequests - before; (refused > 0) != (got > 0) {
			t.Fatalf("%d requests refused, %d bytes answered", refused, got)
		}
	})
}
