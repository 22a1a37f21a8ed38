package sfu

import (
	"fmt"
	"net"

	"github.com/orville/orville/internal/pionlog"
	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
)

// Payload types and codecs every Orville client speaks (docs/signaling.md).
const (
	ptOpus = 111
	ptVP8  = 96
)

var videoFeedback = []webrtc.RTCPFeedback{
	{Type: webrtc.TypeRTCPFBNACK},
	{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
	{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
}

// newMediaEngine registers Opus and VP8. The publish side also negotiates
// transport-wide congestion control so browsers can estimate their uplink.
func newMediaEngine(publish bool) (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	fb := videoFeedback
	var audioFB []webrtc.RTCPFeedback
	if publish {
		fb = append(append([]webrtc.RTCPFeedback{}, fb...), webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC})
		audioFB = []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}
	}
	codecs := []struct {
		c    webrtc.RTPCodecParameters
		kind webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: audioFB,
		}, PayloadType: ptOpus}, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb,
		}, PayloadType: ptVP8}, webrtc.RTPCodecTypeVideo},
	}
	for _, c := range codecs {
		if err := m.RegisterCodec(c.c, c.kind); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// newAPI builds the pion API for one of a call's two transports, bound to that
// transport's UDP mux.
func newAPI(cfg *Config, mux ice.UDPMux, publish bool) (*webrtc.API, error) {
	m, err := newMediaEngine(publish)
	if err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if publish {
		// Toward publishers: NACK lost packets (RFC 4585), send receiver reports
		// (RFC 3550 §6.4.2) and transport-wide CC feedback. Toward subscribers the
		// SFU answers NACKs from its own cache and writes its own sender reports,
		// so no interceptor sits on the forwarding path.
		gen, err := nack.NewGeneratorInterceptor()
		if err != nil {
			return nil, err
		}
		reg.Add(gen)
		rr, err := report.NewReceiverInterceptor()
		if err != nil {
			return nil, err
		}
		reg.Add(rr)
		if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
			return nil, err
		}
	}

	se := webrtc.SettingEngine{}
	se.SetLite(true)
	se.SetICEUDPMux(mux)
	if cfg.TCPMux != nil {
		se.SetICETCPMux(cfg.TCPMux)
	}
	se.SetNetworkTypes(networkTypes(cfg))
	se.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, 2*cfg.ICEDisconnectedTimeout/5)
	se.SetSRTPProtectionProfiles(
		dtls.SRTP_AEAD_AES_128_GCM, // ≈4× cheaper per packet than AES-CM + HMAC
		dtls.SRTP_AES128_CM_HMAC_SHA1_80,
	)
	se.SetIncludeLoopbackCandidate(cfg.ListenIP.IsLoopback())
	if len(cfg.AdvertiseIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.AdvertiseIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("sfu: advertised addresses: %w", err)
		}
	}
	se.LoggerFactory = pionlog.Factory{Log: cfg.Logger.Named("pion"), Demote: true}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se)), nil
}

func networkTypes(cfg *Config) []webrtc.NetworkType {
	out := udpNetworkTypes(cfg)
	if cfg.TCPMux != nil {
		// The TCP listener's own address decides which of these pion
		// really advertises (it skips interfaces the listener is not on).
		out = append(out, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	return out
}

func udpNetworkTypes(cfg *Config) []webrtc.NetworkType {
	if cfg.ListenIP.To4() != nil {
		return []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	}
	if cfg.ListenIP.IsUnspecified() {
		return []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	}
	return []webrtc.NetworkType{webrtc.NetworkTypeUDP6}
}

// listenUDP opens one of the call's two sockets.
func listenUDP(ip net.IP, port int) (*net.UDPConn, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("sfu: listen udp %s: %w", net.JoinHostPort(ip.String(), fmt.Sprint(port)), err)
	}
	// Room for bursts of keyframes from many publishers before the reader runs.
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	return conn, nil
}
