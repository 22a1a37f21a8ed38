package sfu

import (
	"encoding/binary"
	"sync/atomic"
)

// The VP8 payload descriptor (RFC 7741 §4.2) is the RTP payload format's
// own header, written by the packetizer in front of each packet's share of
// the (end-to-end encrypted) frame: it is in the clear and not part of what
// SFrame protects. Each simulcast layer numbers its pictures on its own, so
// when a down track switches layers the server rewrites PictureID and
// TL0PICIDX in the descriptor — nothing after it — so that the receiver
// sees one continuous stream (RFC 7741 §4.2: PictureID increases by one
// per picture; TL0PICIDX by one per base-layer picture).

// vp8Fields locates PictureID and TL0PICIDX in a payload descriptor.
type vp8Fields struct {
	picOff, tl0Off int  // byte offsets; 0: absent (offset 0 is the first descriptor byte)
	wide           bool // 15-bit PictureID (M bit)
}

func parseVP8Descriptor(p []byte) (f vp8Fields, ok bool) {
	if len(p) < 1 {
		return f, false
	}
	if p[0]&0x80 == 0 { // X: no extension byte, nothing to rewrite
		return f, true
	}
	if len(p) < 2 {
		return f, false
	}
	x := p[1]
	i := 2
	if x&0x80 != 0 { // I: PictureID
		if len(p) <= i {
			return f, false
		}
		f.picOff = i
		if p[i]&0x80 != 0 {
			f.wide = true
			i += 2
		} else {
			i++
		}
	}
	if x&0x40 != 0 { // L: TL0PICIDX
		if len(p) <= i {
			return f, false
		}
		f.tl0Off = i
		i++
	}
	return f, len(p) >= i
}

func (f vp8Fields) pictureID(p []byte) uint16 {
	if f.wide {
		return binary.BigEndian.Uint16(p[f.picOff:]) & 0x7fff
	}
	return uint16(p[f.picOff] & 0x7f)
}

func (f vp8Fields) setPictureID(p []byte, id uint16) {
	if f.wide {
		binary.BigEndian.PutUint16(p[f.picOff:], 0x8000|id&0x7fff)
	} else {
		p[f.picOff] = byte(id & 0x7f)
	}
}

// vp8Continuity keeps one down track's PictureID and TL0PICIDX continuous
// across source switches. The forwarder owns all but shifts, which the
// retransmitter reads to rewrite a resent packet exactly as it was first
// sent.
type vp8Continuity struct {
	epoch   uint8 // the offset epoch picOff/tl0Off belong to
	set     bool
	picOff  uint16
	tl0Off  uint8
	lastPic uint16
	lastTL0 uint8
	havePic bool
	haveTL0 bool
	shifts  [256]atomic.Uint32 // per epoch: picOff<<8 | tl0Off
}

// rebase starts a new epoch at the first packet of a new source (a key
// frame): its PictureID follows the last one sent, and so does TL0PICIDX.
func (v *vp8Continuity) rebase(epoch uint8, payload []byte) {
	if v.set && v.epoch == epoch {
		return
	}
	v.epoch, v.set = epoch, true
	v.picOff, v.tl0Off = 0, 0
	if f, ok := parseVP8Descriptor(payload); ok {
		if f.picOff != 0 && v.havePic {
			v.picOff = v.lastPic + 1 - f.pictureID(payload)
		}
		if f.tl0Off != 0 && v.haveTL0 {
			v.tl0Off = v.lastTL0 + 1 - payload[f.tl0Off]
		}
	}
	v.shifts[epoch].Store(uint32(v.picOff)<<8 | uint32(v.tl0Off))
}

// apply rewrites an outgoing packet's descriptor (the forwarder's copy)
// with the current epoch's offsets and remembers the values sent.
func (v *vp8Continuity) apply(desc []byte) {
	f, ok := parseVP8Descriptor(desc)
	if !ok {
		return
	}
	if f.picOff != 0 {
		f.setPictureID(desc, f.pictureID(desc)+v.picOff)
		v.lastPic, v.havePic = f.pictureID(desc), true
	}
	if f.tl0Off != 0 {
		desc[f.tl0Off] += v.tl0Off
		v.lastTL0, v.haveTL0 = desc[f.tl0Off], true
	}
}

// applyEpoch rewrites a retransmitted packet's descriptor with the offsets
// of the epoch it was first sent in.
func (v *vp8Continuity) applyEpoch(epoch uint8, desc []byte) {
	f, ok := parseVP8Descriptor(desc)
	if !ok {
		return
	}
	w := v.shifts[epoch].Load()
	if f.picOff != 0 {
		f.setPictureID(desc, f.pictureID(desc)+uint16(w>>8))
	}
	if f.tl0Off != 0 {
		desc[f.tl0Off] += uint8(w)
	}
}
