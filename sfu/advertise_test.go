package sfu

import (
	"net"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

// --public-ip: clients are told the advertised address (NAT 1:1), never the
// bind address. Only the SDP is inspected; nothing is sent to the address.
func TestAnswerAdvertisesPublicIP(t *testing.T) {
	defer goleak.VerifyNone(t)
	const public = "203.0.113.7" // RFC 5737 documentation address
	c, err := NewCall(Config{ID: "adv", ListenIP: net.IPv4(127, 0, 0, 1), PublishPort: 41010, SubscribePort: 41011,
		AdvertiseIPs: []string{public}, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close("test")
	tp := &testPeer{t: t, id: "x", closed: make(chan string, 1)}
	p, err := c.Join("x", tp)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := testAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, _ := pc.CreateOffer(nil)
	answer, err := p.Publish(offer.SDP)
	if err != nil {
		t.Fatal(err)
	}
	var cands []string
	for _, l := range strings.Split(answer, "\r\n") {
		if strings.HasPrefix(l, "a=candidate:") {
			cands = append(cands, l)
		}
	}
	if len(cands) == 0 || strings.Contains(answer, "a=ice-lite") {
		t.Fatalf("answer has no candidates or claims ICE-lite (the server is a full agent):\n%s", answer)
	}
	for _, l := range cands {
		if !strings.Contains(l, public+" 41010 typ host") || strings.Contains(l, "127.0.0.1") {
			t.Fatalf("candidate %q: want %s:41010 and never the bind address", l, public)
		}
	}
	if !strings.Contains(answer, "a=setup:") || !strings.Contains(answer, "opus/48000/2") {
		t.Fatalf("answer lacks DTLS setup or Opus:\n%s", answer)
	}
}
