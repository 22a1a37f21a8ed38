package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// closeWait bounds how long Close waits for the server to close the socket
// after `leave` before closing it itself.
const closeWait = 2 * time.Second

// Client is one participant in one call. Create it with Join; all methods
// are safe for concurrent use.
type Client struct {
	cfg Config
	log *zap.Logger

	start         time.Time // start of the WebSocket dial
	joinDuration  time.Duration
	callID        string
	participantID string

	sent       *sendCounter
	levels     *levelStamper
	turnDialer *turnDialer // TURN over TCP/TLS for both transports (fallback.go)
	socks      *socksNet   // Config.SOCKS (socks.go), else nil
	pub, sub   *transport
	local      []*localTrack // fixed after Join

	ctx        context.Context // cancelled when the client stops
	cancel     context.CancelFunc
	out        chan message
	closing    chan struct{} // closed when teardown starts
	writeQuit  chan struct{}
	writerDone chan struct{}
	readerDone chan struct{}
	wg         sync.WaitGroup // media, RTCP and keepalive goroutines

	pubPending atomic.Bool // publish offer sent, answer not yet seen
	pubResult  chan error

	// Session resume and ICE restarts (resume.go, icerestart.go).
	resume      string        // credential from `joined`; "" if the server has none
	resumeGrace time.Duration // how long the server keeps our place
	lastSeq     atomic.Uint64 // last call message received
	resumes     atomic.Int64
	iceRestarts atomic.Int64
	probing     atomic.Bool // a socket probe runs (icerestart.go)

	layerMessages atomic.Int64 // `layers` applied (simulcast.go)

	mu            sync.Mutex
	conn          *websocket.Conn // the signaling socket; nil while reconnecting
	closed        bool
	err           error
	participants  map[string]*Participant
	speakers      SpeakersEvent // the latest `speakers` event (audiolevel.go)
	remote        []*recvStats
	remoteTracks  map[*recvStats]*webrtc.TrackRemote
	serverErrors  int
	lastServerErr *ServerError
	pingSeq       uint64
	pings         map[string]chan struct{}
	iceServers    []webrtc.ICEServer // from joined, then iceServers messages (iceservers.go)
	iceRefreshes  int
	pausedVideos  map[string]string // "participant/track" → reason (simulcast.go)

	closeOnce sync.Once
	done      chan struct{}
}

// Join connects to the call: it dials the signaling WebSocket, sends `join`,
// waits for `joined`, creates the publish and subscribe peer connections,
// adds the configured synthetic tracks and sends the publish offer. It
// returns once the server answered that offer (or at once when publishing
// nothing); media starts when the publish transport connects. Subscribe
// offers are answered for as long as the client runs. ctx and
// cfg.JoinTimeout bound Join only, not the client's lifetime (see Close).
func Join(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.JoinTimeout)
	defer cancel()

	log := cfg.Logger
	if cfg.ParticipantID != "" {
		log = log.With(zap.String("participant", cfg.ParticipantID))
	}
	c := &Client{
		cfg:          cfg,
		log:          log,
		sent:         newSendCounter(),
		levels:       newLevelStamper(cfgAudioLevel(cfg)),
		turnDialer:   newTURNDialer(cfg.TLSConfig, nil),
		out:          make(chan message, outQueueLen),
		closing:      make(chan struct{}),
		writeQuit:    make(chan struct{}),
		writerDone:   make(chan struct{}),
		readerDone:   make(chan struct{}),
		pubResult:    make(chan error, 1),
		participants: map[string]*Participant{},
		remoteTracks: map[*recvStats]*webrtc.TrackRemote{},
		pings:        map[string]chan struct{}{},
		done:         make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.SOCKS != nil {
		c.socks = newSOCKSNet(cfg.SOCKS)
		c.turnDialer.dial = c.socks.DialContext
	}

	c.start = time.Now()
	conn, joined, err := c.dialAndJoin(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.joinDuration = time.Since(c.start)
	c.conn, c.callID, c.participantID = conn, joined.CallID, joined.ParticipantID
	c.resume, c.resumeGrace = joined.Resume, time.Duration(joined.ResumeGrace)*time.Second
	if c.participantID == "" {
		c.participantID = cfg.ParticipantID // the server should say; fall back
	}
	for _, p := range joined.Participants {
		if p.ID != c.participantID {
			c.participants[p.ID] = &p
		}
	}
	c.log.Debug("joined", zap.String("call", c.callID), zap.String("id", c.participantID),
		zap.Duration("after", c.joinDuration))

	c.iceServers = joined.ICEServers
	if err := c.setupPeers(joined.ICEServers); err != nil {
		c.cancel()
		_ = conn.Close()
		return nil, err
	}
	go c.readLoop()
	go c.writeLoop()
	c.goTracked(c.keepaliveLoop)
	c.goTracked(c.iceWatchLoop)

	if err := c.publish(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// setupPeers creates both peer connections and the local tracks.
func (c *Client) setupPeers(iceServers []webrtc.ICEServer) error {
	mode := udpAllowed
	switch {
	case c.cfg.ForceTCP:
		mode = udpRefused
	}
	n, err := newICENet(c.cfg.ICENet, mode)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	n.socks = c.socks
	api, err := newAPI(c.log, c.sent, c.levels, isLoopbackURL(c.cfg.SignalingURL), n, c.turnDialer)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if c.pub, err = newTransport(c, api, TransportPublish, iceServers); err != nil {
		return err
	}
	if c.sub, err = newTransport(c, api, TransportSubscribe, iceServers); err != nil {
		c.pub.close()
		return err
	}
	c.pub.gate.setSibling(c.sub.gate)
	c.sub.gate.setSibling(c.pub.gate)
	c.sub.pc.OnTrack(c.onTrack)
	for _, kind := range []string{KindAudio, KindVideo} {
		if (kind == KindAudio && !c.cfg.PublishAudio) || (kind == KindVideo && !c.cfg.PublishVideo) {
			continue
		}
		lt, err := c.newLocalTrack(kind)
		if err != nil {
			c.pub.close()
			c.sub.close()
			return err
		}
		c.local = append(c.local, lt)
	}
	return nil
}

// fallbackDelay is how long a transport created now waits before it also
// tries TCP: the rest of DefaultTCPFallbackDelay (or Config.TCPFallbackDelay)
// counted from the start of Join; 0 with ForceTCP; negative (never) with
// UDPOnly.
func (c *Client) fallbackDelay() time.Duration {
	switch {
	case c.cfg.ForceTCP:
		return 0
	case c.cfg.UDPOnly:
		return -1
	}
	return max(c.cfg.TCPFallbackDelay-time.Since(c.start), time.Nanosecond)
}

// publish sends the publish offer, waits for the answer and starts the media
// and RTCP loops of the local tracks.
func (c *Client) publish(ctx context.Context) error {
	if len(c.local) == 0 {
		return nil
	}
	offer, err := c.pub.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("client: publish: create offer: %w", err)
	}
	if err := c.pub.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("client: publish: set local offer: %w", err)
	}
	c.pubPending.Store(true)
	if err := c.send(message{Type: "offer", Transport: TransportPublish, SDP: offer.SDP}); err != nil {
		return err
	}
	c.pub.markLocalSent()
	select {
	case err := <-c.pubResult:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("client: waiting for publish answer: %w", ctx.Err())
	case <-c.done:
		return fmt.Errorf("client: stopped while waiting for publish answer: %w", c.Err())
	}
	for _, lt := range c.local {
		c.goTracked(func() { c.sendLoop(lt) })
		c.goTracked(func() { c.senderRTCPLoop(lt) })
	}
	return nil
}

// goTracked runs f in a goroutine that Close waits for, unless the client is
// already stopping (so WaitGroup.Add never races with Wait).
func (c *Client) goTracked(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// fail stops the client because of err (server ended the call, socket
// dropped, transport failed). The first error wins; errors during Close are
// not errors.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.err == nil {
		c.err = err
		c.log.Info("client stopping", zap.Error(err))
	}
	c.mu.Unlock()
	go c.Close()
}

// Close leaves the call (sending `leave` when the socket is up), closes the
// socket and both peer connections and waits for every goroutine of the
// client. It is idempotent and always returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(c.close)
	return nil
}

func (c *Client) close() {
	c.mu.Lock()
	c.closed = true
	healthy := c.err == nil
	c.mu.Unlock()

	if healthy {
		select {
		case c.out <- message{Type: "leave"}:
		default:
		}
	}
	close(c.closing)
	c.cancel()
	close(c.writeQuit)
	<-c.writerDone
	// After `leave` and our close frame the server closes the socket; do
	// not wait for it forever.
	select {
	case <-c.readerDone:
	case <-time.After(closeWait):
	}
	if conn := c.socket(); conn != nil {
		_ = conn.Close()
	}
	<-c.readerDone

	c.pub.close()
	c.sub.close()
	c.wg.Wait()

	c.mu.Lock()
	if c.err == nil {
		c.err = ErrClosed
	}
	c.mu.Unlock()
	close(c.done)
}

// Done is closed when the client has stopped: after Close, or when the
// server ended the call, the socket dropped or a transport failed.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the client stopped: an *EndedError (the `ended` reason), an
// error wrapping ErrConnectionLost (and the last *ServerError, if any), a
// transport failure, or ErrClosed. nil while running; it may be set shortly
// before Done is closed.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// CallID is the call's event id from `joined`.
func (c *Client) CallID() string { return c.callID }

// ParticipantID is this client's id as the server knows it.
func (c *Client) ParticipantID() string { return c.participantID }

// WaitConnected waits until the named transport (TransportPublish or
// TransportSubscribe) is connected. The subscribe transport connects only
// once the server offers it something to receive.
func (c *Client) WaitConnected(ctx context.Context, transportName string) error {
	var t *transport
	switch transportName {
	case TransportPublish:
		t = c.pub
	case TransportSubscribe:
		t = c.sub
	default:
		return fmt.Errorf("client: unknown transport %q", transportName)
	}
	select {
	case <-t.connected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client: %s transport not connected (state %s): %w",
			transportName, t.pc.ConnectionState(), ctx.Err())
	case <-c.done:
		return fmt.Errorf("client: stopped before %s connected: %w", transportName, c.Err())
	}
}

// SetMuted mutes or unmutes the published track of kind and tells the
// server (`mute`). A muted track keeps sending tiny frames so RTP timing
// stays continuous; unmuting video starts with a key frame.
func (c *Client) SetMuted(kind string, muted bool) error {
	for _, lt := range c.local {
		if lt.kind != kind {
			continue
		}
		lt.muted.Store(muted)
		if !muted && kind == KindVideo {
			lt.forceKey.Store(true)
		}
		return c.send(message{Type: "mute", TrackID: lt.track.ID(), Muted: &muted})
	}
	return fmt.Errorf("client: no published %s track", kind)
}

// SendKeyFrame makes the next video frame a key frame (e.g. after an E2EE
// key change, DESIGN.md "End-to-end encryption").
func (c *Client) SendKeyFrame() {
	for _, lt := range c.local {
		if lt.kind == KindVideo {
			lt.forceKey.Store(true)
		}
	}
}

// RequestKeyFrame sends a PLI (RFC 4585 §6.3.1) for a received video track
// of participantID on the subscribe transport.
func (c *Client) RequestKeyFrame(participantID, trackID string) error {
	c.mu.Lock()
	var ssrc uint32
	found := false
	for r, t := range c.remoteTracks {
		if r.participantID == participantID && r.trackID == trackID {
			ssrc, found = uint32(t.SSRC()), true
		}
	}
	c.mu.Unlock()
	if !found {
		return fmt.Errorf("client: no track %s of %s", trackID, participantID)
	}
	return c.sub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// Ping sends a signaling `ping` and returns the time until its `pong`.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	c.mu.Lock()
	c.pingSeq++
	id := fmt.Sprint(c.pingSeq)
	ch := make(chan struct{})
	c.pings[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pings, id)
		c.mu.Unlock()
	}()
	start := time.Now()
	if err := c.send(message{Type: "ping", ID: json.Number(id)}); err != nil {
		return 0, err
	}
	select {
	case <-ch:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-c.done:
		return 0, c.Err()
	}
}

func (c *Client) onPong(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.pings[id]; ch != nil {
		close(ch)
		delete(c.pings, id)
	}
}
