package sfu

// isVP8Keyframe reports whether an RTP payload starts a VP8 key frame. It reads
// only what VP8 leaves in the clear for the SFU: the payload descriptor
// (RFC 7741 §4.2) and the first byte of the frame tag (RFC 6386 §9.1), which the
// E2EE frame format keeps unencrypted for exactly this purpose.
func isVP8Keyframe(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	d := payload[0]
	i := 1
	if d&0x80 != 0 { // X: extension byte follows
		if len(payload) < 2 {
			return false
		}
		x := payload[1]
		i = 2
		if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(payload) <= i {
				return false
			}
			if payload[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
			i++
		}
	}
	// S must be set and PID 0: the start of the first partition.
	if d&0x10 == 0 || d&0x0f != 0 || len(payload) <= i {
		return false
	}
	return payload[i]&0x01 == 0 // frame tag P bit: 0 = key frame
}
