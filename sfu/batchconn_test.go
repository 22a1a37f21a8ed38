package sfu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func listenLoopback(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every datagram arrives intact and, from one writer, in order; concurrent
// writers make batches of more than one datagram.
func TestBatchConnDeliversInOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	bc := newBatchConn(listenLoopback(t), nil)
	defer bc.Close()
	const writers, each = 8, 500
	var rx []*net.UDPConn
	for range writers {
		r := listenLoopback(t)
		defer r.Close()
		_ = r.SetReadBuffer(4 << 20)
		rx = append(rx, r)
	}
	var wg sync.WaitGroup
	for w, r := range rx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := r.LocalAddr().(*net.UDPAddr).AddrPort()
			b := make([]byte, 200)
			for i := range each {
				binary.BigEndian.PutUint32(b, uint32(i))
				b[4] = byte(w)
				if _, err := bc.WriteToAddrPort(b, dst); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for w, r := range rx {
		buf := make([]byte, 2048)
		for i := range each {
			_ = r.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, from, err := r.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("writer %d: datagram %d: %v", w, i, err)
			}
			if n != 200 || binary.BigEndian.Uint32(buf) != uint32(i) || buf[4] != byte(w) || from != bc.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("writer %d: datagram %d: got seq %d from %v (%d bytes)", w, i, binary.BigEndian.Uint32(buf), from, n)
			}
		}
	}
	if p, b := bc.packets.Load(), bc.batches.Load(); p != writers*each || b >= p {
		t.Fatalf("%d packets in %d batches: want %d packets, batches of more than one", p, b, writers*each)
	}
	if s := bc.slots.Load(); s < 1 || s > maxBatchSlots {
		t.Fatalf("%d slots allocated", s)
	}
}

// WriteTo with a *net.UDPAddr, an oversized datagram (sent directly), and
// reads through the wrapper.
func TestBatchConnWriteToAndRead(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b := newBatchConn(listenLoopback(t), nil), newBatchConn(listenLoopback(t), nil)
	defer a.Close()
	defer b.Close()
	big := bytes.Repeat([]byte{7}, batchSlotSize+100)
	if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteTo(big, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := b.ReadFromAddrPort(buf)
	if err != nil || string(buf[:n]) != "hello" || from != a.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("first datagram: %d bytes from %v (%v), want \"hello\"", n, from, err)
	}
	n, _, err = b.ReadFrom(buf)
	if err != nil || n != len(big) {
		t.Fatalf("oversized: %d bytes, %v", n, err)
	}
	if _, err := a.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}); err == nil {
		t.Fatal("a TCP address was accepted")
	}
}

// An unreachable destination in the middle of a batch costs that datagram
// only; its error is reported.
func TestBatchConnSkipsFailedDatagram(t *testing.T) {
	defer goleak.VerifyNone(t)
	var mu sync.Mutex
	var errs []error
	bc := newBatchConn(listenLoopback(t), func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
	defer bc.Close()
	r := listenLoopback(t)
	defer r.Close()
	good := r.LocalAddr().(*net.UDPAddr).AddrPort()
	// An IPv6 destination cannot be reached from an IPv4 socket.
	bad := netip.MustParseAddrPort("[2001:db8::1]:9")
	for i, dst := range []netip.AddrPort{good, bad, good} {
		if _, err := bc.WriteToAddrPort([]byte{byte(i)}, dst); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 16)
	for _, want := range []byte{0, 2} {
		_ = r.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, _, err := r.ReadFrom(buf); err != nil || n != 1 || buf[0] != want {
			t.Fatalf("got %v (%v), want datagram %d", buf[:n], err, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 {
		t.Fatalf("errors reported: %v, want one", errs)
	}
}

func TestBatchConnCloseIsIdempotent(t *testing.T) {
	defer goleak.VerifyNone(t)
	bc := newBatchConn(listenLoopback(t), nil)
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	_ = bc.Close()
	if _, err := bc.WriteToAddrPort([]byte{1}, netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	if _, _, err := bc.ReadFromAddrPort(make([]byte, 10)); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

// Queuing a datagram allocates nothing once the slots exist.
func TestBatchConnWriteDoesNotAllocate(t *testing.T) {
	defer goleak.VerifyNone(t)
	bc := newBatchConn(listenLoopback(t), nil)
	defer bc.Close()
	r := listenLoopback(t)
	defer r.Close()
	_ = r.SetReadBuffer(4 << 20)
	dst := r.LocalAddr().(*net.UDPAddr).AddrPort()
	pkt := make([]byte, 120)
	for range 100 {
		_, _ = bc.WriteToAddrPort(pkt, dst) // warm the slots and the flusher
	}
	time.Sleep(50 * time.Millisecond)
	if a := testing.AllocsPerRun(1000, func() { _, _ = bc.WriteToAddrPort(pkt, dst) }); a != 0 {
		t.Fatalf("%v allocations per datagram, want 0", a)
	}
}
