package client

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// echoParticipant is the participant id (msid stream id) under which the
// fake server sends a client's own tracks back.
const echoParticipant = "echo"

// fakeOptions select misbehaviours of the fake server.
type fakeOptions struct {
	joinError      string // answer join with this error code, then close
	closeAfterJoin bool   // close the socket right after `joined`
}

// fakeServer is a test-only signaling server: an httptest TLS server
// speaking docs/signaling.md with one ICE-lite pion peer connection per
// transport. It echoes every track a client publishes back to that client
// on its subscribe transport under the participant id "echo".
type fakeServer struct {
	t    testing.TB
	opts fakeOptions
	srv  *httptest.Server
	api  *webrtc.API

	mu    sync.Mutex
	conns map[*fakeConn]struct{}
	msgs  []message // every client message, for assertions
	pongs atomic.Int32
	wg    sync.WaitGroup
}

func newFakeServer(t testing.TB, opts fakeOptions) *fakeServer {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(opusCodec(), webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterCodec(vp8Codec(), webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetLite(true) // like the real server (DESIGN.md: ICE-lite)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)

	f := &fakeServer{
		t:     t,
		opts:  opts,
		api:   webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)),
		conns: map[*fakeConn]struct{}{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/rtc", f.handle)
	f.srv = httptest.NewTLSServer(mux)
	return f
}

// URL is the signaling URL (wss://127.0.0.1:port/v1/rtc).
func (f *fakeServer) URL() string { return "wss" + strings.TrimPrefix(f.srv.URL, "https") + "/v1/rtc" }

// Close ends every connection and waits for their goroutines.
func (f *fakeServer) Close() {
	f.mu.Lock()
	for c := range f.conns {
		_ = c.ws.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	f.srv.Close()
}

// received returns the types of the client messages seen so far.
func (f *fakeServer) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var types []string
	for _, m := range f.msgs {
		types = append(types, m.Type)
	}
	return types
}

// broadcast sends m to every connected client.
func (f *fakeServer) broadcast(m message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		_ = c.write(m)
	}
}

// wsPing sends a WebSocket ping to every client; pongs counts the answers.
func (f *fakeServer) wsPing() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.wmu.Lock()
		_ = c.ws.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second))
		c.wmu.Unlock()
	}
}

// dropAll closes every socket abruptly (no `ended`).
func (f *fakeServer) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		_ = c.ws.Close()
	}
}

type fakeConn struct {
	f        *fakeServer
	ws       *websocket.Conn
	wmu      sync.Mutex
	pub, sub *webrtc.PeerConnection
	renego   chan struct{} // a subscribe (re)offer is needed
	subUp    atomic.Bool   // subscribe transport connected
	answers  chan string   // subscribe answers from the client
	done     chan struct{}
	wg       sync.WaitGroup
}

func (c *fakeConn) write(m message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(m)
}

func (f *fakeServer) handle(w http.ResponseWriter, r *http.Request) {
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &fakeConn{f: f, ws: ws, renego: make(chan struct{}, 1), answers: make(chan string, 1), done: make(chan struct{})}
	ws.SetPongHandler(func(data string) error {
		if data == "hi" {
			f.pongs.Add(1)
		}
		return nil
	})
	f.mu.Lock()
	f.conns[c] = struct{}{}
	f.wg.Add(1)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		f.wg.Done()
	}()
	defer ws.Close()

	var join message
	if err := ws.ReadJSON(&join); err != nil || join.Type != "join" {
		return
	}
	f.record(join)
	if f.opts.joinError != "" {
		_ = c.write(message{Type: "error", Code: f.opts.joinError, Message: "refused by fake server"})
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.ClosePolicyViolation, ""), time.Now().Add(time.Second))
		return
	}
	// The token is the participant id in this fake.
	if err := c.write(message{Type: "joined", V: 1, CallID: "fakecall", ParticipantID: join.Token}); err != nil {
		return
	}
	if f.opts.closeAfterJoin {
		return
	}
	if c.pub, err = f.api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		f.t.Error(err)
		return
	}
	if c.sub, err = f.api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		f.t.Error(err)
		_ = c.pub.Close()
		return
	}
	c.pub.OnTrack(c.echo)
	c.sub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			c.subUp.Store(true)
		}
	})
	c.wg.Add(1)
	go c.negotiateLoop()

	c.readLoop()
	close(c.done)
	_ = c.pub.GracefulClose()
	_ = c.sub.GracefulClose()
	c.wg.Wait()
}

func (f *fakeServer) record(m message) {
	f.mu.Lock()
	f.msgs = append(f.msgs, m)
	f.mu.Unlock()
}

func (c *fakeConn) readLoop() {
	for {
		var m message
		if err := c.ws.ReadJSON(&m); err != nil {
			return
		}
		c.f.record(m)
		switch m.Type {
		case "offer":
			if err := c.answerPublish(m.SDP); err != nil {
				_ = c.write(message{Type: "error", Code: "invalid_sdp", Message: err.Error()})
			}
		case "answer":
			select {
			case c.answers <- m.SDP:
			default:
				c.f.t.Error("fake server: unexpected subscribe answer")
			}
		case "candidate":
			pc := c.pub
			if m.Transport == TransportSubscribe {
				pc = c.sub
			}
			if m.Candidate != nil && pc.RemoteDescription() != nil {
				_ = pc.AddICECandidate(*m.Candidate)
			}
		case "ping":
			_ = c.write(message{Type: "pong", ID: m.ID})
		case "leave":
			return
		}
	}
}

// answerPublish answers the client's publish offer with all host candidates
// in the SDP (the real server does not trickle either).
func (c *fakeConn) answerPublish(sdp string) error {
	if err := c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return err
	}
	answer, err := c.pub.CreateAnswer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(c.pub)
	if err := c.pub.SetLocalDescription(answer); err != nil {
		return err
	}
	<-gathered
	return c.write(message{Type: "answer", Transport: TransportPublish, SDP: c.pub.LocalDescription().SDP})
}

// echo forwards a published track back on the subscribe transport under
// the stream id "echo", and forwards PLIs from the client to the publisher.
func (c *fakeConn) echo(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, remote.ID(), echoParticipant)
	if err != nil {
		c.f.t.Error(err)
		return
	}
	sender, err := c.sub.AddTrack(local)
	if err != nil {
		if c.sub.ConnectionState() != webrtc.PeerConnectionStateClosed {
			c.f.t.Error(err) // a closed connection is the test ending, not a fault
		}
		return
	}
	select {
	case c.renego <- struct{}{}:
	default:
	}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					_ = c.pub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}})
				}
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		forwarding := false
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			// Like an SFU: drop media until the subscriber can receive it,
			// then ask the publisher for a key frame to start from.
			if !forwarding {
				if !c.subUp.Load() {
					continue
				}
				forwarding = true
				if remote.Kind() == webrtc.RTPCodecTypeVideo {
					_ = c.pub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}})
				}
			}
			// Header extension ids belong to the publish negotiation; an
			// SFU strips or rewrites them, and so does this fake.
			pkt.Header.Extension = false
			pkt.Header.Extensions = nil
			if err := local.WriteRTP(pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				return
			}
		}
	}()
}

// negotiateLoop sends subscribe offers one at a time: a new offer only
// after the previous answer (the client answers in order anyway).
func (c *fakeConn) negotiateLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.renego:
		case <-c.done:
			return
		}
		offer, err := c.sub.CreateOffer(nil)
		if err != nil {
			c.failUnlessDone(err)
			return
		}
		gathered := webrtc.GatheringCompletePromise(c.sub)
		if err := c.sub.SetLocalDescription(offer); err != nil {
			c.failUnlessDone(err)
			return
		}
		<-gathered
		if err := c.write(message{Type: "offer", Transport: TransportSubscribe, SDP: c.sub.LocalDescription().SDP}); err != nil {
			return
		}
		select {
		case sdp := <-c.answers:
			if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
				c.failUnlessDone(err)
				return
			}
		case <-c.done:
			return
		}
	}
}

// failUnlessDone reports a negotiation error, except once the connection is
// closing: the client may close its transports (an `ended` from the test)
// while an offer is being made.
func (c *fakeConn) failUnlessDone(err error) {
	select {
	case <-c.done:
	default:
		if c.sub.ConnectionState() != webrtc.PeerConnectionStateClosed {
			c.f.t.Error(err)
		}
	}
}
