package e2ee

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"encoding/binary"
	"strconv"
	"sync"
)

// HKDF labels of RFC 9605 §4.4.2.
const (
	labelKey  = "SFrame 1.0 Secret key "
	labelSalt = "SFrame 1.0 Secret salt "
)

// kdfLabel returns label || KID (8-byte big-endian, not the compact header
// form) || cipher_suite (2-byte big-endian), as RFC 9605 §4.4.2 specifies.
func kdfLabel(label string, kid uint64, suite CipherSuite) []byte {
	b := make([]byte, 0, len(label)+8+2)
	b = append(b, label...)
	b = binary.BigEndian.AppendUint64(b, kid)
	return binary.BigEndian.AppendUint16(b, uint16(suite))
}

// sframeSecret is HKDF-Extract("", base_key) with the suite's hash.
func sframeSecret(p suiteParams, baseKey []byte) ([]byte, error) {
	return hkdf.Extract(p.hash, baseKey, nil)
}

// DeriveKeySalt implements derive_key_salt of RFC 9605 §4.4.2:
//
//	sframe_secret = HKDF-Extract("", base_key)
//	sframe_key  = HKDF-Expand(sframe_secret, "SFrame 1.0 Secret key "  + KID + cipher_suite, AEAD.Nk)
//	sframe_salt = HKDF-Expand(sframe_secret, "SFrame 1.0 Secret salt " + KID + cipher_suite, AEAD.Nn)
func DeriveKeySalt(suite CipherSuite, kid uint64, baseKey []byte) (key, salt []byte, err error) {
	p, ok := suite.params()
	if !ok {
		return nil, nil, ErrUnsupportedSuite
	}
	if len(baseKey) == 0 {
		return nil, nil, ErrEmptyKey
	}
	secret, err := sframeSecret(p, baseKey)
	if err != nil {
		return nil, nil, err
	}
	if key, err = hkdf.Expand(p.hash, secret, string(kdfLabel(labelKey, kid, suite)), p.nk); err != nil {
		return nil, nil, err
	}
	if salt, err = hkdf.Expand(p.hash, secret, string(kdfLabel(labelSalt, kid, suite)), NonceSize); err != nil {
		return nil, nil, err
	}
	return key, salt, nil
}

// newAEAD builds the suite's AEAD for an Nk-byte sframe_key (RFC 9605 §4.5).
func newAEAD(p suiteParams, key []byte) (cipher.AEAD, error) {
	if !p.gcm {
		return newCTRHMAC(p, key)
	}
	if len(key) != p.nk {
		return nil, Error("e2ee: GCM key must be " + itoa(p.nk) + " bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithTagSize(block, p.nt)
}

// keyState is everything a Context keeps for one KID: the AEAD (built once,
// so per-frame work allocates nothing), the salt, and for a send key the next
// CTR (RFC 9605 §4.4.1). The mutex guards the counter and the scratch
// buffers, which keep Protect and Unprotect allocation-free.
type keyState struct {
	send bool
	aead cipher.AEAD
	salt [NonceSize]byte

	mu        sync.Mutex
	next      uint64 // next CTR to use (send keys)
	exhausted bool   // CTR 2^64-1 has been used; never wrap
	nonce     [NonceSize]byte
	aad       []byte // header || metadata
}

func newKeyState(suite CipherSuite, kid uint64, baseKey []byte, send bool) (*keyState, error) {
	p, ok := suite.params()
	if !ok {
		return nil, ErrUnsupportedSuite
	}
	key, salt, err := DeriveKeySalt(suite, kid, baseKey)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(p, key)
	clear(key)
	if err != nil {
		return nil, err
	}
	k := &keyState{send: send, aead: aead}
	copy(k.salt[:], salt)
	return k, nil
}

// makeNonce returns sframe_salt XOR encode_big_endian(CTR, AEAD.Nn)
// (RFC 9605 §4.4.3). The caller holds k.mu; the result aliases k.nonce.
func (k *keyState) makeNonce(ctr uint64) []byte {
	k.nonce = k.salt
	tail := k.nonce[NonceSize-8:]
	binary.BigEndian.PutUint64(tail, binary.BigEndian.Uint64(tail)^ctr)
	return k.nonce[:]
}

// makeAAD returns header || metadata (RFC 9605 §4.4.3) in a reused buffer.
// The caller holds k.mu.
func (k *keyState) makeAAD(header, metadata []byte) []byte {
	k.aad = append(append(k.aad[:0], header...), metadata...)
	return k.aad
}

func itoa(n int) string { return strconv.Itoa(n) }
