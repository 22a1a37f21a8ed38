package e2ee

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strconv"
)

// CipherSuite is an SFrame cipher suite identifier from the IANA "SFrame
// Cipher Suites" registry (RFC 9605 §8.1). The constants follow the
// registry's names, in the style of crypto/tls.
type CipherSuite uint16

// The cipher suites defined by RFC 9605 §4.5 and registered in §8.1.
const (
	AES_128_CTR_HMAC_SHA256_80 CipherSuite = 0x0001
	AES_128_CTR_HMAC_SHA256_64 CipherSuite = 0x0002
	AES_128_CTR_HMAC_SHA256_32 CipherSuite = 0x0003
	AES_128_GCM_SHA256_128     CipherSuite = 0x0004
	AES_256_GCM_SHA512_128     CipherSuite = 0x0005

	// DefaultSuite is Orville's cipher suite (see DESIGN.md).
	DefaultSuite = AES_128_GCM_SHA256_128
)

// NonceSize is AEAD.Nn, the nonce size of every RFC 9605 suite (§4.5, Table 1).
const NonceSize = 12

// suiteParams holds the constants of RFC 9605 §4.5, Table 1.
type suiteParams struct {
	name string
	nh   int // Hash.Nh: hash output size
	nka  int // AEAD.Nka: AES key size of the CTR+HMAC construction (0 for GCM)
	nk   int // AEAD.Nk: AEAD key size
	nt   int // AEAD.Nt: tag size
	hash func() hash.Hash
	gcm  bool
}

// params returns the Table 1 constants of s; ok is false for an unknown suite.
func (s CipherSuite) params() (p suiteParams, ok bool) {
	switch s {
	case AES_128_CTR_HMAC_SHA256_80:
		return suiteParams{"AES_128_CTR_HMAC_SHA256_80", 32, 16, 48, 10, sha256.New, false}, true
	case AES_128_CTR_HMAC_SHA256_64:
		return suiteParams{"AES_128_CTR_HMAC_SHA256_64", 32, 16, 48, 8, sha256.New, false}, true
	case AES_128_CTR_HMAC_SHA256_32:
		return suiteParams{"AES_128_CTR_HMAC_SHA256_32", 32, 16, 48, 4, sha256.New, false}, true
	case AES_128_GCM_SHA256_128:
		return suiteParams{"AES_128_GCM_SHA256_128", 32, 0, 16, 16, sha256.New, true}, true
	case AES_256_GCM_SHA512_128:
		return suiteParams{"AES_256_GCM_SHA512_128", 64, 0, 32, 16, sha512.New, true}, true
	}
	return suiteParams{}, false
}

// Supported reports whether s is one of the five suites of RFC 9605 §4.5.
func (s CipherSuite) Supported() bool {
	_, ok := s.params()
	return ok
}

// String returns the registry name, or "CipherSuite(0x....)" if unknown.
func (s CipherSuite) String() string {
	if p, ok := s.params(); ok {
		return p.name
	}
	return "CipherSuite(0x" + strconv.FormatUint(uint64(s)|0x10000, 16)[1:] + ")"
}

// KeySize returns AEAD.Nk, the size of sframe_key, or 0 if unsupported.
func (s CipherSuite) KeySize() int { p, _ := s.params(); return p.nk }

// TagSize returns AEAD.Nt, the per-frame authentication overhead, or 0.
func (s CipherSuite) TagSize() int { p, _ := s.params(); return p.nt }

// HashSize returns Hash.Nh, also the size of a ratcheted base key (§5.1).
func (s CipherSuite) HashSize() int { p, _ := s.params(); return p.nh }

// MaxOverhead is the most bytes Protect adds to a plaintext under s: the
// largest header plus the tag.
func (s CipherSuite) MaxOverhead() int { return MaxHeaderLen + s.TagSize() }
