package e2ee

import (
	"math"
	"sync"
	"unsafe"
)

// Context is an SFrame context (RFC 9605 §4.4): a cipher suite and a store
// of base keys by KID, each marked as a send key or a receive key, never both
// (§4.4.1). A send key carries its own CTR, which starts at 0, increases by
// one per Protect and never wraps.
//
// A Context is safe for concurrent use. Protect and Unprotect do not
// allocate when dst has enough spare capacity (for the GCM suites; the
// AES-CTR suites allocate one small CTR stream per frame).
//
// Replay and duplicate detection are out of scope (RFC 9605 §7.4) and not
// done here.
type Context struct {
	suite CipherSuite
	nt    int

	mu   sync.RWMutex
	keys map[uint64]*keyState
}

// NewContext returns an empty context for suite; see DefaultSuite.
func NewContext(suite CipherSuite) (*Context, error) {
	p, ok := suite.params()
	if !ok {
		return nil, ErrUnsupportedSuite
	}
	return &Context{suite: suite, nt: p.nt, keys: make(map[uint64]*keyState)}, nil
}

// Suite returns the context's cipher suite.
func (c *Context) Suite() CipherSuite { return c.suite }

// AddSendKey installs baseKey for encryption under kid, deriving the
// per-KID key and salt (RFC 9605 §4.4.2); its counter starts at 0. It fails
// with ErrKeyExists if kid is already installed: call RemoveKey first. Never
// reinstall a base key for a KID it was already used to send with — the
// counter restarts at 0 and nonces would repeat (§4.4.1, §7.4).
func (c *Context) AddSendKey(kid uint64, baseKey []byte) error {
	return c.add(kid, baseKey, true)
}

// AddRecvKey installs baseKey for decrypting frames whose header carries kid.
func (c *Context) AddRecvKey(kid uint64, baseKey []byte) error {
	return c.add(kid, baseKey, false)
}

func (c *Context) add(kid uint64, baseKey []byte, send bool) error {
	k, err := newKeyState(c.suite, kid, baseKey, send)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.keys[kid]; dup {
		return ErrKeyExists
	}
	c.keys[kid] = k
	return nil
}

// RemoveKey forgets the key for kid and reports whether there was one.
func (c *Context) RemoveKey(kid uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.keys[kid]
	delete(c.keys, kid)
	return ok
}

// HasKey reports whether a key is installed for kid.
func (c *Context) HasKey(kid uint64) bool { return c.lookup(kid) != nil }

func (c *Context) lookup(kid uint64) *keyState {
	c.mu.RLock()
	k := c.keys[kid]
	c.mu.RUnlock()
	return k
}

// Protect encrypts plaintext with the send key kid and its next counter
// (encrypt() of RFC 9605 §4.4.3) and appends the SFrame ciphertext
// header || ciphertext || tag to dst. metadata is authenticated but not
// encrypted or included in the output: the AAD is header || metadata.
// dst's spare capacity must not overlap plaintext. Once counter 2^64-1 has
// been used, Protect fails with ErrCounterExhausted.
func (c *Context) Protect(kid uint64, metadata, plaintext, dst []byte) ([]byte, error) {
	k := c.lookup(kid)
	if k == nil {
		return nil, UnknownKeyError{KID: kid}
	}
	if !k.send {
		return nil, ErrNotSendKey
	}
	if spareOverlaps(dst, plaintext) {
		return nil, ErrOverlap
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.exhausted {
		return nil, ErrCounterExhausted
	}
	ctr := k.next
	if ctr == math.MaxUint64 {
		k.exhausted = true
	} else {
		k.next = ctr + 1
	}
	h := Header{KID: kid, CTR: ctr}
	k.aad = append(h.AppendTo(k.aad[:0]), metadata...)
	out := append(dst, k.aad[:h.Len()]...)
	return k.aead.Seal(out, k.makeNonce(ctr), plaintext, k.aad), nil
}

// Unprotect parses the SFrame header of frame, selects the receive key by
// its KID and decrypts (decrypt() of RFC 9605 §4.4.4), appending the
// plaintext to dst. metadata must equal what the sender passed to Protect.
// A frame for an unknown KID yields an UnknownKeyError (errors.Is
// ErrUnknownKey). dst's spare capacity must not overlap frame, except that
// decrypting in place with dst = frame[n:n] (n the header length) works.
// Unprotect never panics on malformed input.
func (c *Context) Unprotect(metadata, frame, dst []byte) ([]byte, error) {
	h, n, err := ParseHeader(frame)
	if err != nil {
		return nil, err
	}
	k := c.lookup(h.KID)
	if k == nil {
		return nil, UnknownKeyError{KID: h.KID}
	}
	if k.send {
		return nil, ErrNotRecvKey
	}
	ct := frame[n:]
	if len(ct) < c.nt {
		return nil, ErrShortCiphertext
	}
	if spareOverlaps(dst, ct) && !sameStart(dst[len(dst):cap(dst)], ct) {
		return nil, ErrOverlap
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	aad := k.makeAAD(frame[:n], metadata)
	out, err := k.aead.Open(dst, k.makeNonce(h.CTR), ct, aad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// setNextCounter sets the next CTR of a send key. Only tests use it, to
// reproduce the RFC 9605 Appendix C vectors.
func (c *Context) setNextCounter(kid, ctr uint64) {
	k := c.lookup(kid)
	k.mu.Lock()
	k.next, k.exhausted = ctr, false
	k.mu.Unlock()
}

// spareOverlaps reports whether the spare capacity of dst, where output is
// appended, shares memory with in.
func spareOverlaps(dst, in []byte) bool {
	return overlaps(dst[len(dst):cap(dst)], in)
}

func overlaps(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 {
		return false
	}
	x0, x1 := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&x[len(x)-1]))
	y0, y1 := uintptr(unsafe.Pointer(&y[0])), uintptr(unsafe.Pointer(&y[len(y)-1]))
	return x0 <= y1 && y0 <= x1
}

func sameStart(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
}
