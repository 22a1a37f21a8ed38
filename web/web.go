// Package web is Orville's web client, embedded in the binary and served at /
// on the client listener (signaling.Config.Web). Opened as
// https://HOST/?token=TOKEN#key=SECRET it joins the call with the token over
// wss://HOST/v1/rtc and end-to-end encrypts media with RFC 9605 SFrame in an
// RTCRtpScriptTransform worker, keyed from the secret in the URL fragment,
// which browsers never send to the server.
//
// The package only serves static files: it holds no keys and sees no media.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

// static holds the client: index.html, app.js (call logic), signal.js
// (signaling and resume), media.js (transports, ICE restarts, screen share),
// ui.js (the page), icons.js, speakers.js, simulcast.js (the camera's
// layers), messages.js (plain-words errors), keys.js
// (Orville's key schedule), sframe.js (RFC 9605 on WebCrypto), worker.js
// (the frame transform), selftest.js (the RFC vectors and Go interop hooks).
//
//go:embed static
var static embed.FS

// contentSecurityPolicy keeps the page to its own origin: scripts, workers
// and the WebSocket come from this server only.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; worker-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; media-src 'self' blob: mediastream:; style-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// setSecurityHeaders: the CSP; no referrer, so the join token in the query
// never leaks into other requests; camera and microphone for this origin
// only; no caching, so an upgraded server serves its own client.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Permissions-Policy", "camera=(self), microphone=(self), geolocation=()")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
}

// Handler serves the web client's files (GET and HEAD only).
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		setSecurityHeaders(w.Header())
		files.ServeHTTP(w, r)
	})
}
