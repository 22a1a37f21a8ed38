package e2ee

import "strconv"

// Error is the type of the sentinel errors of this package. Being a string
// type, the sentinels are constants and cannot be reassigned.
type Error string

func (e Error) Error() string { return string(e) }

// Sentinel errors. Errors returned by this package wrap or equal one of these,
// so callers can test them with errors.Is.
const (
	// ErrShortHeader: the input ends inside the SFrame header (RFC 9605 §4.3).
	ErrShortHeader = Error("e2ee: truncated SFrame header")
	// ErrNonMinimalHeader: a KID or CTR is not encoded in the minimum number
	// of bytes, which RFC 9605 §4.3 requires.
	ErrNonMinimalHeader = Error("e2ee: non-minimal SFrame header encoding")
	// ErrUnsupportedSuite: the cipher suite is not one of RFC 9605 §4.5.
	ErrUnsupportedSuite = Error("e2ee: unsupported SFrame cipher suite")
	// ErrEmptyKey: a base key or AEAD key of length zero was supplied.
	ErrEmptyKey = Error("e2ee: empty key")
	// ErrKeyExists: a key is already installed for this KID.
	ErrKeyExists = Error("e2ee: a key is already installed for this KID")
	// ErrUnknownKey: no key is installed for the KID; see UnknownKeyError.
	ErrUnknownKey = Error("e2ee: no key for KID")
	// ErrNotSendKey: Protect was called with the KID of a receive-only key.
	ErrNotSendKey = Error("e2ee: key is not a send key")
	// ErrNotRecvKey: a frame names the KID of a send-only key (RFC 9605
	// §4.4.1: a base key is usable for encryption or decryption, never both).
	ErrNotRecvKey = Error("e2ee: key is not a receive key")
	// ErrCounterExhausted: the key has used every CTR value; it must be
	// replaced (CTR never wraps, RFC 9605 §4.3 and §7.4).
	ErrCounterExhausted = Error("e2ee: SFrame counter exhausted for this key")
	// ErrAuth: the ciphertext failed authentication.
	ErrAuth = Error("e2ee: SFrame authentication failed")
	// ErrShortCiphertext: the ciphertext is shorter than the suite's tag.
	ErrShortCiphertext = Error("e2ee: ciphertext shorter than the authentication tag")
	// ErrOverlap: dst overlaps an input in a way that cannot work in place.
	ErrOverlap = Error("e2ee: dst overlaps an input buffer")
	// ErrBadKIDScheme: invalid ratchet-bits parameter R (RFC 9605 §5.1).
	ErrBadKIDScheme = Error("e2ee: invalid KID scheme (R must be 0..64)")
	// ErrKIDOverflow: a key generation does not fit in 64-R bits, or a
	// ratchet step would overflow.
	ErrKIDOverflow = Error("e2ee: KID field overflow")
	// ErrGenerationMismatch: a KID belongs to another key generation, so it
	// needs a newly distributed key rather than a ratchet (RFC 9605 §5.1).
	ErrGenerationMismatch = Error("e2ee: KID is of another key generation")
	// ErrRatchetTooFar: reaching a KID would take more ratchet steps than
	// the caller allows.
	ErrRatchetTooFar = Error("e2ee: KID is too many ratchet steps ahead")
)

// UnknownKeyError reports the KID of a frame for which no key is installed.
// RFC 9605 §4.4.4 allows buffering such frames until the key arrives; the KID
// also tells a §5.1 receiver whether to ratchet. It matches ErrUnknownKey
// under errors.Is.
type UnknownKeyError struct {
	KID uint64
}

func (e UnknownKeyError) Error() string {
	return string(ErrUnknownKey) + " " + strconv.FormatUint(e.KID, 10)
}

// Is makes errors.Is(err, ErrUnknownKey) true.
func (e UnknownKeyError) Is(target error) bool { return target == ErrUnknownKey }
