package sfu

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Ordering and liveness of the control path: subscriptions against
// unpublish, leave events, unanswered offers.

func TestSubscriptionAfterUnpublishLeavesNothing(t *testing.T) {
	c := newTestCall(t, 41010)
	defer c.Close("test")
	pub := joinTestPeer(t, c, "pub")
	defer pub.close()
	sub := joinTestPeer(t, c, "sub")
	defer sub.close()
	ups := pub.p.publishedTracks()
	if len(ups) != 2 {
		t.Fatalf("%d tracks published", len(ups))
	}
	up := ups[0]
	c.unpublish(pub.p, up)
	// A subscription that was on its way when the track went (a join or a
	// publish racing the unpublish) must not land.
	c.subscribeTo(sub.p, up, true)
	sub.p.mu.Lock()
	d := sub.p.sub.downs[up]
	sub.p.mu.Unlock()
	if d != nil {
		t.Fatal("a down track exists for an unpublished track")
	}
	for _, s := range *up.subs.Load() {
		if s.sub == sub.p {
			t.Fatal("the unpublished track still fans out to the late subscriber")
		}
	}
	for _, e := range sub.eventsSnapshot() {
		if strings.HasPrefix(e, "published pub") {
			t.Fatalf("trackPublished announced after unpublish: %v", sub.eventsSnapshot())
		}
	}
}

// Joins racing unpublishes: whatever the interleaving, every subscriber ends
// with down tracks only for tracks still published, and hears a removal for
// every track it was told about.
func TestJoinsRacingUnpublishStayConsistent(t *testing.T) {
	c := newTestCall(t, 41020)
	defer c.Close("test")
	pub := joinTestPeer(t, c, "pub")
	defer pub.close()
	ups := pub.p.publishedTracks()
	var wg sync.WaitGroup
	var peers []*testPeer
	var mu sync.Mutex
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tp := joinTestPeer(t, c, "sub"+string(rune('a'+i)))
			mu.Lock()
			peers = append(peers, tp)
			mu.Unlock()
		}()
	}
	time.Sleep(5 * time.Millisecond)
	for _, up := range ups {
		c.unpublish(pub.p, up)
	}
	wg.Wait()
	for _, tp := range peers {
		defer tp.close()
		tp.p.mu.Lock()
		for up := range tp.p.sub.downs {
			if up.owner == pub.p {
				t.Errorf("%s: a down track of an unpublished track of pub", tp.id)
			}
		}
		tp.p.mu.Unlock()
	}
}

func (tp *testPeer) eventsSnapshot() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.events)
}

func TestTrackUnpublishedComesBeforeParticipantLeft(t *testing.T) {
	c := newTestCall(t, 41030)
	defer c.Close("test")
	watcher := joinTestPeer(t, c, "watcher")
	defer watcher.close()
	leaver := joinTestPeer(t, c, "leaver")
	waitFor(t, 5*time.Second, "the leaver's tracks announced", func() bool {
		n := 0
		for _, e := range watcher.eventsSnapshot() {
			if strings.HasPrefix(e, "published leaver") {
				n++
			}
		}
		return n == 2
	})
	leaver.p.Close()
	leaver.close()
	events := watcher.eventsSnapshot()
	left := slices.Index(events, "left leaver")
	if left < 0 {
		t.Fatalf("no participantLeft: %v", events)
	}
	unpublished := 0
	for i, e := range events {
		if strings.HasPrefix(e, "unpublished leaver") {
			unpublished++
			if i > left {
				t.Errorf("trackUnpublished after participantLeft: %v", events)
			}
		}
	}
	if unpublished != 2 {
		t.Errorf("%d trackUnpublished events, want 2: %v", unpublished, events)
	}
}

var loopback = net.IPv4(127, 0, 0, 1)

// silentPeer is a Handler that never answers subscribe offers.
type silentPeer struct {
	mu     sync.Mutex
	offers int
}

func (s *silentPeer) SubscribeOffer(string) {
	s.mu.Lock()
	s.offers++
	s.mu.Unlock()
}
func (s *silentPeer) ParticipantJoined(ParticipantInfo) {}
func (s *silentPeer) ParticipantLeft(string)            {}
func (s *silentPeer) TrackPublished(string, TrackInfo)  {}
func (s *silentPeer) TrackUnpublished(string, string)   {}
func (s *silentPeer) TrackMuted(string, string, bool)   {}
func (s *silentPeer) Closed(string)                     {}
func (s *silentPeer) Speakers([]SpeakerInfo, string)    {}
func (s *silentPeer) count() int                        { s.mu.Lock(); defer s.mu.Unlock(); return s.offers }

func TestUnansweredSubscribeOfferTimesOut(t *testing.T) {
	c, err := NewCall(Config{ID: "t", ListenIP: loopback, PublishPort: 41040, SubscribePort: 41041,
		OfferTimeout: 300 * time.Millisecond, Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close("test")
	silent := &silentPeer{}
	if _, err := c.Join("silent", silent); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the first offer", func() bool { return silent.count() == 1 })
	// A track appears while the first offer is still unanswered: without
	// the timeout no offer would ever carry it.
	pub := joinTestPeer(t, c, "pub")
	defer pub.close()
	waitFor(t, 3*time.Second, "a second offer after the timeout", func() bool { return silent.count() >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	<-ctx.Done()
	if n := silent.count(); n > 5 {
		t.Errorf("%d offers in 1.3 s: the timeout must not turn into a flood", n)
	}
}
