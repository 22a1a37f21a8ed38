package sfu

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The whole server side of a forwarded packet on real sockets: a client
// socket sends SRTP to the call's publish port; the call socket's loop reads
// it (recvmmsg), routes it by address, decrypts it, caches it, rewrites and
// encrypts it for every subscriber and sends the batch (sendmmsg) to a
// draining socket. Nothing else in the process allocates per packet, so the
// process's allocation count over thousands of packets measures the path.
func TestSocketToSocketPathDoesNotAllocate(t *testing.T) {
	const subs, packets = 20, 3000
	c, obs, drainAddr, got := socketPathCall(t, 41050)
	r := newFanoutRigOn(t, c, "audio", subs, drainAddr)
	pkts := make([][]byte, packets+200)
	for i := range pkts {
		pkts[i] = r.packet(t, 120)
	}
	measureSocketPath(t, c, obs, r, pkts, subs, got)
}

// socketPathCall opens a call on port and port+1 and a socket that drains
// what the call sends to subscribers, counting it in got.
func socketPathCall(t *testing.T, port int) (c *Call, obs *countingObserver, drainAddr netip.AddrPort, got *atomic.Int64) {
	t.Helper()
	obs = &countingObserver{}
	c, err := NewCall(Config{ID: "alloc", ListenIP: loopback, PublishPort: port, SubscribePort: port + 1,
		Logger: zap.NewNop(), Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close("test") })
	drain, err := net.ListenUDP("udp", &net.UDPAddr{IP: loopback})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drain.Close() })
	_ = drain.SetReadBuffer(8 << 20)
	got = &atomic.Int64{}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := drain.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	return c, obs, drain.LocalAddr().(*net.UDPAddr).AddrPort(), got
}

// measureSocketPath sends pkts from a client socket to the call's publish
// port as r's publisher, the first 200 to warm up, and fails the test if
// the process allocates on average per forwarded packet. got counts what
// reached the subscribers' socket.
func measureSocketPath(t *testing.T, c *Call, obs *countingObserver, r *fanoutRig, pkts [][]byte, fanout float64, got *atomic.Int64) {
	t.Helper()
	packets := int64(len(pkts) - 200)
	client, err := net.ListenUDP("udp", &net.UDPAddr{IP: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	from := client.LocalAddr().(*net.UDPAddr).AddrPort()
	pubT := r.pub.pubT
	pubT.path.Store(pathUDP)
	pubT.remote.Store(&from)
	pubT.ready.Store(true)
	c.pubSock.setRoute(pubT, from, netip.AddrPort{})
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(c.cfg.PublishPort))

	send := func(list [][]byte) {
		for i, b := range list {
			if _, err := client.WriteToUDPAddrPort(b, to); err != nil {
				t.Fatal(err)
			}
			if i%10 == 9 {
				time.Sleep(time.Millisecond) // stay within the socket buffers of a loaded machine
			}
		}
	}
	// wait until the server has forwarded n packets, or stopped forwarding.
	wait := func(n int64) {
		last, still := int64(-1), 0
		for obs.out.Load() < n && still < 50 {
			time.Sleep(10 * time.Millisecond)
			if v := obs.out.Load(); v == last {
				still++
			} else {
				last, still = v, 0
			}
		}
	}
	send(pkts[:200]) // warm up: the route, SRTP state per SSRC, batch buffers
	wait(int64(200 * fanout))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out0 := obs.out.Load()
	send(pkts[200:])
	wait(int64(float64(200+packets) * fanout))
	runtime.ReadMemStats(&after)
	forwarded := obs.out.Load() - out0
	if want := int64(float64(packets) * fanout); forwarded < want/2 {
		t.Fatalf("only %d of %d packets forwarded", forwarded, want)
	}
	allocs := after.Mallocs - before.Mallocs
	perPacket := float64(allocs) / float64(forwarded)
	t.Logf("%d allocations in the whole process for %d packets forwarded (%.4f per packet); %d datagrams reached the subscriber socket",
		allocs, forwarded, perPacket, got.Load())
	// Timers and the test's own bookkeeping allocate a little in the
	// background; the packet path itself must not allocate at all.
	if perPacket >= 0.001 {
		t.Errorf("%.4f allocations per forwarded packet on the socket-to-socket path", perPacket)
	}
}
