package e2ee

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"sync"
)

// ctrHMAC is the synthetic AEAD of RFC 9605 §4.5.1 ("AES-CTR with SHA2"):
// AES-CTR encryption followed by a truncated HMAC over the lengths, nonce,
// AAD and ciphertext (encrypt-then-MAC, as in SRTP). It implements
// cipher.AEAD and is safe for concurrent use; a mutex guards the reusable
// HMAC state and scratch buffers so that sealing allocates only the CTR
// stream.
type ctrHMAC struct {
	nt    int
	block cipher.Block

	mu   sync.Mutex
	mac  hash.Hash
	iv   [aes.BlockSize]byte
	lens [24]byte
	sum  [sha512.Size]byte
}

// newCTRHMAC splits the Nk-byte sframe_key into enc_key (the first Nka
// bytes) and auth_key (the remaining Nh bytes) as derive_subkeys does in
// RFC 9605 §4.5.1.
func newCTRHMAC(p suiteParams, key []byte) (*ctrHMAC, error) {
	if len(key) != p.nk || p.nka+p.nh != p.nk {
		return nil, Error("e2ee: CTR+HMAC key must be " + itoa(p.nk) + " bytes")
	}
	block, err := aes.NewCipher(key[:p.nka])
	if err != nil {
		return nil, err
	}
	return &ctrHMAC{nt: p.nt, block: block, mac: hmac.New(p.hash, key[p.nka:])}, nil
}

func (c *ctrHMAC) NonceSize() int { return NonceSize }
func (c *ctrHMAC) Overhead() int  { return c.nt }

// tag computes compute_tag of RFC 9605 §4.5.1:
//
//	auth_data = len(aad) || len(ct) || Nt || nonce || aad || ct  (lengths as 8-byte big-endian)
//	tag = truncate(HMAC(auth_key, auth_data), Nt)
//
// The caller holds c.mu; the result aliases c.sum.
func (c *ctrHMAC) tag(nonce, aad, ct []byte) []byte {
	binary.BigEndian.PutUint64(c.lens[0:], uint64(len(aad)))
	binary.BigEndian.PutUint64(c.lens[8:], uint64(len(ct)))
	binary.BigEndian.PutUint64(c.lens[16:], uint64(c.nt))
	c.mac.Reset()
	c.mac.Write(c.lens[:])
	c.mac.Write(nonce)
	c.mac.Write(aad)
	c.mac.Write(ct)
	return c.mac.Sum(c.sum[:0])[:c.nt]
}

// xorCTR applies AES-CTR with initial counter block nonce || 0x00000000
// (RFC 9605 §4.5.1). The caller holds c.mu.
func (c *ctrHMAC) xorCTR(dst, src, nonce []byte) {
	copy(c.iv[:], nonce)
	clear(c.iv[NonceSize:])
	cipher.NewCTR(c.block, c.iv[:]).XORKeyStream(dst, src)
}

// Seal implements AEAD.Encrypt of RFC 9605 §4.5.1: ct || tag.
func (c *ctrHMAC) Seal(dst, nonce, plaintext, aad []byte) []byte {
	if len(nonce) != NonceSize {
		panic("e2ee: bad nonce length")
	}
	ret, out := sliceForAppend(dst, len(plaintext)+c.nt)
	ct := out[:len(plaintext)]
	c.mu.Lock()
	defer c.mu.Unlock()
	c.xorCTR(ct, plaintext, nonce)
	copy(out[len(plaintext):], c.tag(nonce, aad, ct))
	return ret
}

// Open implements AEAD.Decrypt of RFC 9605 §4.5.1: the tag is checked in
// constant time before anything is decrypted.
func (c *ctrHMAC) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		return nil, ErrAuth
	}
	if len(ciphertext) < c.nt {
		return nil, ErrShortCiphertext
	}
	inner, tag := ciphertext[:len(ciphertext)-c.nt], ciphertext[len(ciphertext)-c.nt:]
	c.mu.Lock()
	defer c.mu.Unlock()
	if !hmac.Equal(tag, c.tag(nonce, aad, inner)) {
		return nil, ErrAuth
	}
	ret, out := sliceForAppend(dst, len(inner))
	c.xorCTR(out, inner, nonce)
	return ret, nil
}

// sliceForAppend extends in by n bytes, reusing its capacity when possible,
// and returns the whole slice and the n new bytes (as crypto/cipher does).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}
