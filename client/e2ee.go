package client

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orville/orville/e2ee"
	"go.uber.org/zap"
)

// Orville's E2EE key schedule, shared by this Go client and the web client
// (web/sframe.js implements the same, byte for byte):
//
//   - Every sender chooses a key generation of E2EEGenerationBits random bits
//     when it joins and again whenever a participant leaves.
//   - KIDs follow RFC 9605 §5.1 with R = E2EERatchetBits:
//     KID = generation << 8 | ratchet step. A sender ratchets (§5.1,
//     base_key[i+1] = HKDF-Expand(HKDF-Extract("", base_key[i]),
//     "SFrame 1.0 Ratchet", Nh)) when a participant joins; after 255 steps it
//     starts a new generation instead, so the step always fits in the KID and a
//     receiver that first sees a sender mid-call can still derive its key.
//   - The base key of step 0 of a generation comes from the call secret:
//     base_key = HKDF-SHA256(salt = "", IKM = secret,
//     info = "orville sender key" || KID(generation, 0) as 8 bytes big-endian,
//     L = Nh) (HKDF-SHA512 for the SHA-512 suite).
//   - Receivers learn a sender's KID from the SFrame header itself: a KID of a
//     new generation is derived from the secret and ratcheted to its step; a
//     later step of a known generation is ratcheted from the last verified
//     step. A derived key is kept only once a frame authenticated under it.
//   - Senders make a key frame after every key switch.
//
// The secret comes from the messaging platform's end-to-end channel (the
// demo web client reads it from the URL fragment); the server never sees it.
// With one shared secret the ratchet and new generations separate key
// epochs and senders; they cannot lock out someone who still holds the
// secret, which is what a platform-distributed new secret (Rekey) is for.
const (
	// E2EERatchetBits is R of RFC 9605 §5.1: the low KID bits carry the
	// ratchet step.
	E2EERatchetBits = 8
	// E2EEGenerationBits random bits name a sender's key generation: 48 bits
	// make two senders deriving the same key (and so reusing nonces) as
	// unlikely as 2^-48 per pair and rekey.
	E2EEGenerationBits = 48
	// E2EESenderKeyLabel is the HKDF info prefix of a sender's base key.
	E2EESenderKeyLabel = "orville sender key"

	e2eeMaxStep = 1<<E2EERatchetBits - 1
	// e2eeMaxAhead bounds how many ratchet steps a known sender may skip
	// (joins whose frames we missed) and so the work a forged KID can cause.
	e2eeMaxAhead = 16
	// e2eeKeepSteps: steps kept per generation, so frames sent just before a
	// ratchet still decrypt when they arrive just after one.
	e2eeKeepSteps = 2
	// e2eeMaxGenerations bounds the receive keys: 50 senders times a few
	// leaves. Beyond it (or after e2eeIdle without a frame) a generation is
	// forgotten; it is derived again from the secret if it comes back.
	e2eeMaxGenerations = 256
	e2eeIdle           = 30 * time.Second
	// e2eeMinSecret is the shortest call secret accepted (128 bits as bytes).
	e2eeMinSecret = 16
)

// E2EEConfig configures an E2EE transform.
type E2EEConfig struct {
	// Secret is the call secret every participant shares (at least 16 bytes;
	// the web client uses the UTF-8 bytes of the #key= fragment).
	Secret []byte
	// Suite is the SFrame cipher suite (default e2ee.DefaultSuite).
	Suite e2ee.CipherSuite
	// OnVideoKeyFrame, if set, receives a copy of every decrypted VP8 key
	// frame (tests decode it to check interoperability).
	OnVideoKeyFrame func(frame []byte)
	// Logger (nil: no logs).
	Logger *zap.Logger
}

func (c *E2EEConfig) validate() error {
	if len(c.Secret) < e2eeMinSecret {
		return fmt.Errorf("client: E2EE secret of %d bytes, need at least %d", len(c.Secret), e2eeMinSecret)
	}
	if c.Suite == 0 {
		c.Suite = e2ee.DefaultSuite
	}
	if !c.Suite.Supported() {
		return fmt.Errorf("client: E2EE: %v", c.Suite)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// E2EEStats counts what an E2EE transform did.
type E2EEStats struct {
	SendKID          uint64 // the KID frames are encrypted under now
	KeySwitches      uint64 // ratchets and new generations since the start
	FramesEncrypted  uint64
	FramesDecrypted  uint64
	DecryptFailures  uint64 // frames dropped: no key, failed authentication, malformed
	KnownGenerations int    // receive generations held
}

// E2EE is a FrameTransform that encrypts and decrypts frames with RFC 9605
// SFrame under Orville's key schedule (see E2EERatchetBits). Give each Client
// its own. It ratchets its send key when a participant joins, starts a new
// generation when one leaves, and asks the client for a key frame after each
// switch. Safe for concurrent use.
type E2EE struct {
	cfg    E2EEConfig
	scheme e2ee.KIDScheme
	send   *e2ee.Context
	recv   *e2ee.Context
	log    *zap.Logger

	sendKID atomic.Uint64
	encrypted, decrypted, failed,
	switches atomic.Uint64

	mu       sync.Mutex // send key state; receive generations
	sendKey  e2ee.SenderKey
	prevSend uint64 // the previous send KID, removed at the next switch
	secret   []byte
	gens     map[uint64]*recvGeneration
}

// recvGeneration is what a receiver holds for one sender generation.
type recvGeneration struct {
	latest   e2ee.SenderKey // the newest verified step
	kids     []uint64       // installed in recv, oldest first
	lastUsed atomic.Int64   // unix nanoseconds of the last frame decrypted
}

// NewE2EE returns a transform with a fresh random send generation.
func NewE2EE(cfg E2EEConfig) (*E2EE, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	send, err := e2ee.NewContext(cfg.Suite)
	if err != nil {
		return nil, err
	}
	recv, err := e2ee.NewContext(cfg.Suite)
	if err != nil {
		return nil, err
	}
	e := &E2EE{cfg: cfg, scheme: e2ee.KIDScheme{R: E2EERatchetBits}, send: send, recv: recv,
		log: cfg.Logger.Named("e2ee"), secret: slices.Clone(cfg.Secret), gens: map[uint64]*recvGeneration{}}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.newGenerationLocked(); err != nil {
		return nil, err
	}
	e.switches.Store(0)
	return e, nil
}

// E2EESenderBaseKey returns the base key of step 0 of generation gen under
// secret (the schedule above). Exported so tests can check that Go and the
// web client agree.
func E2EESenderBaseKey(suite e2ee.CipherSuite, secret []byte, gen uint64) ([]byte, error) {
	kid, err := e2ee.KIDScheme{R: E2EERatchetBits}.KID(gen, 0)
	if err != nil {
		return nil, err
	}
	var h func() hash.Hash = sha256.New
	if suite.HashSize() == sha512.Size {
		h = sha512.New
	}
	info := binary.BigEndian.AppendUint64([]byte(E2EESenderKeyLabel), kid)
	return hkdf.Key(h, secret, nil, string(info), suite.HashSize())
}

func (e *E2EE) rootKey(gen uint64) (e2ee.SenderKey, error) {
	base, err := E2EESenderBaseKey(e.cfg.Suite, e.secret, gen)
	if err != nil {
		return e2ee.SenderKey{}, err
	}
	return e2ee.SenderKey{Suite: e.cfg.Suite, Scheme: e.scheme, Generation: gen, BaseKey: base}, nil
}

// newGenerationLocked switches the send key to step 0 of a new random
// generation.
func (e *E2EE) newGenerationLocked() error {
	var b [8]byte
	var gen uint64
	for gen == 0 || gen == e.sendKey.Generation {
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		gen = binary.BigEndian.Uint64(b[:]) >> (64 - E2EEGenerationBits)
	}
	k, err := e.rootKey(gen)
	if err != nil {
		return err
	}
	return e.installSendLocked(k)
}

// installSendLocked makes k the send key. The previous key stays installed
// until the next switch, for a frame being encrypted concurrently.
func (e *E2EE) installSendLocked(k e2ee.SenderKey) error {
	kid, err := k.KID()
	if err != nil {
		return err
	}
	if err := e.send.AddSendKey(kid, k.BaseKey); err != nil {
		return err
	}
	old := e.sendKID.Swap(kid)
	if e.prevSend != 0 {
		e.send.RemoveKey(e.prevSend)
	}
	e.prevSend, e.sendKey = old, k
	e.switches.Add(1)
	return nil
}

// Ratchet moves the send key one step forward (RFC 9605 §5.1), as on a
// join; after the last step of a generation it starts a new generation.
func (e *E2EE) Ratchet() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sendKey.Step >= e2eeMaxStep {
		return e.newGenerationLocked()
	}
	k, err := e.sendKey.Next()
	if err != nil {
		return err
	}
	return e.installSendLocked(k)
}

// NewGeneration switches the send key to a new random generation, as on a
// leave.
func (e *E2EE) NewGeneration() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.newGenerationLocked()
}

// Rekey replaces the call secret (a new one distributed by the messaging
// platform, e.g. after someone was removed): the send key moves to a new
// generation of the new secret and every receive key of the old one is
// dropped.
func (e *E2EE) Rekey(secret []byte) error {
	if len(secret) < e2eeMinSecret {
		return fmt.Errorf("client: E2EE secret of %d bytes, need at least %d", len(secret), e2eeMinSecret)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.secret)
	e.secret = slices.Clone(secret)
	for gen, g := range e.gens {
		e.dropLocked(gen, g)
	}
	return e.newGenerationLocked()
}

// Stats returns the transform's counters.
func (e *E2EE) Stats() E2EEStats {
	e.mu.Lock()
	n := len(e.gens)
	e.mu.Unlock()
	return E2EEStats{SendKID: e.sendKID.Load(), KeySwitches: e.switches.Load(),
		FramesEncrypted: e.encrypted.Load(), FramesDecrypted: e.decrypted.Load(),
		DecryptFailures: e.failed.Load(), KnownGenerations: n}
}

func codecOfKind(kind string) e2ee.Codec {
	switch kind {
	case KindAudio:
		return e2ee.CodecOpus
	case KindVideo:
		return e2ee.CodecVP8
	}
	return e2ee.CodecOther
}

// Encrypt implements FrameTransform: [clear prefix][SFrame header][ct+tag].
// A frame that cannot be encrypted is dropped (nil), never sent in clear.
func (e *E2EE) Encrypt(kind string, frame []byte) []byte {
	out, err := e2ee.EncryptFrame(e.send, e.sendKID.Load(), codecOfKind(kind), frame,
		make([]byte, 0, len(frame)+e.cfg.Suite.MaxOverhead()))
	if err != nil {
		e.log.Debug("encrypt", zap.String("kind", kind), zap.Error(err))
		return nil
	}
	e.encrypted.Add(1)
	return out
}

// Decrypt implements FrameTransform. A frame that does not authenticate under
// a key of the schedule is an error (the client drops and counts it).
func (e *E2EE) Decrypt(kind string, frame []byte) ([]byte, error) {
	codec := codecOfKind(kind)
	out, err := e2ee.DecryptFrame(e.recv, codec, frame, nil)
	if err != nil {
		for _, kid := range e.headerKIDs(codec, frame) {
			if e.recv.HasKey(kid) {
				continue
			}
			if out, err = e.learnAndDecrypt(kid, codec, frame); err == nil {
				break
			}
		}
	}
	if err != nil {
		e.failed.Add(1)
		return nil, err
	}
	e.decrypted.Add(1)
	e.markUsed(codec, frame)
	if codec == e2ee.CodecVP8 && isVP8KeyFrame(out) && e.cfg.OnVideoKeyFrame != nil {
		e.cfg.OnVideoKeyFrame(slices.Clone(out))
	}
	return out, nil
}

// headerKIDs lists the KIDs of the SFrame headers a protected frame may
// carry, where e2ee.DecryptFrame looks for them: after the codec's clear
// prefix, or after a shorter prefix for a frame that was shorter than its
// prefix (then the header and one tag end the frame exactly).
func (e *E2EE) headerKIDs(codec e2ee.Codec, frame []byte) []uint64 {
	var kids []uint64
	p := e2ee.ClearPrefixLen(codec, frame)
	if h, _, err := e2ee.ParseHeader(frame[p:]); err == nil {
		kids = append(kids, h.KID)
	}
	for q := p - 1; q >= 0; q-- {
		if h, n, err := e2ee.ParseHeader(frame[q:]); err == nil && q+n+e.cfg.Suite.TagSize() == len(frame) {
			kids = append(kids, h.KID)
		}
	}
	return kids
}

// learnAndDecrypt derives the key for kid, decrypts frame with it and keeps
// the key only if the frame authenticates: a forged KID leaves no trace.
// It runs only when a sender switches keys, so it may hold the lock.
func (e *E2EE) learnAndDecrypt(kid uint64, codec e2ee.Codec, frame []byte) ([]byte, error) {
	gen, _, err := e.scheme.Split(kid)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.recv.HasKey(kid) { // another track learnt it meanwhile
		return e2ee.DecryptFrame(e.recv, codec, frame, nil)
	}
	e.expireLocked()
	g := e.gens[gen]
	var k e2ee.SenderKey
	if g != nil {
		k, err = g.latest.Advance(kid, e2eeMaxAhead)
	} else if len(e.gens) >= e2eeMaxGenerations {
		return nil, fmt.Errorf("client: E2EE: %d sender generations held: %w", len(e.gens), e2ee.ErrUnknownKey)
	} else if k, err = e.rootKey(gen); err == nil {
		k, err = k.Advance(kid, e2eeMaxStep)
	}
	if err != nil {
		return nil, err
	}
	if err := e.recv.AddRecvKey(kid, k.BaseKey); err != nil {
		return nil, err
	}
	out, err := e2ee.DecryptFrame(e.recv, codec, frame, nil)
	if err != nil {
		e.recv.RemoveKey(kid)
		return nil, err
	}
	if g == nil {
		g = &recvGeneration{}
		e.gens[gen] = g
	}
	g.latest = k
	g.kids = append(g.kids, kid)
	for len(g.kids) > e2eeKeepSteps {
		e.recv.RemoveKey(g.kids[0])
		g.kids = g.kids[1:]
	}
	g.lastUsed.Store(time.Now().UnixNano())
	return out, nil
}

// markUsed notes that the frame's generation is alive.
func (e *E2EE) markUsed(codec e2ee.Codec, frame []byte) {
	h, _, err := e2ee.ParseHeader(frame[e2ee.ClearPrefixLen(codec, frame):])
	if err != nil {
		return // a frame shorter than its prefix: rare, and harmless to skip
	}
	e.mu.Lock()
	g := e.gens[h.KID>>E2EERatchetBits]
	e.mu.Unlock()
	if g != nil {
		g.lastUsed.Store(time.Now().UnixNano())
	}
}

// expireLocked forgets generations without a frame for e2eeIdle: senders
// that left or moved on (forward secrecy for the keys of past epochs).
func (e *E2EE) expireLocked() {
	cutoff := time.Now().Add(-e2eeIdle).UnixNano()
	for gen, g := range e.gens {
		if g.lastUsed.Load() < cutoff {
			e.dropLocked(gen, g)
		}
	}
}

func (e *E2EE) dropLocked(gen uint64, g *recvGeneration) {
	for _, kid := range g.kids {
		e.recv.RemoveKey(kid)
	}
	delete(e.gens, gen)
}

// rosterObserver is implemented by a FrameTransform that changes keys when
// the call's membership changes.
type rosterObserver interface {
	rosterChanged(c *Client, joined bool)
}

// notifyRoster tells the transform about a join or leave of someone else.
func (c *Client) notifyRoster(m *message) {
	ro, ok := c.cfg.Transform.(rosterObserver)
	if !ok {
		return
	}
	switch {
	case m.Type == "participantJoined" && m.Participant != nil && m.Participant.ID != c.participantID:
		ro.rosterChanged(c, true)
	case m.Type == "participantLeft" && m.ParticipantID != c.participantID:
		ro.rosterChanged(c, false)
	}
}

// rosterChanged ratchets on a join and starts a new generation on a leave
// (DESIGN.md "End-to-end encryption"), then asks for a key frame so that
// receivers decode from a frame of the new key on.
func (e *E2EE) rosterChanged(c *Client, joined bool) {
	var err error
	if joined {
		err = e.Ratchet()
	} else {
		err = e.NewGeneration()
	}
	if err != nil {
		e.log.Warn("key switch failed", zap.Bool("join", joined), zap.Error(err))
		return
	}
	c.SendKeyFrame()
}
