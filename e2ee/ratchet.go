package e2ee

import "crypto/hkdf"

// labelRatchet is the HKDF-Expand label of the sender-key ratchet
// (RFC 9605 §5.1).
const labelRatchet = "SFrame 1.0 Ratchet"

// Ratchet derives the next base key of a sender (RFC 9605 §5.1):
//
//	base_key[i+1] = HKDF-Expand(HKDF-Extract("", base_key[i]), "SFrame 1.0 Ratchet", CipherSuite.Nh)
//
// The result is Nh bytes long (32, or 64 for AES_256_GCM_SHA512_128).
func Ratchet(suite CipherSuite, baseKey []byte) ([]byte, error) {
	p, ok := suite.params()
	if !ok {
		return nil, ErrUnsupportedSuite
	}
	if len(baseKey) == 0 {
		return nil, ErrEmptyKey
	}
	prk, err := hkdf.Extract(p.hash, baseKey, nil)
	if err != nil {
		return nil, err
	}
	return hkdf.Expand(p.hash, prk, labelRatchet, p.nh)
}

// KIDScheme is the KID layout of the sender-keys scheme (RFC 9605 §5.1,
// Figure 7): the low R bits carry the ratchet step modulo 2^R and the
// remaining 64-R bits the key generation:
//
//	KID = (key_generation << R) + (ratchet_step % (1 << R))
//
// R is chosen by the application (0..64) and must be known to every
// receiver of the sender; 2^R bounds the ratchet reordering window.
type KIDScheme struct {
	R uint
}

// Valid reports whether 0 <= R <= 64.
func (s KIDScheme) Valid() bool { return s.R <= 64 }

// KID returns (generation << R) + (step mod 2^R). It fails with
// ErrKIDOverflow if generation does not fit in 64-R bits.
func (s KIDScheme) KID(generation, step uint64) (uint64, error) {
	if !s.Valid() {
		return 0, ErrBadKIDScheme
	}
	if s.R == 64 {
		if generation != 0 {
			return 0, ErrKIDOverflow
		}
		return step, nil
	}
	if s.R > 0 && generation>>(64-s.R) != 0 {
		return 0, ErrKIDOverflow
	}
	return generation<<s.R | step&s.stepMask(), nil
}

// Split returns the key generation and the low R bits of the ratchet step
// carried by kid.
func (s KIDScheme) Split(kid uint64) (generation, stepLow uint64, err error) {
	if !s.Valid() {
		return 0, 0, ErrBadKIDScheme
	}
	if s.R == 64 {
		return 0, kid, nil
	}
	return kid >> s.R, kid & s.stepMask(), nil
}

// stepMask is 2^R - 1 (all ones for R = 64).
func (s KIDScheme) stepMask() uint64 {
	if s.R >= 64 {
		return ^uint64(0)
	}
	return 1<<s.R - 1
}

// SenderKey is one sender's base key at a given key generation and ratchet
// step (RFC 9605 §5.1). It is a value: Next and Advance return new values
// and leave the receiver unchanged.
//
// A sender starts at Step 0 of a fresh base key with a new Generation, calls
// Next to ratchet (for example when a participant joins), and installs
// BaseKey under KID() in its Context. A receiver keeps the last SenderKey it
// knows for each sender and, on an UnknownKeyError, calls Advance with the
// frame's KID to derive the key to install.
type SenderKey struct {
	Suite      CipherSuite
	Scheme     KIDScheme
	Generation uint64
	Step       uint64 // full ratchet step; only Step mod 2^R is sent
	BaseKey    []byte
}

// KID returns the KID this key is used under.
func (k SenderKey) KID() (uint64, error) {
	return k.Scheme.KID(k.Generation, k.Step)
}

// Next ratchets the key one step forward.
func (k SenderKey) Next() (SenderKey, error) {
	if k.Step == ^uint64(0) {
		return SenderKey{}, ErrKIDOverflow
	}
	next, err := Ratchet(k.Suite, k.BaseKey)
	if err != nil {
		return SenderKey{}, err
	}
	k.Step++
	k.BaseKey = next
	return k, nil
}

// Advance returns the key for kid, which must be of the same generation
// (else ErrGenerationMismatch: the sender has distributed a new key) and at
// most maxSteps ratchet steps ahead of k modulo 2^R (else ErrRatchetTooFar,
// which also bounds the work an attacker-chosen KID can cause). A KID equal
// to k's own returns k. Steps behind k cannot be recovered: the ratchet is
// one-way, which is what gives it forward secrecy.
func (k SenderKey) Advance(kid uint64, maxSteps uint64) (SenderKey, error) {
	gen, low, err := k.Scheme.Split(kid)
	if err != nil {
		return SenderKey{}, err
	}
	if gen != k.Generation {
		return SenderKey{}, ErrGenerationMismatch
	}
	delta := (low - k.Step) & k.Scheme.stepMask()
	if delta > maxSteps {
		return SenderKey{}, ErrRatchetTooFar
	}
	for ; delta > 0; delta-- {
		if k, err = k.Next(); err != nil {
			return SenderKey{}, err
		}
	}
	return k, nil
}
