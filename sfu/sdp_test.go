package sfu

import (
	"strings"
	"testing"
)

// A Firefox-style max-bundle offer: the second section says port 0 with
// a=bundle-only (RFC 8843 §6) — bundled, not rejected.
const bundleOnlyOffer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef01234567\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 109\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=setup:actpass\r\na=rtcp-mux\r\n" +
	"a=rtpmap:109 opus/48000/2\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=msid:{s} {a}\r\na=ssrc:11 cname:x\r\n" +
	"m=video 0 UDP/TLS/RTP/SAVPF 120\r\nc=IN IP4 0.0.0.0\r\na=bundle-only\r\na=mid:1\r\na=sendonly\r\na=rtcp-mux\r\n" +
	"a=rtpmap:120 VP8/90000\r\na=rtcp-fb:120 nack\r\na=rtcp-fb:120 goog-remb\r\na=msid:{s} {v}\r\na=ssrc:22 cname:x\r\n"

func TestPublishOfferWithBundleOnlySection(t *testing.T) {
	o, err := parsePublishOffer(bundleOnlyOffer)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.sections) != 2 || !o.sections[0].accepted || !o.sections[1].accepted {
		t.Fatalf("sections %+v: the bundle-only video must be accepted", o.sections)
	}
	v := o.sections[1]
	if v.pt != 120 || v.trackID != "{v}" || len(v.ssrcs) != 1 || v.ssrcs[0] != 22 {
		t.Fatalf("video section %+v", v)
	}
	if len(v.fb) != 1 || v.fb[0] != "nack" {
		t.Fatalf("feedback %v: only what the SFU implements (no goog-remb)", v.fb)
	}
	ans := o.answer("uf", "pw", "AA:BB", []string{"1 1 udp 1 127.0.0.1 5000 typ host"}, 1, 1)
	for _, want := range []string{"a=group:BUNDLE 0 1\r\n", "m=video 9 UDP/TLS/RTP/SAVPF 120\r\n", "a=setup:passive\r\n",
		"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n", "a=recvonly\r\n"} {
		if !strings.Contains(ans, want) {
			t.Errorf("answer lacks %q:\n%s", want, ans)
		}
	}
	if strings.Contains(ans, "ice-lite") || strings.Contains(ans, "goog-remb") {
		t.Errorf("answer:\n%s", ans)
	}
}

func TestCertificateFingerprintIsUpperCase(t *testing.T) {
	c, err := newCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.fingerprint != strings.ToUpper(c.fingerprint) || len(c.fingerprint) != 95 {
		t.Fatalf("fingerprint %q: RFC 8122 §5 wants 32 upper-case hex pairs", c.fingerprint)
	}
}
