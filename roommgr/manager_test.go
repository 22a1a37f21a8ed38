package roommgr

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func testConfig(t *testing.T, port, maxCalls int) Config {
	return Config{PortStart: port, MaxCalls: maxCalls, MaxParticipants: 2, ListenIP: net.IPv4(127, 0, 0, 1),
		PublicIP: "127.0.0.1", NodeID: "f985", EmptyTimeout: time.Minute, LeaveGrace: time.Second,
		MaxCallDuration: time.Hour, Logger: zaptest.NewLogger(t)}
}

// portFree reports whether a UDP port can be bound on loopback right now.
func portFree(port int) bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestMaxCallsAndPortReuse(t *testing.T) {
	defer goleak.VerifyNone(t)
	m, err := New(testConfig(t, 42000, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a, err := m.Create(CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Create(CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Port != 42000 || b.Port != 42002 {
		t.Fatalf("ports %d, %d; want 42000, 42002", a.Port, b.Port)
	}
	if portFree(42000) || portFree(42001) {
		t.Fatal("a call's ports are not bound")
	}
	_, err = m.Create(CreateOptions{})
	var nc *NoCapacityError
	if !errors.As(err, &nc) || !strings.Contains(err.Error(), "--max-calls") || !strings.Contains(err.Error(), "ORVILLE_MAX_CALLS") {
		t.Fatalf("third call: %v, want a NoCapacityError naming the setting", err)
	}
	if m.PairsInUse() != 2 || m.PairsFree() != 0 {
		t.Fatalf("in use %d free %d", m.PairsInUse(), m.PairsFree())
	}
	if err := m.End(a.ID, "ended_by_api"); err != nil {
		t.Fatal(err)
	}
	if !portFree(42000) || !portFree(42001) {
		t.Fatal("ending a call did not free its ports")
	}
	if _, err := m.Get(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ended call still found: %v", err)
	}
	c, err := m.Create(CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 42000 {
		t.Fatalf("new call on %d, want the freed 42000", c.Port)
	}
	if len(c.ID) != 32 || c.ID == a.ID {
		t.Fatalf("event id %q", c.ID)
	}
}

func TestPairTakenByAnotherProgramIsSkipped(t *testing.T) {
	defer goleak.VerifyNone(t)
	squat, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 42101})
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	m, _ := New(testConfig(t, 42100, 2))
	defer m.Close()
	r, err := m.Create(CreateOptions{})
	if err != nil || r.Port != 42102 {
		t.Fatalf("got %v, %v; want the second pair", r, err)
	}
	if _, err := m.Create(CreateOptions{}); err == nil {
		t.Fatal("no pair left, but Create succeeded")
	}
}

func TestLifecycleTimers(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := testConfig(t, 42200, 4)
	cfg.EmptyTimeout = 100 * time.Millisecond
	m, _ := New(cfg)
	defer m.Close()

	empty, _ := m.Create(CreateOptions{})
	select {
	case <-empty.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("a call nobody joined did not end")
	}
	if _, reason := empty.Ended(); reason != "empty_timeout" {
		t.Fatalf("reason %q", reason)
	}

	short, _ := m.Create(CreateOptions{TTL: 50 * time.Millisecond, MaxParticipants: 100})
	if short.MaxParticipants != 2 {
		t.Fatalf("a request may lower the participant limit, not raise it: %d", short.MaxParticipants)
	}
	select {
	case <-short.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("TTL did not end the call")
	}
	if _, reason := short.Ended(); reason != "max_duration" {
		t.Fatalf("reason %q", reason)
	}
	if m.PairsInUse() != 0 {
		t.Fatalf("pairs in use after all ended: %d", m.PairsInUse())
	}
}

func TestConfigValidation(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.MaxCalls = 0 },
		func(c *Config) { c.PortStart = 65500; c.MaxCalls = 50 },
		func(c *Config) { c.PublicIP = "example.com" },
		func(c *Config) { c.Logger = nil },
	} {
		cfg := testConfig(t, 42300, 1)
		mod(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("invalid config accepted: %+v", cfg)
		}
	}
	cfg := testConfig(t, 16384, 500)
	if first, last := cfg.PortRange(); first != 16384 || last != 17383 {
		t.Fatalf("range %d–%d", first, last)
	}
}
