package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// A subscriber's receiver report reaches its down track: loss, jitter and
// the round trip from the LSR/DLSR of the sender report it answers.
func TestReceiverReportRoutedToDownTrack(t *testing.T) {
	r := newFanoutRig(t, "video", 1)
	d := r.downs[0]
	sub := d.sub
	sub.sub.init()
	sub.sub.bySSRC[d.ssrc] = d
	sub.sub.publish()
	sub.cfg = r.pub.cfg
	ntp := ntpTime(time.Now())
	sentAt := int64(5 * time.Second)
	d.report.sent(ntp, sentAt)
	rr := &rtcp.ReceiverReport{SSRC: 7, Reports: []rtcp.ReceptionReport{{SSRC: d.ssrc, FractionLost: 64,
		TotalLost: 12, Jitter: 90, LastSenderReport: uint32(ntp >> 16), Delay: 65536 / 10}}} // held 100 ms
	b, err := rr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r.pm.now = sentAt + int64(130*time.Millisecond)
	subscribeSink{sub}.rtcp(nil, b, r.pm)
	if f := d.report.fraction.Load(); f != 64 {
		t.Errorf("fraction lost %d, want 64", f)
	}
	if l := d.report.lost.Load(); l != 12 {
		t.Errorf("lost %d, want 12", l)
	}
	if j := d.report.jitter.Load(); j != 90 {
		t.Errorf("jitter %d, want 90", j)
	}
	if rtt := time.Duration(d.report.rttMicros.Load()) * time.Microsecond; rtt < 29*time.Millisecond || rtt > 31*time.Millisecond {
		t.Errorf("round trip %v, want 30 ms (130 ms since the SR, 100 ms held)", rtt)
	}
}
