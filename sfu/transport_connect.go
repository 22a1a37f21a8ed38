package sfu

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/orville/orville/internal/pionlog"
	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/fingerprint"
	"github.com/pion/ice/v4"
	"github.com/pion/srtp/v3"
	"go.uber.org/zap"
)

// remoteParams is what the client's SDP says about its end of a transport.
type remoteParams struct {
	ufrag, pwd   string
	fingerprints []sdpFingerprint
	dtlsServer   bool // we are the DTLS server (the client said setup:active)
}

type sdpFingerprint struct{ hash, value string }

// connectTimeout bounds ICE plus DTLS for one transport.
const connectTimeout = 30 * time.Second

// start begins (or, after an ICE restart, resumes) connecting to the client.
// The first call starts ICE and then DTLS in the background; later calls with
// new credentials only hand them to the agent.
func (t *transport) start(r remoteParams) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		if r.ufrag != t.remoteUfrag {
			t.remoteUfrag = r.ufrag
			return t.agent.SetRemoteCredentials(r.ufrag, r.pwd)
		}
		return nil
	}
	t.started = true
	t.remoteUfrag = r.ufrag
	t.wg.Add(1)
	go t.connect(r)
	return nil
}

func (t *transport) connect(r remoteParams) {
	defer t.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	go func() {
		select {
		case <-t.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	began := time.Now()
	var conn *ice.Conn
	var err error
	if t.controlling {
		conn, err = t.agent.Dial(ctx, r.ufrag, r.pwd)
	} else {
		conn, err = t.agent.Accept(ctx, r.ufrag, r.pwd)
	}
	if err != nil {
		t.connectFailed("ice", err)
		return
	}
	in := newDTLSPacketConn(conn)
	t.mu.Lock()
	if t.isClosed() {
		t.mu.Unlock()
		in.close()
		return
	}
	t.iceConn, t.dtlsIn = conn, in
	t.mu.Unlock()
	t.wg.Add(1)
	go t.readICE(conn, in)

	dconn, err := t.handshake(ctx, in, conn.RemoteAddr(), r)
	if err != nil {
		t.connectFailed("dtls", err)
		return
	}
	if err := t.setupSRTP(dconn, !r.dtlsServer); err != nil {
		_ = dconn.Close()
		t.connectFailed("srtp", err)
		return
	}
	t.mu.Lock()
	if t.isClosed() {
		t.mu.Unlock()
		_ = dconn.Close()
		return
	}
	t.dconn = dconn
	t.mu.Unlock()
	t.ready.Store(true)
	close(t.connected)
	t.log.Debug("transport connected", zap.Duration("took", time.Since(began)), zap.String("path", t.pathDescription()))
	if t.onReady != nil {
		t.onReady()
	}
	// Read until the client closes DTLS (close_notify) or the transport ends:
	// there is no application data, but alerts must be processed.
	buf := make([]byte, 1500)
	for {
		if _, err := dconn.Read(buf); err != nil {
			if !t.isClosed() {
				t.log.Debug("dtls closed by the client", zap.Error(err))
				if t.onFailed != nil {
					go t.onFailed()
				}
			}
			return
		}
	}
}

func (t *transport) connectFailed(stage string, err error) {
	if t.isClosed() {
		return
	}
	t.log.Info("transport failed", zap.String("stage", stage), zap.Error(err))
	if t.onFailed != nil {
		go t.onFailed()
	}
}

// handshake runs DTLS 1.2 (RFC 5764 §4: DTLS-SRTP) as the role the SDP
// negotiated (RFC 8842 §5: setup:active is the DTLS client), checking the
// client's certificate against the fingerprint its SDP carried (RFC 8122 §5).
func (t *transport) handshake(ctx context.Context, in *dtlsPacketConn, raddr net.Addr, r remoteParams) (*dtls.Conn, error) {
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error { return verifyFingerprint(raw, r.fingerprints) }
	common := []dtls.Option{
		dtls.WithCertificates(t.cert.tls),
		dtls.WithSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true), // self-signed: the fingerprint is the check
		dtls.WithVerifyPeerCertificate(verify),
		dtls.WithLoggerFactory(pionlog.Factory{Log: t.cfg.Logger.Named("pion"), Demote: true}),
	}
	var (
		c   *dtls.Conn
		err error
	)
	if r.dtlsServer {
		opts := make([]dtls.ServerOption, 0, len(common)+1)
		for _, o := range common {
			opts = append(opts, o)
		}
		opts = append(opts, dtls.WithClientAuth(dtls.RequireAnyClientCert))
		c, err = dtls.ServerWithOptions(in, raddr, opts...)
	} else {
		opts := make([]dtls.ClientOption, 0, len(common))
		for _, o := range common {
			opts = append(opts, o)
		}
		c, err = dtls.ClientWithOptions(in, raddr, opts...)
	}
	if err != nil {
		return nil, err
	}
	if err := c.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

var errFingerprint = errors.New("sfu: the DTLS certificate does not match the SDP fingerprint")

func verifyFingerprint(raw [][]byte, fps []sdpFingerprint) error {
	if len(raw) == 0 {
		return errFingerprint
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	for _, fp := range fps {
		h, err := fingerprint.HashFromString(fp.hash)
		if err != nil {
			continue
		}
		got, err := fingerprint.Fingerprint(cert, h)
		if err == nil && strings.EqualFold(got, fp.value) {
			return nil
		}
	}
	return errFingerprint
}

// setupSRTP derives the SRTP keys from the handshake (RFC 5764 §4.2) and
// makes the receive and RTCP contexts.
func (t *transport) setupSRTP(c *dtls.Conn, isClient bool) error {
	dp, ok := c.SelectedSRTPProtectionProfile()
	if !ok {
		return errors.New("sfu: no SRTP protection profile negotiated")
	}
	var profile srtp.ProtectionProfile
	switch dp {
	case dtls.SRTP_AEAD_AES_128_GCM:
		profile = srtp.ProtectionProfileAeadAes128Gcm
	case dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		profile = srtp.ProtectionProfileAes128CmHmacSha1_80
	default:
		return fmt.Errorf("sfu: unsupported SRTP profile %v", dp)
	}
	state, ok := c.ConnectionState()
	if !ok {
		return errors.New("sfu: no DTLS state")
	}
	cfg := srtp.Config{Profile: profile}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, isClient); err != nil {
		return err
	}
	t.profile, t.sendKey = profile, cfg.Keys
	mk := func() (*srtp.Context, error) {
		return srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, profile,
			srtp.SRTPReplayProtection(replayWindow), srtp.SRTCPReplayProtection(replayWindow))
	}
	var err error
	if t.inUDP, err = mk(); err != nil {
		return err
	}
	if t.inTCP, err = mk(); err != nil {
		return err
	}
	t.rtcpOut, err = t.newSendContext()
	return err
}

// readICE reads what pion's agent passes up for this transport: DTLS records
// always, and media when the path is ICE-TCP (on UDP the call socket takes
// media before pion sees it).
func (t *transport) readICE(conn net.Conn, in *dtlsPacketConn) {
	defer t.wg.Done()
	buf := make([]byte, maxDatagram)
	p := t.newPump()
	for {
		n, err := conn.Read(buf)
		if err != nil {
			in.close()
			return
		}
		b := buf[:n]
		switch {
		case n == 0:
		case b[0] >= 20 && b[0] < 64: // DTLS (RFC 7983 §7)
			in.deliver(b)
		case b[0] >= 128 && b[0] < 192:
			if t.onPath(pathTCP) {
				p.tick()
				t.receive(b, t.inTCP, p)
				p.flush()
			}
		}
	}
}

// dtlsPacketConn is the net.PacketConn pion's DTLS runs on: records the
// transport's reader passes in, writes through the ICE connection.
type dtlsPacketConn struct {
	conn   net.Conn
	in     chan []byte
	closed chan struct{}
	once   sync.Once
}

func newDTLSPacketConn(conn net.Conn) *dtlsPacketConn {
	return &dtlsPacketConn{conn: conn, in: make(chan []byte, 64), closed: make(chan struct{})}
}

// deliver copies b (handshake-rate: allocating is fine) or drops it when the
// handshake is not reading.
func (d *dtlsPacketConn) deliver(b []byte) {
	select {
	case d.in <- bytes.Clone(b):
	default:
	}
}

func (d *dtlsPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-d.in:
		return copy(b, p), d.conn.RemoteAddr(), nil
	case <-d.closed:
		return 0, nil, net.ErrClosed
	}
}

func (d *dtlsPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) { return d.conn.Write(b) }
func (d *dtlsPacketConn) Close() error                              { d.close(); return nil }
func (d *dtlsPacketConn) close()                                    { d.once.Do(func() { close(d.closed) }) }
func (d *dtlsPacketConn) LocalAddr() net.Addr                       { return d.conn.LocalAddr() }
func (d *dtlsPacketConn) SetDeadline(time.Time) error               { return nil }
func (d *dtlsPacketConn) SetReadDeadline(time.Time) error           { return nil }
func (d *dtlsPacketConn) SetWriteDeadline(time.Time) error          { return nil }
