package sfu

import (
	"context"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// A call on pion's virtual network (transport/v5/vnet): the server and four
// pion clients on 10.0.0.0/24 with 10 ms of delay each way, and a router
// filter that loses or blackholes one client's packets.

type lossyPath struct {
	lossy     atomic.Value // string: the IP that loses lossPercent of its packets both ways
	blackhole atomic.Value // string: the IP whose packets all vanish
}

const lossPercent = 5

func (l *lossyPath) keep(c vnet.Chunk) bool {
	src, dst := hostOf(c.SourceAddr()), hostOf(c.DestinationAddr())
	if b, _ := l.blackhole.Load().(string); b != "" && (src == b || dst == b) {
		return false
	}
	if x, _ := l.lossy.Load().(string); x != "" && (src == x || dst == x) && rand.IntN(100) < lossPercent {
		return false
	}
	return true
}

func hostOf(a net.Addr) string {
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

func vnetAPI(t *testing.T, n *vnet.Net) *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil { // VP8 with RTX
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil { // NACK generator and responder
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetNet(n)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

func TestVNetLossRecoveryAndBlackholeIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 10 s of media")
	}
	defer goleak.VerifyNone(t)
	router, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "10.0.0.0/24", MinDelay: 10 * time.Millisecond,
		LoggerFactory: logging.NewDefaultLoggerFactory()})
	if err != nil {
		t.Fatal(err)
	}
	path := &lossyPath{}
	router.AddChunkFilter(path.keep)
	newNet := func(ip string) *vnet.Net {
		n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
		if err != nil {
			t.Fatal(err)
		}
		if err := router.AddNet(n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	serverNet := newNet("10.0.0.1")
	ips := map[string]string{"pub": "10.0.0.10", "lossy": "10.0.0.11", "dark": "10.0.0.12", "clean": "10.0.0.13"}
	nets := map[string]*vnet.Net{}
	for id, ip := range ips {
		nets[id] = newNet(ip)
	}
	if err := router.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = router.Stop() }()

	obs := &countingObserver{}
	c, err := NewCall(Config{ID: "vnet", ListenIP: net.ParseIP("10.0.0.1"), PublishPort: 16000, SubscribePort: 16001,
		Net: serverNet, Observer: obs, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close("test")
	peers := map[string]*testPeer{}
	for _, id := range []string{"pub", "lossy", "dark", "clean"} {
		peers[id] = joinTestPeerAPI(t, c, id, vnetAPI(t, nets[id]))
		defer peers[id].close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go peers["pub"].send(ctx)
	for _, id := range []string{"lossy", "dark", "clean"} {
		tp := peers[id]
		waitFor(t, 10*time.Second, id+" receives video", func() bool { return tp.count("pub", "video") > 100 })
	}
	video := func(id string) *seqSet { return peers[id].stream("pub", "video") }

	path.lossy.Store(ips["lossy"])
	start := map[string]int64{"lossy": video("lossy").mark() + 1, "clean": video("clean").mark() + 1}
	time.Sleep(2 * time.Second)
	path.blackhole.Store(ips["dark"])
	time.Sleep(3 * time.Second)
	path.blackhole.Store("")
	time.Sleep(2 * time.Second)
	path.lossy.Store("")
	end := map[string]int64{"lossy": video("lossy").mark(), "clean": video("clean").mark()}
	time.Sleep(time.Second) // the last NACK round trips

	lost, total := video("lossy").missing(start["lossy"], end["lossy"])
	t.Logf("lossy subscriber: %d of %d video packets missing after NACK recovery (path loss %d%% each way); NACKs answered %d, unanswered %d",
		lost, total, lossPercent, obs.nackOK.Load(), obs.nackMissed.Load())
	if total < 200 || float64(lost) >= 0.005*float64(total) {
		t.Errorf("lossy subscriber lost %d of %d video packets: want < 0.5%% after recovery", lost, total)
	}
	if obs.nackOK.Load() == 0 {
		t.Error("no NACK was answered from the cache")
	}
	lost, total = video("clean").missing(start["clean"], end["clean"])
	if lost > 0 || total < 200 {
		t.Errorf("clean subscriber lost %d of %d video packets while another path was lossy or dark", lost, total)
	}
	// The publisher's own stream reached the server whole throughout.
	pub := c.Participant("pub")
	for _, up := range pub.publishedTracks() {
		s := up.stream(0)
		if s == nil {
			t.Fatalf("no stream for %s", up.id)
		}
		expected := s.recv.highest.Load() - s.recv.base.Load() + 1
		if got := s.recv.received.Load(); got < expected {
			t.Errorf("%s: the server got %d of %d packets from the publisher", up.id, got, expected)
		}
	}
	cancel()
	for _, tp := range peers {
		tp.p.Close()
	}
}

// countingObserver counts what the vnet test asserts on.
type countingObserver struct {
	nopObserver
	nackOK, nackMissed atomic.Int64
	out                atomic.Int64
}

func (o *countingObserver) PacketsOut(_ webrtc.RTPCodecType, packets, _ int, _ time.Duration) {
	o.out.Add(int64(packets))
}

func (o *countingObserver) NACK(ok bool) {
	if ok {
		o.nackOK.Add(1)
	} else {
		o.nackMissed.Add(1)
	}
}
