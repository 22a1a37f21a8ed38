package signaling

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/orville/orville/roommgr"
	"go.uber.org/goleak"
)

// The health handler answers anyone (no source check, no secret) with the
// state only, follows the drain and capacity, and serves nothing else.
func TestHealthHandler(t *testing.T) {
	defer goleak.VerifyNone(t)
	// An --api-allow the test's own address is not in: the health listener
	// must not care.
	f := newAPIFixture(t, 43280, func(c *Config) { c.APIAllow = []netip.Prefix{netip.MustParsePrefix("10.9.9.9/32")} })
	defer f.close()
	hs := httptest.NewServer(f.srv.HealthHandler())
	defer hs.Close()
	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, nil)
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/healthz", 200, `{"status":"ok"}` + "\n"},
		{"GET", "/readyz", 200, `{"status":"ready"}` + "\n"},
		{"GET", "/v1/calls", 404, `{"status":"not_found"}` + "\n"},
		{"POST", "/v1/calls", 404, `{"status":"not_found"}` + "\n"},
		{"GET", "/metrics", 404, `{"status":"not_found"}` + "\n"},
		{"POST", "/v1/drain", 404, `{"status":"not_found"}` + "\n"},
	} {
		if status, body := get(c.method, c.path); status != c.status || body != c.body {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, status, body, c.status, c.body)
		}
	}
	if f.rooms.Draining() {
		t.Fatal("the health listener started a drain")
	}
	// Capacity: both pairs taken.
	a, _ := f.rooms.Create(roommgr.CreateOptions{})
	b, _ := f.rooms.Create(roommgr.CreateOptions{})
	if status, body := get("GET", "/readyz"); status != 503 || body != `{"status":"no_capacity"}`+"\n" {
		t.Errorf("readyz when full: %d %s", status, body)
	}
	a.End("ended_by_api")
	f.rooms.Drain()
	if status, body := get("GET", "/readyz"); status != 503 || body != `{"status":"draining"}`+"\n" {
		t.Errorf("readyz while draining: %d %s", status, body)
	}
	if status, _ := get("GET", "/healthz"); status != 200 {
		t.Errorf("healthz while draining: %d", status)
	}
	b.End("ended_by_api")
}
