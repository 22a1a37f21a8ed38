package sfu

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// extensionAPI is a pion client that negotiates the audio level and mid
// extensions; pad first registers unrelated URIs, so that its IDs differ
// from the subscribe transport's.
func extensionAPI(t *testing.T, pad int) *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	for i := range pad {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: "urn:example:pad" + string(rune('a'+i))}, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	for _, uri := range []string{uriAudioLevel, uriMid} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(&interceptor.Registry{}), webrtc.WithSettingEngine(se))
}

func TestExtensionsArriveUnderSubscriberIDs(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := newTestCall(t, 41060)
	defer c.Close("test")
	pub := joinTestPeerAPI(t, c, "pub", extensionAPI(t, 6))
	defer pub.close()

	type seen struct {
		level, mid []byte
		wantMid    string
	}
	got := make(chan seen, 1)
	api := extensionAPI(t, 0)
	peerCh := make(chan *testPeer, 1)
	subPeer := joinTestPeerAPIWith(t, c, "sub", api, func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) bool {
		if tr.Kind() != webrtc.RTPCodecTypeAudio {
			return false
		}
		var lvl, mid uint8
		for _, e := range recv.GetParameters().HeaderExtensions {
			switch e.URI {
			case uriAudioLevel:
				lvl = uint8(e.ID)
			case uriMid:
				mid = uint8(e.ID)
			}
		}
		var wantMid string
		self := <-peerCh
		peerCh <- self
		for _, tx := range self.sub.GetTransceivers() {
			if tx.Receiver() == recv {
				wantMid = tx.Mid()
			}
		}
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return true
			}
			if l := pkt.Header.GetExtension(lvl); l != nil {
				select {
				case got <- seen{level: l, mid: pkt.Header.GetExtension(mid), wantMid: wantMid}:
				default:
				}
			}
		}
	})
	defer subPeer.close()
	peerCh <- subPeer

	// The publisher's own IDs for the two extensions.
	var lvlID, midID uint8
	for _, s := range pub.pub.GetSenders() {
		if s.Track() == nil || s.Track().Kind() != webrtc.RTPCodecTypeAudio {
			continue
		}
		for _, e := range s.GetParameters().HeaderExtensions {
			switch e.URI {
			case uriAudioLevel:
				lvlID = uint8(e.ID)
			case uriMid:
				midID = uint8(e.ID)
			}
		}
	}
	if lvlID == 0 || lvlID == subscribeExtID(uriAudioLevel) {
		t.Fatalf("publisher audio-level id %d: the test needs one that differs from the subscribe side's", lvlID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte{0x78, 1, 2}}
			_ = pkt.SetExtension(lvlID, []byte{0x80 | 42}) // voice, -42 dBov
			_ = pkt.SetExtension(midID, []byte("0"))
			_ = pub.audio.WriteRTP(pkt)
		}
	}()
	select {
	case s := <-got:
		if len(s.level) != 1 || s.level[0] != 0x80|42 {
			t.Errorf("audio level under the subscriber's id: %x, want %x", s.level, 0x80|42)
		}
		if string(s.mid) != s.wantMid || s.wantMid == "" {
			t.Errorf("mid %q under the subscriber's id, want its own m-section's %q", s.mid, s.wantMid)
		}
	case <-ctx.Done():
		t.Fatal("no audio packet with an audio level reached the subscriber")
	}
	cancel()
	pub.p.Close()
	subPeer.p.Close()
}

func subscribeExtID(uri string) uint8 {
	for _, e := range subscribeExtList {
		if e.uri == uri {
			return e.id
		}
	}
	return 0
}
