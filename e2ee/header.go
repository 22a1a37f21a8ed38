package e2ee

import "math/bits"

// MaxHeaderLen is the largest possible SFrame header: the config byte plus an
// 8-byte KID and an 8-byte CTR (RFC 9605 §4.3).
const MaxHeaderLen = 1 + 8 + 8

// Header is a decoded SFrame header (RFC 9605 §4.3): the key ID selecting the
// base key and the counter from which the nonce is built.
type Header struct {
	KID uint64
	CTR uint64
}

// Config-byte layout (RFC 9605 §4.3, Figure 3):
//
//	 0 1 2 3 4 5 6 7
//	+-+-+-+-+-+-+-+-+
//	|X|  K  |Y|  C  |
//	+-+-+-+-+-+-+-+-+
const (
	flagX      = 0x80 // extended KID: K holds the KID length minus one
	shiftK     = 4
	flagY      = 0x08 // extended CTR: C holds the CTR length minus one
	field3Mask = 0x07
)

// compactLen is the number of bytes a KID or CTR value occupies after the
// config byte: 0 for values 0..7 (carried in the config byte), otherwise the
// minimal big-endian length, 1..8 bytes (RFC 9605 §4.3).
func compactLen(v uint64) int {
	if v < 8 {
		return 0
	}
	return (bits.Len64(v) + 7) / 8
}

// Len returns the encoded length of h in bytes, 1..MaxHeaderLen.
func (h Header) Len() int {
	return 1 + compactLen(h.KID) + compactLen(h.CTR)
}

// AppendTo appends the minimal encoding of h (RFC 9605 §4.3) to dst and
// returns the extended slice. It does not allocate if dst has room.
func (h Header) AppendTo(dst []byte) []byte {
	kl, cl := compactLen(h.KID), compactLen(h.CTR)
	var cfg byte
	if kl == 0 {
		cfg = byte(h.KID) << shiftK
	} else {
		cfg = flagX | byte(kl-1)<<shiftK
	}
	if cl == 0 {
		cfg |= byte(h.CTR)
	} else {
		cfg |= flagY | byte(cl-1)
	}
	dst = append(dst, cfg)
	dst = appendBE(dst, h.KID, kl)
	return appendBE(dst, h.CTR, cl)
}

// Marshal returns the encoding of h in a new slice.
func (h Header) Marshal() []byte {
	return h.AppendTo(make([]byte, 0, h.Len()))
}

func appendBE(dst []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*uint(i))))
	}
	return dst
}

// ParseHeader decodes the SFrame header at the start of b and returns it with
// its encoded length n; the ciphertext is b[n:]. It rejects a header that is
// truncated (ErrShortHeader) or whose KID or CTR is not minimally encoded
// (ErrNonMinimalHeader): RFC 9605 §4.3 says values 0..7 MUST use the short
// form and longer values MUST use the minimum number of bytes, so every
// (KID, CTR) pair has exactly one valid encoding. It never panics.
func ParseHeader(b []byte) (h Header, n int, err error) {
	if len(b) == 0 {
		return Header{}, 0, ErrShortHeader
	}
	cfg := b[0]
	n = 1
	k := uint64(cfg>>shiftK) & field3Mask
	c := uint64(cfg) & field3Mask
	if cfg&flagX == 0 {
		h.KID = k
	} else {
		if h.KID, n, err = readCompact(b, n, int(k)+1); err != nil {
			return Header{}, 0, err
		}
	}
	if cfg&flagY == 0 {
		h.CTR = c
	} else {
		if h.CTR, n, err = readCompact(b, n, int(c)+1); err != nil {
			return Header{}, 0, err
		}
	}
	return h, n, nil
}

// readCompact reads an l-byte big-endian value at b[off:] and checks that l
// is the minimal length for it and that the value is not one of 0..7, which
// must be carried in the config byte.
func readCompact(b []byte, off, l int) (uint64, int, error) {
	if len(b)-off < l {
		return 0, 0, ErrShortHeader
	}
	var v uint64
	for _, x := range b[off : off+l] {
		v = v<<8 | uint64(x)
	}
	if compactLen(v) != l {
		return 0, 0, ErrNonMinimalHeader
	}
	return v, off + l, nil
}
