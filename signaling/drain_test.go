package signaling

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// POST /v1/drain is an API route like the others (source and secret); once
// draining, new calls and readiness answer 503 draining, running calls keep
// taking participants.
func TestDrainRoute(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newAPIFixture(t, 43260, nil)
	defer f.close()
	if r := f.do("GET", "/readyz", "", nil); r.status != http.StatusOK {
		t.Fatalf("readyz before the drain: %d %s", r.status, r.body)
	}
	sc := f.startCall()
	for _, auth := range []string{"", "Bearer wrong-secret-0123456789"} {
		if r := f.do("POST", "/v1/drain", auth, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("drain with auth %q: %d", auth, r.status)
		}
	}
	if f.rooms.Draining() {
		t.Fatal("an unauthorized request started the drain")
	}

	for range 2 { // idempotent
		r := f.authed("POST", "/v1/drain", "")
		var got struct {
			Status string `json:"status"`
			Calls  int    `json:"calls"`
		}
		if err := json.Unmarshal(r.body, &got); err != nil || r.status != http.StatusAccepted || got.Status != "draining" || got.Calls != 1 {
			t.Fatalf("POST /v1/drain: %d %s", r.status, r.body)
		}
	}
	if !f.rooms.Draining() {
		t.Fatal("not draining after POST /v1/drain")
	}
	r := f.authed("POST", "/v1/calls", "")
	if msg := wantError(t, r, http.StatusServiceUnavailable, apiCodeDraining); !strings.Contains(msg, "draining") {
		t.Fatalf("message %q", msg)
	}
	if ra := r.header.Get("Retry-After"); ra != "10" {
		t.Fatalf("Retry-After %q, want 10", ra)
	}
	wantError(t, f.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable, apiCodeDraining)
	if r := f.authed("POST", "/v1/calls/"+sc.State.EventID+"/participants", `{"id":"late"}`); r.status != http.StatusCreated {
		t.Fatalf("a token for a running call while draining: %d %s", r.status, r.body)
	}
	if r := f.authed("GET", "/v1/calls/"+sc.State.EventID, ""); r.status != http.StatusOK {
		t.Fatalf("the running call while draining: %d %s", r.status, r.body)
	}
}

// A source outside --api-allow cannot drain the server, secret or not.
func TestDrainRouteNeedsAllowedSource(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newAPIFixture(t, 43270, func(c *Config) { c.APIAllow = []netip.Prefix{netip.MustParsePrefix("10.9.9.9/32")} })
	defer f.close()
	wantError(t, f.authed("POST", "/v1/drain", ""), http.StatusForbidden, apiCodeForbiddenSource)
	if f.rooms.Draining() {
		t.Fatal("a forbidden source started the drain")
	}
}
