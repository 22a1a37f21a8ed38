package client

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Failure modes: refused joins, unreachable servers, dropped sockets and
// calls ended by the server.

// TestJoinRefused: an `error` reply to join makes Join fail with the code.
func TestJoinRefused(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	f := newFakeServer(t, fakeOptions{joinError: "call_full"})
	defer f.Close()
	c, err := Join(ctxFor(t, 10*time.Second), testConfig(t, f, "frank"))
	if err == nil {
		c.Close()
		t.Fatal("Join succeeded")
	}
	var se *ServerError
	if !errors.As(err, &se) || se.Code != "call_full" || !strings.Contains(err.Error(), "call_full") {
		t.Errorf("error %v", err)
	}
}

// TestJoinBadURL: a wrong path (HTTP 404), and nothing listening.
func TestJoinBadURL(t *testing.T) {
	f := newFakeServer(t, fakeOptions{})
	cfg := testConfig(t, f, "gina")
	cfg.SignalingURL = strings.TrimSuffix(f.URL(), "/v1/rtc") + "/nope"
	_, err := Join(ctxFor(t, 10*time.Second), cfg)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("wrong path: %v", err)
	}
	f.Close()
	cfg.SignalingURL = f.URL() // closed now
	if _, err := Join(ctxFor(t, 10*time.Second), cfg); err == nil || !strings.Contains(err.Error(), "dial") {
		t.Errorf("closed server: %v", err)
	}
}

// TestSocketDropMidCall: the socket drops while media flows; the client
// stops by itself and leaves no goroutine behind.
func TestSocketDropMidCall(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	f := newFakeServer(t, fakeOptions{})
	defer f.Close()
	ctx := ctxFor(t, 20*time.Second)
	c, err := Join(ctx, testConfig(t, f, "kim"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitForMedia(ctx, []string{echoParticipant}, nil); err != nil {
		t.Fatal(err)
	}
	f.dropAll()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done did not fire")
	}
	if !errors.Is(c.Err(), ErrConnectionLost) {
		t.Errorf("Err %v", c.Err())
	}
	for _, r := range c.Stats().Received {
		if !r.Ended {
			t.Errorf("track %s not ended", r.TrackID)
		}
	}
}

// TestEndedByServer: `ended` stops the client with the reason.
func TestEndedByServer(t *testing.T) {
	f := newFakeServer(t, fakeOptions{})
	defer f.Close()
	ctx := ctxFor(t, 20*time.Second)
	c, err := Join(ctx, testConfig(t, f, "ivan"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitConnected(ctx, TransportPublish); err != nil {
		t.Fatal(err)
	}
	f.broadcast(message{Type: "ended", Reason: "ended_by_api"})
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done did not fire")
	}
	var ee *EndedError
	if !errors.As(c.Err(), &ee) || ee.Reason != "ended_by_api" {
		t.Errorf("Err %v", c.Err())
	}
	if slices.Contains(f.received(), "leave") {
		t.Error("client sent leave after the server ended the call")
	}
	if err := c.WaitForMedia(ctx, []string{"nobody"}, nil); err == nil {
		t.Error("WaitForMedia succeeded on a stopped client")
	}
}
