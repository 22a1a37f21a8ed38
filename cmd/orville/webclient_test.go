package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeWebClient: `orville serve` serves the embedded web client at /
// on the client listener to browsers, which offer HTTP/2 first: the page,
// its scripts and worker load, and /healthz still answers. (Media ports
// 46200– are issue 4's range.)
func TestServeWebClient(t *testing.T) {
	s := startStack(t, 46200)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed test server
		ForceAttemptHTTP2: true}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	t.Cleanup(hc.CloseIdleConnections)
	for path, want := range map[string]string{
		"/": "<title>Orville call</title>", "/app.js": "window.orville", "/worker.js": "onrtctransform",
		"/sframe.js": "RFC 9605", "/healthz": `"ok"`,
	} {
		res, err := hc.Get("https://" + s.tcpAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %.80q", path, res.StatusCode, body)
		}
	}
}
