package e2ee

import "strings"

// Codec selects how many leading bytes of a media frame stay in the clear.
type Codec uint8

// Codecs with a clear prefix; every other codec is CodecOther.
const (
	CodecOther Codec = iota // no clear prefix
	CodecOpus               // 1 byte: the TOC byte (RFC 6716 §3.1)
	CodecVP8                // 10 bytes for key frames, 3 for delta frames (RFC 6386 §9.1)
)

// Clear-prefix lengths (DESIGN.md "End-to-end encryption").
const (
	vp8KeyFramePrefix   = 10 // 3-byte frame tag + 7-byte key-frame start code and size
	vp8DeltaFramePrefix = 3  // frame tag
	opusPrefix          = 1  // TOC byte
)

// String returns "opus", "vp8" or "other".
func (c Codec) String() string {
	switch c {
	case CodecOpus:
		return "opus"
	case CodecVP8:
		return "vp8"
	}
	return "other"
}

// CodecFromMimeType maps a WebRTC MIME type such as "audio/opus" or
// "video/VP8" (case-insensitive) to its Codec; anything else is CodecOther.
func CodecFromMimeType(mime string) Codec {
	switch {
	case strings.EqualFold(mime, "audio/opus"):
		return CodecOpus
	case strings.EqualFold(mime, "video/vp8"):
		return CodecVP8
	}
	return CodecOther
}

// nominalPrefix is the clear prefix length for a frame of codec whose first
// byte is frame[0]. For VP8, bit 0 of the first byte is the inverse key-frame
// flag (RFC 6386 §9.1: 0 means key frame). The first byte is the same before
// and after encryption, so the receiver infers the same length.
func nominalPrefix(codec Codec, frame []byte) int {
	switch codec {
	case CodecOpus:
		return opusPrefix
	case CodecVP8:
		if len(frame) > 0 && frame[0]&0x01 != 0 {
			return vp8DeltaFramePrefix
		}
		return vp8KeyFramePrefix
	}
	return 0
}

// ClearPrefixLen returns how many leading bytes of the unencrypted frame
// EncryptFrame leaves in the clear: the codec's prefix, or the whole frame if
// it is shorter.
func ClearPrefixLen(codec Codec, frame []byte) int {
	return min(nominalPrefix(codec, frame), len(frame))
}

// EncryptFrame encrypts one encoded media frame with the send key kid and
// appends [clear prefix][SFrame header][ciphertext+tag] to dst. The clear
// prefix (see ClearPrefixLen) is passed to Protect as SFrame metadata, so it
// is authenticated but readable by the SFU and the receiver's depacketizer.
// dst's spare capacity must not overlap frame.
func EncryptFrame(ctx *Context, kid uint64, codec Codec, frame, dst []byte) ([]byte, error) {
	if spareOverlaps(dst, frame) {
		return nil, ErrOverlap
	}
	p := ClearPrefixLen(codec, frame)
	out := append(dst, frame[:p]...)
	out, err := ctx.Protect(kid, frame[:p], frame[p:], out)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DecryptFrame reverses EncryptFrame and appends the original frame to dst.
// The clear prefix length is inferred from the clear bytes (for VP8 from the
// key-frame bit of the first byte). A frame that was shorter than its
// codec's prefix was sent wholly as prefix with an empty SFrame plaintext;
// such frames are recognised by their exact length. dst's spare capacity
// must not overlap frame. DecryptFrame never panics on malformed input.
func DecryptFrame(ctx *Context, codec Codec, frame, dst []byte) ([]byte, error) {
	if spareOverlaps(dst, frame) {
		return nil, ErrOverlap
	}
	n := nominalPrefix(codec, frame)
	var firstErr error
	if len(frame) >= n {
		out, err := decryptAt(ctx, frame, n, dst)
		if err == nil {
			return out, nil
		}
		firstErr = err
	}
	nt := ctx.nt
	for p := min(n, len(frame)+1) - 1; p >= 0; p-- {
		if _, hl, err := ParseHeader(frame[p:]); err != nil || p+hl+nt != len(frame) {
			continue
		}
		out, err := decryptAt(ctx, frame, p, dst)
		if err == nil {
			return out, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = ErrShortHeader
	}
	return nil, firstErr
}

func decryptAt(ctx *Context, frame []byte, p int, dst []byte) ([]byte, error) {
	out := append(dst, frame[:p]...)
	return ctx.Unprotect(frame[:p], frame[p:], out)
}

// LooksProtected reports whether frame has the shape EncryptFrame gives a
// frame of codec under some RFC 9605 suite: the clear prefix, then a valid
// minimally encoded SFrame header, then at least the smallest tag (4 bytes);
// or, for a frame that was shorter than the prefix, a shorter prefix followed
// by a header and exactly one tag. It checks shape only, not authenticity —
// tests use it to show that what the server forwards is SFrame ciphertext.
func LooksProtected(codec Codec, frame []byte) bool {
	const minTag = 4
	n := nominalPrefix(codec, frame)
	if len(frame) >= n {
		if _, hl, err := ParseHeader(frame[n:]); err == nil && len(frame)-n-hl >= minTag {
			return true
		}
	}
	for p := min(n, len(frame)+1) - 1; p >= 0; p-- {
		if _, hl, err := ParseHeader(frame[p:]); err == nil {
			switch len(frame) - p - hl {
			case 4, 8, 10, 16: // AEAD.Nt of the RFC 9605 suites
				return true
			}
		}
	}
	return false
}
