package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/web"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

// TestHandlerServesClient: every file of the client with its type and the
// security headers; nothing else.
func TestHandlerServesClient(t *testing.T) {
	h := web.Handler()
	for path, ctype := range map[string]string{
		"/":            "text/html",
		"/app.js":      "text/javascript",
		"/ui.js":       "text/javascript",
		"/signal.js":   "text/javascript",
		"/media.js":    "text/javascript",
		"/speakers.js": "text/javascript",
		"/messages.js": "text/javascript",
		"/icons.js":    "text/javascript",
		"/favicon.svg": "image/svg+xml",
		"/keys.js":     "text/javascript",
		"/sframe.js":   "text/javascript",
		"/worker.js":   "text/javascript",
		"/selftest.js": "text/javascript",
		"/style.css":   "text/css",
	} {
		res := get(t, h, http.MethodGet, path)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Errorf("GET %s: %d %q, %d bytes", path, res.StatusCode, res.Header.Get("Content-Type"), len(body))
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") ||
			res.Header.Get("Referrer-Policy") != "no-referrer" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: security headers %v", path, res.Header)
		}
	}
	index := get(t, h, http.MethodGet, "/")
	body, _ := io.ReadAll(index.Body)
	for _, want := range []string{`src="app.js"`, `id="e2ee"`, `id="transport"`, `id="mic"`, `id="cam"`, `id="leave"`, `id="tiles"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	// Only the client's files: not the Go source, not the embed directory.
	for _, path := range []string{"/nope.js", "/../web.go", "/web.go", "/static/app.js"} {
		if res := get(t, h, http.MethodGet, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		if res := get(t, h, m, "/"); res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /: %d", m, res.StatusCode)
		}
	}
	if res := get(t, h, http.MethodHead, "/app.js"); res.StatusCode != http.StatusOK {
		t.Errorf("HEAD /app.js: %d", res.StatusCode)
	}
}

// TestClientListenerServesWebAndSignaling: with Config.Web set, the client
// listener serves the web client at / and still the WebSocket and health
// endpoints.
func TestClientListenerServesWebAndSignaling(t *testing.T) {
	s := startCallServer(t, 46160, nil)
	hc := s.rtc.Client()
	hc.Timeout = 5 * time.Second
	for path, want := range map[string]string{"/": "<title>Orville call</title>", "/healthz": `"ok"`, "/sframe.js": "RFC 9605"} {
		res, err := hc.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %.80q", path, res.StatusCode, body)
		}
	}
	// A plain GET of the WebSocket path is refused by the upgrader, not
	// served by the web client.
	res, err := hc.Get(s.base + "/v1/rtc")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /v1/rtc without upgrade: %d", res.StatusCode)
	}
}
