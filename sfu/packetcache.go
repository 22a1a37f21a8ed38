package sfu

import "sync/atomic"

// maxPacketSize bounds one cached RTP packet. Larger packets are not forwarded:
// no WebRTC sender exceeds a 1500-byte path MTU.
const maxPacketSize = 1500

// packetCache keeps the last N packets of one published stream, indexed by
// RTP sequence number, so that NACKs (RFC 4585 §6.2.1) are answered without
// asking the publisher.
//
// One goroutine (the stream's ingest) stores; any number read (the
// retransmitters). Each slot is a
// seqlock: the stamp is odd while the slot is written, and a reader that sees the
// stamp change during its copy discards what it read. Readers only copy out, so a
// slow reader never blocks the writer, and nothing is allocated after creation.
type packetCache struct {
	mask  uint16
	buf   []byte // len(slots) * maxPacketSize
	slots []cacheSlot
	guard raceGuard // nothing, except under the race detector (raceguard_*.go)
}

type cacheSlot struct {
	// stamp is 2*(seq+1) when the slot holds seq, odd while being written, 0 empty.
	stamp atomic.Uint32
	size  atomic.Uint32
}

// newPacketCache returns a cache of size slots; size must be a power of two ≤ 32768
// so that slot = seq & mask stays consistent across the 16-bit wrap.
func newPacketCache(size int) *packetCache {
	if size <= 0 || size > 1<<15 || size&(size-1) != 0 {
		panic("sfu: packet cache size must be a power of two ≤ 32768")
	}
	return &packetCache{
		mask:  uint16(size - 1),
		buf:   make([]byte, size*maxPacketSize),
		slots: make([]cacheSlot, size),
	}
}

func stampOf(seq uint16) uint32 { return 2 * (uint32(seq) + 1) }

// store copies pkt into the slot for seq. Packets larger than maxPacketSize are
// refused (false).
func (c *packetCache) store(seq uint16, pkt []byte) bool {
	if len(pkt) > maxPacketSize {
		return false
	}
	i := seq & c.mask
	s := &c.slots[i]
	s.stamp.Store(stampOf(seq) - 1) // odd: being written
	off := int(i) * maxPacketSize
	c.guard.lock()
	copy(c.buf[off:off+len(pkt)], pkt)
	c.guard.unlock()
	s.size.Store(uint32(len(pkt)))
	s.stamp.Store(stampOf(seq))
	return true
}

// load copies the packet with sequence number seq into dst and returns its length,
// or 0 when it is not (or no longer) cached.
func (c *packetCache) load(seq uint16, dst []byte) int {
	i := seq & c.mask
	s := &c.slots[i]
	want := stampOf(seq)
	if s.stamp.Load() != want {
		return 0
	}
	n := int(s.size.Load())
	if n > len(dst) {
		return 0
	}
	off := int(i) * maxPacketSize
	c.guard.rlock()
	copy(dst[:n], c.buf[off:off+n])
	c.guard.runlock()
	if s.stamp.Load() != want { // overwritten while copying
		return 0
	}
	return n
}
