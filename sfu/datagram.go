package sfu

import (
	"errors"
	"net"
	"net/netip"
	"os"

	pion "github.com/pion/transport/v5"
)

// Datagram I/O on one of a call's sockets. A host socket (*net.UDPConn on
// Linux) moves batches with recvmmsg(2)/sendmmsg(2) and allocates nothing
// (mmsg_linux.go); any other socket — a pion vnet conn in tests — moves one
// datagram per call through the pion.UDPConn interface.

// maxDatagram bounds what the call sockets read and write. WebRTC stacks keep
// datagrams under a 1200–1500-byte path MTU; a larger one is truncated and
// dropped.
const maxDatagram = 2048

// datagram is one buffer of a batch: its bytes and the remote address.
type datagram struct {
	buf  []byte // len maxDatagram
	n    int
	addr netip.AddrPort
}

func newDatagrams(n int) []datagram {
	backing := make([]byte, n*maxDatagram)
	out := make([]datagram, n)
	for i := range out {
		out[i].buf = backing[i*maxDatagram : (i+1)*maxDatagram : (i+1)*maxDatagram]
	}
	return out
}

// batchReader fills msgs with at least one datagram, blocking until one
// arrives; it returns how many it filled.
type batchReader interface {
	readBatch(msgs []datagram) (int, error)
}

// batchWriter sends msgs; a datagram the kernel refuses is counted by
// onError and skipped, the rest still go out.
type batchWriter interface {
	writeBatch(msgs []datagram)
}

// newBatchReader and newBatchWriter pick the batched implementation for a
// host socket and the portable one otherwise. A writer belongs to one
// goroutine; so does the reader.
func newBatchReader(conn pion.UDPConn) batchReader {
	if u, ok := conn.(*net.UDPConn); ok {
		if r, err := newMmsgReader(u); err == nil {
			return r
		}
	}
	return &plainIO{conn: conn}
}

func newBatchWriter(conn pion.UDPConn, onError func(error)) batchWriter {
	if u, ok := conn.(*net.UDPConn); ok {
		if w, err := newMmsgWriter(u, onError); err == nil {
			return w
		}
	}
	return &plainIO{conn: conn, onError: onError}
}

// plainIO moves one datagram per system call.
type plainIO struct {
	conn    pion.UDPConn
	onError func(error)
}

func (p *plainIO) readBatch(msgs []datagram) (int, error) {
	for {
		n, addr, err := p.conn.ReadFrom(msgs[0].buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return 0, err
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		msgs[0].n = n
		msgs[0].addr = canonical(ua.AddrPort())
		return 1, nil
	}
}

func (p *plainIO) writeBatch(msgs []datagram) {
	for i := range msgs {
		m := &msgs[i]
		if _, err := p.conn.WriteTo(m.buf[:m.n], net.UDPAddrFromAddrPort(m.addr)); err != nil && p.onError != nil {
			p.onError(err)
		}
	}
}

// canonical unmaps IPv4-mapped IPv6 addresses, so that one client has one
// key whichever socket family saw it.
func canonical(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
