package sfu

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orville/orville/internal/pionlog"
	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/srtp/v3"
	"go.uber.org/zap"
)

// transport is one ICE + DTLS-SRTP connection to one client (RFC 8834 §4,
// RFC 5764): a participant has a publish transport on the call's socket P and
// a subscribe transport on P+1. pion's ICE agent and DTLS connection set it
// up; after that, media and RTCP skip pion: the
// call socket's loop hands SRTP from this client's address straight to
// receive, and outgoing packets are encrypted with this transport's keys and
// queued on the sending goroutine's batch.
type transport struct {
	name        string // "publish" or "subscribe"
	controlling bool   // ICE role (RFC 8445 §6.1.1): the offerer controls
	cfg         *Config
	sock        *callSocket
	log         *zap.Logger
	sink        mediaSink

	agent      *ice.Agent
	ufrag, pwd string // ours; replaced on an ICE restart
	cert       *certificate

	mu          sync.Mutex // control state below
	remoteUfrag string
	started     bool

	// path is which goroutine owns this transport's ingress and how egress
	// leaves: the call socket (UDP: the client's address, or its TURN relay's)
	// or the ICE connection (ICE-TCP, queued: TCP can block).
	path   atomic.Int32
	remote atomic.Pointer[netip.AddrPort]

	iceConn *ice.Conn
	dconn   *dtls.Conn
	dtlsIn  *dtlsPacketConn

	// SRTP (RFC 3711) after the handshake. Decryption keeps replay and
	// rollover state, so each ingress goroutine has its own context: the
	// socket loop (UDP) and the ICE reader (TCP). Encryption contexts are
	// made per outgoing stream (newSendContext): one writer each.
	ready     atomic.Bool
	profile   srtp.ProtectionProfile
	sendKey   srtp.SessionKeys
	inUDP     *srtp.Context
	inTCP     *srtp.Context
	rtcpMu    sync.Mutex // RTCP is sent from control and packet goroutines alike
	rtcpOut   *srtp.Context
	rtcpBuf   []byte
	tcp       atomic.Pointer[tcpQueue] // set once ICE connected
	twccSeq   atomic.Uint32            // transport-wide sequence numbers sent
	newPump   func() *pump             // egress for this transport's ICE reader
	onReady   func()
	onFailed  func()
	connected chan struct{} // closed once SRTP is ready

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// mediaSink receives what a transport decrypted, on the goroutine that owns
// its ingress. plain aliases the read buffer until the call returns.
type mediaSink interface {
	rtp(t *transport, plain []byte, p *pump)
	rtcp(t *transport, plain []byte, p *pump)
}

const (
	pathNone int32 = iota
	pathUDP
	pathTCP
)

// replayWindow: SRTP replay protection (RFC 3711 §3.3.2) per SSRC. Wider than
// the usual 64 so that retransmissions answering NACKs, which arrive a round
// trip late, are still accepted: 256 packets are ~1.7 s of 1.5 Mb/s video.
// (The detector shifts its whole bitmap per packet: 1,024 bits cost 1.5 % of
// the server's CPU in the 50-person audio call.)
const replayWindow = 256

// newTransport makes a transport; controlling is true where the server
// offers (subscribe).
//
// The agents are full ICE agents (RFC 8445), not ICE-lite, for one reason:
// triggered checks (§7.3.1.4). A full agent answers a client's first check
// with a check of its own, on which the client's controlling agent (pion, and
// browsers) nominates at once instead of at its next pacing tick (200 ms in
// pion): joins measured ~200 ms faster (docs/media-plane.md). The server
// still never sends to an address that did not reach it first: it adds no
// remote candidates from SDP or trickle, so the only pairs it checks are the
// peer-reflexive ones that client checks create (§7.3.1.3).
func newTransport(cfg *Config, sock *callSocket, cert *certificate, name string, controlling bool, sink mediaSink, log *zap.Logger) (*transport, error) {
	t := &transport{name: name, controlling: controlling, cfg: cfg, sock: sock, cert: cert, sink: sink,
		log: log.With(zap.String("transport", name)), rtcpBuf: make([]byte, maxDatagram),
		connected: make(chan struct{}), closed: make(chan struct{})}
	t.ufrag, t.pwd = newICECredentials()
	opts := []ice.AgentOption{
		ice.WithUDPMux(sock.mux),
		ice.WithCheckInterval(iceCheckInterval),
		ice.WithPrflxAcceptanceMinWait(0), // the only remote candidates are peer-reflexive
		ice.WithNet(cfg.Net),
		ice.WithNetworkTypes(networkTypes(cfg)),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost}),
		ice.WithLocalCredentials(t.ufrag, t.pwd),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		ice.WithDisconnectedTimeout(cfg.ICEDisconnectedTimeout),
		ice.WithFailedTimeout(cfg.ICEFailedTimeout),
		ice.WithKeepaliveInterval(2 * cfg.ICEDisconnectedTimeout / 5),
		ice.WithLoggerFactory(pionlog.Factory{Log: cfg.Logger.Named("pion"), Demote: true}),
	}
	if cfg.TCPMux != nil {
		opts = append(opts, ice.WithTCPMux(cfg.TCPMux))
	}
	if cfg.ListenIP.IsLoopback() {
		opts = append(opts, ice.WithIncludeLoopback())
	}
	if len(cfg.AdvertiseIPs) > 0 {
		opts = append(opts, ice.WithAddressRewriteRules(ice.AddressRewriteRule{
			External: cfg.AdvertiseIPs, AsCandidateType: ice.CandidateTypeHost, Mode: ice.AddressRewriteReplace,
		}))
	}
	agent, err := ice.NewAgentWithOptions(opts...)
	if err != nil {
		return nil, err
	}
	t.agent = agent
	if err := agent.OnSelectedCandidatePairChange(t.onSelectedPair); err != nil {
		_ = agent.Close()
		return nil, err
	}
	if err := agent.OnConnectionStateChange(t.onICEState); err != nil {
		_ = agent.Close()
		return nil, err
	}
	sock.addUfrag(t.ufrag, t)
	return t, nil
}

func networkTypes(cfg *Config) []ice.NetworkType {
	var out []ice.NetworkType
	switch {
	case cfg.ListenIP.To4() != nil:
		out = []ice.NetworkType{ice.NetworkTypeUDP4}
	case cfg.ListenIP.IsUnspecified():
		out = []ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeUDP6}
	default:
		out = []ice.NetworkType{ice.NetworkTypeUDP6}
	}
	if cfg.TCPMux != nil {
		// The TCP listener's own address decides which of these pion really
		// advertises (it skips interfaces the listener is not on).
		out = append(out, ice.NetworkTypeTCP4, ice.NetworkTypeTCP6)
	}
	return out
}

// iceCheckInterval paces the server's checks while connecting (pion's
// default is 200 ms); a call socket's checks are cheap and few.
const iceCheckInterval = 20 * time.Millisecond

// newICECredentials returns a ufrag and password (RFC 8839 §5.4: at least
// 24 bits and 128 bits of randomness).
func newICECredentials() (ufrag, pwd string) {
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(b[:9]), enc.EncodeToString(b[9:])
}

// candidates gathers the agent's host candidates (the call socket, and the
// shared TCP listener) as SDP attribute values.
func (t *transport) candidates() ([]string, error) {
	done := make(chan struct{})
	var once sync.Once
	if err := t.agent.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			once.Do(func() { close(done) })
		}
	}); err != nil {
		return nil, err
	}
	if err := t.agent.GatherCandidates(); err != nil {
		return nil, err
	}
	select {
	case <-done:
	case <-t.closed:
		return nil, ErrClosed
	case <-time.After(5 * time.Second):
		return nil, errors.New("sfu: candidate gathering timed out")
	}
	cands, err := t.agent.GetLocalCandidates()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(cands))
	for _, c := range cands {
		out = append(out, c.Marshal())
	}
	return out, nil
}

// onSelectedPair moves the transport's path when ICE (re)selects a pair: the
// client nominated another address (a network change, an ICE restart, or the
// TCP fallback winning).
func (t *transport) onSelectedPair(local, remote ice.Candidate) {
	if local.NetworkType().IsTCP() {
		t.switchPath(pathTCP, netip.AddrPort{})
		return
	}
	ip, err := netip.ParseAddr(remote.Address())
	if err != nil {
		t.log.Warn("selected pair", zap.String("remote", remote.Address()), zap.Error(err))
		return
	}
	t.switchPath(pathUDP, netip.AddrPortFrom(ip.Unmap(), uint16(remote.Port())))
}

// pathQuiesce is how long ingress is dropped while it moves between
// goroutines: long enough for a packet in flight on the old one to finish.
const pathQuiesce = 5 * time.Millisecond

func (t *transport) switchPath(kind int32, addr netip.AddrPort) {
	var previous netip.AddrPort
	if old := t.remote.Load(); old != nil {
		previous = *old
	}
	old := t.path.Load()
	if kind == pathUDP {
		t.remote.Store(&addr)
		t.sock.setRoute(t, addr, previous)
	} else {
		if previous.IsValid() {
			t.sock.dropRoutes(t)
		}
		if t.tcp.Load() == nil {
			q := newTCPQueue(t.currentICEConn, t.cfg.QueueSize, t.cfg.Observer.PacketDropped)
			if !t.tcp.CompareAndSwap(nil, q) {
				q.close()
			}
		}
	}
	if old == kind || old == pathNone {
		t.path.Store(kind)
		return
	}
	t.path.Store(pathNone)
	time.AfterFunc(pathQuiesce, func() { t.path.CompareAndSwap(pathNone, kind) })
	t.log.Info("transport path changed", zap.String("to", pathName(kind)))
}

func pathName(k int32) string {
	switch k {
	case pathUDP:
		return "udp"
	case pathTCP:
		return "tcp"
	}
	return "none"
}

func (t *transport) onPath(k int32) bool { return t.ready.Load() && t.path.Load() == k }

func (t *transport) onICEState(s ice.ConnectionState) {
	t.log.Debug("ice state", zap.Stringer("state", s))
	if s == ice.ConnectionStateFailed && t.onFailed != nil {
		go t.onFailed()
	}
}

// receive decrypts one SRTP or SRTCP datagram in place and hands it to the
// sink. in is the calling goroutine's decryption context.
func (t *transport) receive(b []byte, in *srtp.Context, p *pump) {
	if len(b) < 8 {
		return
	}
	// RFC 5761 §4: payload types 64–95 (with the marker bit: 192–223) are RTCP.
	if b[1] >= 192 && b[1] <= 223 {
		plain, err := in.DecryptRTCP(b[:0], b, nil)
		if err != nil {
			t.cfg.Observer.PacketDropped("srtcp")
			return
		}
		t.sink.rtcp(t, plain, p)
		return
	}
	plain, err := in.DecryptRTP(b[:0], b, &p.hdr)
	if err != nil {
		t.cfg.Observer.PacketDropped("srtp")
		return
	}
	t.sink.rtp(t, plain, p)
}

// newSendContext makes an SRTP context for one outgoing stream: every
// stream's sequence space (and so its rollover counter) belongs to one writer.
func (t *transport) newSendContext() (*srtp.Context, error) {
	return srtp.CreateContext(t.sendKey.LocalMasterKey, t.sendKey.LocalMasterSalt, t.profile)
}

// writeRTCP encrypts and sends one compound RTCP packet (control rate: a
// lock here is fine).
func (t *transport) writeRTCP(plain []byte) {
	if !t.ready.Load() {
		return
	}
	t.rtcpMu.Lock()
	defer t.rtcpMu.Unlock()
	out, err := t.rtcpOut.EncryptRTCP(t.rtcpBuf[:0], plain, nil)
	if err != nil {
		t.log.Debug("encrypt rtcp", zap.Error(err))
		return
	}
	t.sendRaw(out)
}

// sendRaw sends one datagram outside any batch.
func (t *transport) sendRaw(b []byte) {
	switch t.path.Load() {
	case pathUDP:
		if a := t.remote.Load(); a != nil {
			if _, err := t.sock.toMux.WriteToAddrPort(b, *a); err != nil {
				t.cfg.Observer.PacketDropped("write")
			}
		}
	case pathTCP:
		t.tcp.Load().enqueue(b)
	}
}

// restartICE gives the agent new local credentials for an ICE restart
// (RFC 8445 §2.4); DTLS and SRTP carry on over the new path.
func (t *transport) restartICE() error {
	ufrag, pwd := newICECredentials()
	if err := t.agent.Restart(ufrag, pwd); err != nil {
		return err
	}
	t.mu.Lock()
	t.ufrag, t.pwd = ufrag, pwd
	t.mu.Unlock()
	t.sock.addUfrag(ufrag, t)
	return nil
}

// remoteUfragSet reports whether the client's credentials are known, and
// currentRemoteUfrag returns them: a different ufrag in an offer is an ICE
// restart.
func (t *transport) remoteUfragSet() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started
}

func (t *transport) currentRemoteUfrag() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.remoteUfrag
}

func (t *transport) currentICEConn() net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.iceConn == nil {
		return nil
	}
	return t.iceConn
}

// localCredentials returns the current ufrag and password.
func (t *transport) localCredentials() (string, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ufrag, t.pwd
}

// checkRemoteCandidate validates a trickled client candidate and drops it:
// the server learns every client address from the client's own checks
// (peer-reflexive), so it never sends to an address nobody proved it owns.
func (t *transport) checkRemoteCandidate(s string) error {
	_, err := ice.UnmarshalCandidate(s)
	return err
}

// pathDescription names the path for the API: udp, tcp or turn.
func (t *transport) pathDescription() string {
	pair, err := t.agent.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return ""
	}
	if pair.Remote.Type() == ice.CandidateTypeRelay {
		return "turn"
	}
	if pair.Local.NetworkType().IsTCP() {
		return "tcp"
	}
	return "udp"
}

// close tears the transport down: DTLS close_notify (the client notices at
// once), ICE, routes, the TCP queue. Idempotent.
func (t *transport) close() {
	t.closeOnce.Do(func() {
		close(t.closed)
		t.ready.Store(false)
		t.sock.dropRoutes(t)
		t.sock.dropUfrags(t)
		t.mu.Lock()
		dconn, in := t.dconn, t.dtlsIn
		t.mu.Unlock()
		if dconn != nil {
			_ = dconn.Close()
		}
		if in != nil {
			in.close()
		}
		_ = t.agent.Close()
		t.wg.Wait()
		if q := t.tcp.Load(); q != nil {
			q.close()
		}
	})
}

func (t *transport) isClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
	}
}
