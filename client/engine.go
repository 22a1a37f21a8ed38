package client

import (
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orville/orville/internal/pionlog"
	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Codecs of docs/signaling.md. The payload types and the Opus fmtp line are
// what browsers offer, so SDP from this client and from a browser look alike
// to the server.
const (
	opusPayloadType = 111
	vp8PayloadType  = 96
	opusFmtp        = "minptime=10;useinbandfec=1"
)

func opusCodec() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: opusFmtp,
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}},
		},
		PayloadType: opusPayloadType,
	}
}

func vp8Codec() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			// RFC 4585 §4.2 nack and nack pli, RFC 5104 §7.1 ccm fir,
			// draft-holmer-rmcat-transport-wide-cc-extensions transport-cc.
			RTCPFeedback: []webrtc.RTCPFeedback{
				{Type: webrtc.TypeRTCPFBNACK},
				{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
				{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
				{Type: webrtc.TypeRTCPFBTransportCC},
			},
		},
		PayloadType: vp8PayloadType,
	}
}

const rtxPayloadType = 97

func rtxCodec() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000,
			SDPFmtpLine: fmt.Sprintf("apt=%d", vp8PayloadType)},
		PayloadType: rtxPayloadType,
	}
}

// relayAcceptanceMinWait: see newAPI.
const relayAcceptanceMinWait = 500 * time.Millisecond

// newAPI builds the pion API shared by a client's two peer connections: one
// MediaEngine with Opus and VP8 only, the default interceptors (NACK
// generator and responder, RTCP sender/receiver reports, stats, TWCC
// feedback) plus TWCC sequence numbers on sent packets so the SFU can
// estimate bandwidth, and AEAD_AES_128_GCM preferred for SRTP (RFC 7714: one
// AES-GCM pass instead of AES-CM plus HMAC-SHA1, cheaper for the SFU).
//
// n is the network of the ICE agents (UDP allowed, refused or dropped) and
// d opens TURN over TCP/TLS connections, gated by the 3-second rule
// (fallback.go).
func newAPI(log *zap.Logger, sent *sendCounter, levels *levelStamper, loopbackOnly bool, n *iceNet, d *turnDialer) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(opusCodec(), webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register opus: %w", err)
	}
	if err := m.RegisterCodec(vp8Codec(), webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("register vp8: %w", err)
	}
	// RFC 4588 retransmissions of VP8, as browsers offer them: the SFU
	// answers a subscriber's NACK on an RTX stream only, never reusing an
	// SRTP index of the original stream, so without RTX a lost packet
	// stays lost.
	if err := m.RegisterCodec(rtxCodec(), webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("register rtx: %w", err)
	}

	if err := registerAudioLevel(m); err != nil {
		return nil, fmt.Errorf("audio level extension: %w", err)
	}
	reg := &interceptor.Registry{}
	// First in the chain means closest to the wire: the counter sees every
	// packet the transport sends, retransmissions included.
	reg.Add(sent)
	reg.Add(levels)
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, fmt.Errorf("default interceptors: %w", err)
	}
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, reg); err != nil {
		return nil, fmt.Errorf("twcc header extension: %w", err)
	}

	se := webrtc.SettingEngine{}
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	// Demoted: pion warns about every stream it finds closed when a
	// connection closes, which is every Close, not trouble.
	se.LoggerFactory = pionlog.Factory{Log: log.Named("pion"), Demote: true}
	// The server's candidates are IP addresses (host candidates),
	// so mDNS (.local) resolution is never needed; off, it saves a multicast
	// socket per peer connection, which matters for the load tester.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Loopback candidates make `orville serve --dev` on 127.0.0.1 reachable
	// even on a host whose only interface is lo; elsewhere they cost one
	// failing candidate pair.
	se.SetIncludeLoopbackCandidate(true)
	se.SetNet(n)
	se.SetICETimeouts(iceDisconnectedTimeout, iceFailedTimeout, iceKeepaliveInterval)
	se.SetICEProxyDialer(d)
	// pion gathers UDP only by default; TCP4/TCP6 let the agent pair active
	// ICE-TCP candidates (RFC 6544) with the server's passive one.
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6,
		webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6})
	if n.socks != nil {
		// Through the SOCKS relay only: its UDP associations are IPv4, and
		// active ICE-TCP would dial the server directly (pion dials it
		// itself, not through the network above). TURN still goes through
		// the relay's CONNECT (the proxy dialer).
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	// pion waits 2 s from the agent's start before it nominates a relayed
	// pair, so that direct ones can win. Relays start only with the TCP
	// paths (3 s, or at once with ForceTCP), where ICE-TCP has had its
	// chance within a round trip or two.
	se.SetRelayAcceptanceMinWait(relayAcceptanceMinWait)
	if loopbackOnly {
		// A server on loopback is reached only through loopback: offering LAN
		// addresses would only add pairs that send nowhere useful.
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}

	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se)), nil
}

// sendCounter is an interceptor (and its own factory) that counts the RTP
// packets and payload bytes sent per SSRC; pion's GetStats has no
// outbound-rtp entries for senders.
type sendCounter struct {
	interceptor.NoOp
	mu     sync.Mutex
	bySSRC map[uint32]*streamCount
}

type streamCount struct{ packets, bytes atomic.Uint64 }

func newSendCounter() *sendCounter { return &sendCounter{bySSRC: map[uint32]*streamCount{}} }

// NewInterceptor implements interceptor.Factory: both peer connections share
// one counter; SSRCs are random per stream, so they do not collide.
func (s *sendCounter) NewInterceptor(string) (interceptor.Interceptor, error) { return s, nil }

func (s *sendCounter) stream(ssrc uint32) *streamCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.bySSRC[ssrc]
	if sc == nil {
		sc = &streamCount{}
		s.bySSRC[ssrc] = sc
	}
	return sc
}

// BindLocalStream wraps the writer of one outgoing stream.
func (s *sendCounter) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	sc := s.stream(info.SSRC)
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		sc.packets.Add(1)
		sc.bytes.Add(uint64(len(payload)))
		return w.Write(h, payload, a)
	})
}

// isLoopbackURL reports whether a signaling URL names a loopback host.
func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
