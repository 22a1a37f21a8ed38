package signaling

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/sfu"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

const apiTestSecret = "api-test-secret-0123456789"

// referenceStartCall is the reference deployment's answer (DESIGN.md, Facts).
const referenceStartCall = `{"cluster":"enterprise","state":{"eventId":"5bda4906dd4d41ff996ada256cef5308","roomURI_ipv6":"","pid":"f985","roomURI":"12.34.56.78:16384"}}`

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// apiFixture is the API over plain HTTP on loopback with a real room manager
// (two calls, ports from portStart). Tests defer goleak first, close second.
type apiFixture struct {
	t       *testing.T
	srv     *Server
	rooms   *roommgr.Manager
	ts      *httptest.Server
	metrics *apiMetricsRecorder
}

func newAPIFixture(t *testing.T, portStart int, mod func(*Config)) *apiFixture {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	rooms, err := roommgr.New(roommgr.Config{PortStart: portStart, MaxCalls: 2, MaxParticipants: 4,
		ListenIP: net.IPv4(127, 0, 0, 1), PublicIP: "127.0.0.1", NodeID: "f985",
		EmptyTimeout: time.Minute, LeaveGrace: time.Minute, MaxCallDuration: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	m := &apiMetricsRecorder{}
	cfg := Config{Rooms: rooms, APISecret: apiTestSecret, Logger: log, Metrics: m,
		APIAllow:        []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		SignalingURL:    "wss://calls.example.com/v1/rtc",
		MetricsHandler:  http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("orville_calls 0\n")) }),
		LogLevelHandler: zap.NewAtomicLevel()}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		rooms.Close()
		t.Fatal(err)
	}
	return &apiFixture{t: t, srv: srv, rooms: rooms, ts: httptest.NewServer(srv.APIHandler()), metrics: m}
}

func (f *apiFixture) close() {
	f.ts.Close() // also closes the test client's idle connections
	f.srv.Close()
	f.rooms.Close()
}

type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; auth is the Authorization header ("" for none).
func (f *apiFixture) do(method, path, auth string, body []byte) apiResponse {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, f.ts.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return apiResponse{resp.StatusCode, resp.Header, b}
}

// authed sends a request with the right secret.
func (f *apiFixture) authed(method, path, body string) apiResponse {
	f.t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	return f.do(method, path, "Bearer "+apiTestSecret, b)
}

func (f *apiFixture) startCall() startCallResponse {
	f.t.Helper()
	r := f.authed("POST", "/v1/calls", "")
	if r.status != http.StatusCreated {
		f.t.Fatalf("start call: %d %s", r.status, r.body)
	}
	var sc startCallResponse
	if err := json.Unmarshal(r.body, &sc); err != nil {
		f.t.Fatal(err)
	}
	return sc
}

// wantError checks the status and the stable error shape.
func wantError(t *testing.T, r apiResponse, status int, code string) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var e map[string]map[string]string
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || len(e) != 1 || len(e["error"]) != 2 {
		t.Fatalf("not the error shape: %s (%v)", r.body, err)
	}
	if e["error"]["code"] != code || e["error"]["message"] == "" {
		t.Fatalf("error %v, want code %q and a message", e["error"], code)
	}
	return e["error"]["message"]
}

// jsonKeys returns the keys of the JSON object in raw, in document order.
func jsonKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

type apiMetricsRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (m *apiMetricsRecorder) APIRequest(route string, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = append(m.seen, route+" "+http.StatusText(status))
}

func (m *apiMetricsRecorder) has(route string, status int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.seen {
		if s == route+" "+http.StatusText(status) {
			return true
		}
	}
	return false
}

func TestAPIStartCallShape(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newAPIFixture(t, 43000, nil)
	defer f.close()

	r := f.authed("POST", "/v1/calls", "")
	if r.status != http.StatusCreated || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	// Tooling written for the reference server may match the text itself.
	if !bytes.HasPrefix(r.body, []byte(`{"cluster":"enterprise","state":{"eventId":"`)) {
		t.Fatalf("answer does not start like the reference: %s", r.body)
	}
	if got, want := jsonKeys(t, r.body), []string{"cluster", "state", "signalingUrl", "expiresAt", "ports"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &top); err != nil {
		t.Fatal(err)
	}
	refKeys := jsonKeys(t, []byte(referenceStartCall[len(`{"cluster":"enterprise","state":`):len(referenceStartCall)-1]))
	if got := jsonKeys(t, top["state"]); !reflect.DeepEqual(got, refKeys) {
		t.Fatalf("state keys %v, want the reference order %v", got, refKeys)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatal(err)
	}
	state := m["state"].(map[string]any)
	if !hex32.MatchString(state["eventId"].(string)) {
		t.Errorf("eventId %q is not 32 hex digits", state["eventId"])
	}
	if state["pid"] != "f985" || state["roomURI"] != "127.0.0.1:43000" || state["roomURI_ipv6"] != "" {
		t.Errorf("state %v", state)
	}
	if m["signalingUrl"] != "wss://calls.example.com/v1/rtc" {
		t.Errorf("signalingUrl %v", m["signalingUrl"])
	}
	if p := m["ports"].(map[string]any); p["publish"] != 43000.0 || p["subscribe"] != 43001.0 {
		t.Errorf("ports %v", p)
	}
	exp, err := time.Parse(time.RFC3339, m["expiresAt"].(string))
	if err != nil || exp.Before(time.Now().Add(59*time.Minute)) {
		t.Errorf("expiresAt %v (%v): want RFC 3339, about an hour ahead", m["expiresAt"], err)
	}
	if !f.metrics.has("POST /v1/calls", http.StatusCreated) {
		t.Errorf("request not counted: %v", f.metrics.seen)
	}

	// The optional body reaches the room.
	r = f.authed("POST", "/v1/calls", `{"maxParticipants":1,"ttlSeconds":60,"metadata":{ "conversation" : "c-1" }}`)
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var sc startCallResponse
	_ = json.Unmarshal(r.body, &sc)
	room, err := f.rooms.Get(sc.State.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if room.MaxParticipants != 1 || string(room.Metadata) != `{"conversation":"c-1"}` ||
		room.ExpiresAt.Sub(room.CreatedAt) != time.Minute {
		t.Fatalf("room %d %s %v", room.MaxParticipants, room.Metadata, room.ExpiresAt.Sub(room.CreatedAt))
	}
}

func TestAPIMaxCallsAndPortReuse(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newAPIFixture(t, 43010, nil)
	defer f.close()

	a, b := f.startCall(), f.startCall()
	if a.Ports.Publish != 43010 || b.Ports.Publish != 43012 {
		t.Fatalf("ports %d, %d", a.Ports.Publish, b.Ports.Publish)
	}
	msg := wantError(t, f.authed("POST", "/v1/calls", ""), http.StatusServiceUnavailable, apiCodeNoCapacity)
	if !strings.Contains(msg, "--max-calls") || !strings.Contains(msg, "ORVILLE_MAX_CALLS") {
		t.Fatalf("message %q does not name the setting", msg)
	}
	wantError(t, f.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable, apiCodeNoCapacity)

	if r := f.authed("DELETE", "/v1/calls/"+a.State.EventID, ""); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("end: %d %s", r.status, r.body)
	}
	wantError(t, f.authed("DELETE", "/v1/calls/"+a.State.EventID, ""), http.StatusNotFound, apiCodeCallNotFound)
	if r := f.do("GET", "/readyz", "", nil); r.status != http.StatusOK || string(r.body) != `{"status":"ready","callsFree":1}`+"\n" {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	c := f.startCall()
	if c.State.RoomURI != "127.0.0.1:43010" || c.State.EventID == a.State.EventID {
		t.Fatalf("new call %+v, want the freed port 43010 and a new id", c.State)
	}
}

func TestAPIAuth(t *testing.T) {
	defer goleak.VerifyNone(t)
	core, logs := observer.New(zapcore.DebugLevel)
	f := newAPIFixture(t, 43020, func(c *Config) { c.Logger = zap.New(core) })
	defer f.close()

	r := f.do("POST", "/v1/calls", "", nil)
	wantError(t, r, http.StatusUnauthorized, apiCodeUnauthorized)
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	for _, auth := range []string{"Bearer wrong-secret-0123456789", "Bearer " + apiTestSecret + "x",
		"Basic " + apiTestSecret, apiTestSecret, "Bearer "} {
		r := f.do("POST", "/v1/calls", auth, []byte(`{}`))
		wantError(t, r, http.StatusUnauthorized, apiCodeUnauthorized)
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%q: no WWW-Authenticate", auth)
		}
	}
	// Unknown routes and wrong methods need the secret too, then answer JSON.
	wantError(t, f.do("GET", "/v1/nothing", "", nil), http.StatusUnauthorized, apiCodeUnauthorized)
	if n := len(f.rooms.List()); n != 0 {
		t.Fatalf("refused requests created %d calls", n)
	}
	wantError(t, f.authed("GET", "/v1/nothing", ""), http.StatusNotFound, apiCodeNotFound)
	r = f.authed("PUT", "/v1/calls", "")
	wantError(t, r, http.StatusMethodNotAllowed, apiCodeMethodNotAllowed)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow %q", allow)
	}
	// The scheme is case-insensitive (RFC 9110 §11.1).
	if r := f.do("GET", "/v1/calls", "bearer "+apiTestSecret, nil); r.status != http.StatusOK || string(r.body) != `{"calls":[]}`+"\n" {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	// No secret needed for the probes and the document.
	for _, p := range []string{"/healthz", "/readyz", "/v1/openapi.yaml"} {
		if r := f.do("GET", p, "", nil); r.status != http.StatusOK {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	if !f.metrics.has("unmatched", http.StatusNotFound) || !f.metrics.has("POST /v1/calls", http.StatusUnauthorized) {
		t.Errorf("metrics %v", f.metrics.seen)
	}
	// Every request is logged at debug, and no log line holds the secret.
	reqs := logs.FilterMessage("api request").All()
	if len(reqs) < 10 {
		t.Fatalf("%d request log lines", len(reqs))
	}
	for _, e := range logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		if strings.Contains(string(line)+e.Message, apiTestSecret) {
			t.Fatalf("log line leaks the secret: %s %s", e.Message, line)
		}
	}
	if fields := reqs[0].ContextMap(); fields["route"] != "POST /v1/calls" || fields["status"] != int64(401) || fields["source"] == nil {
		t.Errorf("log fields %v", fields)
	}
}

func TestAPIForbiddenSource(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newAPIFixture(t, 43030, func(c *Config) { c.APIAllow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	defer f.close()

	req := func(method, path string, hdr map[string]string) apiResponse {
		hreq, _ := http.NewRequest(method, f.ts.URL+path, nil)
		hreq.Header.Set("Authorization", "Bearer "+apiTestSecret)
		for k, v := range hdr {
			hreq.Header.Set(k, v)
		}
		resp, err := f.ts.Client().Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return apiResponse{resp.StatusCode, resp.Header, b}
	}
	wantError(t, req("POST", "/v1/calls", nil), http.StatusForbidden, apiCodeForbiddenSource)
	// A forwarding header is the client's claim, not its address.
	wantError(t, req("POST", "/v1/calls", map[string]string{"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"}),
		http.StatusForbidden, apiCodeForbiddenSource)
	for _, p := range []string{"/v1/calls", "/readyz", "/v1/openapi.yaml", "/v1/nothing"} {
		wantError(t, req("GET", p, nil), http.StatusForbidden, apiCodeForbiddenSource)
	}
	if n := len(f.rooms.List()); n != 0 || f.rooms.PairsFree() != 2 {
		t.Fatalf("a refused request created %d calls", n)
	}
	if r := req("GET", "/healthz", nil); r.status != http.StatusOK || string(r.body) != `{"status":"ok"}`+"\n" {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
}

func TestAPISourceAllowlist(t *testing.T) {
	p := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	for _, c := range []struct {
		remote string
		allow  []netip.Prefix
		want   bool
	}{
		{"127.0.0.1:5000", p("127.0.0.0/8"), true},
		{"127.0.0.1:5000", p("10.0.0.0/8"), false},
		{"[::ffff:127.0.0.1]:5000", p("127.0.0.0/8"), true}, // dual-stack listener
		{"127.0.0.1:5000", p("::ffff:127.0.0.0/104"), true}, // mapped prefix
		{"[::ffff:10.1.2.3]:5000", p("::ffff:127.0.0.0/104"), false},
		{"[::1]:5000", p("127.0.0.0/8"), false},
		{"[::1]:5000", p("::1/128"), true},
		{"[fe80::1%eth0]:5000", p("fe80::/10"), true},
		{"[2001:db8::5]:443", p("10.0.0.0/8", "2001:db8::/32"), true},
		{"@", p("0.0.0.0/0"), false},
		{"", p("0.0.0.0/0", "::/0"), false},
		{"203.0.113.9:1", p("0.0.0.0/0"), true},
	} {
		if _, got := sourceAllowed(c.remote, c.allow); got != c.want {
			t.Errorf("sourceAllowed(%q, %v) = %v, want %v", c.remote, c.allow, got, c.want)
		}
	}
}

func TestAPIBadBodies(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newAPIFixture(t, 43040, nil)
	defer f.close()

	for _, c := range []struct {
		body, code, inMsg string
		status            int
	}{
		{`{"maxParticipants":`, apiCodeBadRequest, "malformed JSON", 400},
		{`{bad}`, apiCodeBadRequest, "malformed JSON", 400},
		{`{"maxParticipant":2}`, apiCodeBadRequest, `unknown field "maxParticipant"`, 400},
		{`{"maxParticipants":"two"}`, apiCodeBadRequest, `"maxParticipants" must be a number`, 400},
		{`[]`, apiCodeBadRequest, "JSON object", 400},
		{`{} {}`, apiCodeBadRequest, "after it", 400},
		{`{}x`, apiCodeBadRequest, "after it", 400},
		{`{"maxParticipants":-1}`, apiCodeBadRequest, "maxParticipants", 400},
		{`{"ttlSeconds":-5}`, apiCodeBadRequest, "ttlSeconds", 400},
		{`{"metadata":"text"}`, apiCodeBadRequest, "metadata must be a JSON object", 400},
		{`{"metadata":{"k":"` + strings.Repeat("x", 9<<10) + `"}}`, apiCodeBadRequest, "limit is 8192", 400},
		{`{"metadata":{"k":"` + strings.Repeat("x", 1<<20) + `"}}`, apiCodeTooLarge, "65536", 413},
		{strings.Repeat(" ", 1<<20) + `{}`, apiCodeTooLarge, "65536", 413},
	} {
		msg := wantError(t, f.authed("POST", "/v1/calls", c.body), c.status, c.code)
		if !strings.Contains(msg, c.inMsg) {
			t.Errorf("body %.40q: message %q lacks %q", c.body, msg, c.inMsg)
		}
	}
	if n := len(f.rooms.List()); n != 0 {
		t.Fatalf("bad requests created %d calls", n)
	}
	// Empty and trailing-whitespace bodies are fine; metadata may be null.
	for _, body := range []string{"", "{}\n", `{"metadata":null}`} {
		r := f.authed("POST", "/v1/calls", body)
		if r.status != http.StatusCreated {
			t.Fatalf("body %q: %d %s", body, r.status, r.body)
		}
		var sc startCallResponse
		_ = json.Unmarshal(r.body, &sc)
		f.authed("DELETE", "/v1/calls/"+sc.State.EventID, "")
	}
}

func TestAPIParticipantToken(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newAPIFixture(t, 43050, func(c *Config) {
		c.ICEServers = func(call, id string) []ICEServer {
			return []ICEServer{{URLs: []string{"turn:127.0.0.1:3478"}, Username: call + ":" + id, Credential: "c"}}
		}
	})
	defer f.close()
	a, b := f.startCall(), f.startCall()

	r := f.authed("POST", "/v1/calls/"+a.State.EventID+"/participants", `{"id":"alice"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got, want := jsonKeys(t, r.body), []string{"token", "expiresAt", "signalingUrl", "iceServers"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %v", got)
	}
	var g addParticipantResponse
	_ = json.Unmarshal(r.body, &g)
	claims, err := f.srv.tokens.parse(g.Token)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Call != a.State.EventID || claims.Subject != "alice" || !claims.Publish {
		t.Fatalf("claims %+v", claims)
	}
	if claims.Call == b.State.EventID {
		t.Fatal("token opens the other call")
	}
	exp, err := time.Parse(time.RFC3339, g.ExpiresAt)
	if err != nil || exp.Sub(claims.ExpiresAt.Time).Abs() > time.Second {
		t.Fatalf("expiresAt %q vs token %v", g.ExpiresAt, claims.ExpiresAt)
	}
	if g.SignalingURL != "wss://calls.example.com/v1/rtc" || len(g.ICEServers) != 1 ||
		g.ICEServers[0].Username != a.State.EventID+":alice" {
		t.Fatalf("grant %+v", g)
	}

	r = f.authed("POST", "/v1/calls/"+b.State.EventID+"/participants", `{"id":"bob@example.com","publish":false}`)
	_ = json.Unmarshal(r.body, &g)
	if claims, err := f.srv.tokens.parse(g.Token); err != nil || claims.Publish || claims.Call != b.State.EventID || claims.Subject != "bob@example.com" {
		t.Fatalf("receive-only token: %+v %v", claims, err)
	}

	// Without TURN the list is empty, never null.
	f.srv.cfg.ICEServers = func(string, string) []ICEServer { return nil }
	r = f.authed("POST", "/v1/calls/"+a.State.EventID+"/participants", `{"id":"carol"}`)
	if !bytes.HasSuffix(r.body, []byte(`"iceServers":[]}`+"\n")) {
		t.Fatalf("iceServers: %s", r.body)
	}

	for _, body := range []string{`{"id":"a b"}`, `{"id":""}`, `{"id":"` + strings.Repeat("x", 65) + `"}`,
		`{"id":"é"}`, `{}`, ``, `{"id":"x","admin":true}`, `{"id":"x","publish":"yes"}`} {
		wantError(t, f.authed("POST", "/v1/calls/"+a.State.EventID+"/participants", body), http.StatusBadRequest, apiCodeBadRequest)
	}
	wantError(t, f.authed("POST", "/v1/calls/00000000000000000000000000000000/participants", `{"id":"alice"}`),
		http.StatusNotFound, apiCodeCallNotFound)
}

// apiNopHandler stands in for a client session.
type apiNopHandler struct{}

func (apiNopHandler) SubscribeOffer(string)                 {}
func (apiNopHandler) Speakers([]sfu.SpeakerInfo, string)    {}
func (apiNopHandler) ParticipantJoined(sfu.ParticipantInfo) {}
func (apiNopHandler) ParticipantLeft(string)                {}
func (apiNopHandler) TrackPublished(string, sfu.TrackInfo)  {}
func (apiNopHandler) TrackUnpublished(string, string)       {}
func (apiNopHandler) TrackMuted(string, string, bool)       {}
func (apiNopHandler) Closed(string)                         {}

func TestAPIGetListAndRemove(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newAPIFixture(t, 43060, nil)
	defer f.close()

	a := f.startCall()
	r := f.authed("POST", "/v1/calls", `{"maxParticipants":3,"metadata":{"room":"r1"}}`)
	var b startCallResponse
	_ = json.Unmarshal(r.body, &b)

	r = f.authed("GET", "/v1/calls", "")
	var list struct{ Calls []map[string]json.RawMessage }
	if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 || len(list.Calls) != 2 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if string(list.Calls[0]["eventId"]) != `"`+a.State.EventID+`"` || string(list.Calls[1]["metadata"]) != `{"room":"r1"}` {
		t.Fatalf("list order or metadata: %s", r.body)
	}

	r = f.authed("GET", "/v1/calls/"+a.State.EventID, "")
	want := []string{"eventId", "roomURI", "roomURI_ipv6", "ports", "createdAt", "expiresAt", "maxParticipants", "participants"}
	if got := jsonKeys(t, r.body); r.status != 200 || !reflect.DeepEqual(got, want) {
		t.Fatalf("call info keys %v (%d %s)", got, r.status, r.body)
	}
	if !bytes.Contains(r.body, []byte(`"participants":[]`)) || !bytes.Contains(r.body, []byte(`"roomURI":"127.0.0.1:43060"`)) {
		t.Fatalf("call info %s", r.body)
	}

	room, _ := f.rooms.Get(a.State.EventID)
	if _, err := room.Join("dave", apiNopHandler{}); err != nil {
		t.Fatal(err)
	}
	r = f.authed("GET", "/v1/calls/"+a.State.EventID, "")
	var ci struct {
		MaxParticipants int
		Participants    []sfu.ParticipantInfo
	}
	_ = json.Unmarshal(r.body, &ci)
	if ci.MaxParticipants != 4 || len(ci.Participants) != 1 || ci.Participants[0].ID != "dave" || ci.Participants[0].Tracks == nil {
		t.Fatalf("call info %s", r.body)
	}
	if r := f.authed("DELETE", "/v1/calls/"+a.State.EventID+"/participants/dave", ""); r.status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	if room.HasParticipant("dave") {
		t.Fatal("participant still in the call")
	}
	wantError(t, f.authed("DELETE", "/v1/calls/"+a.State.EventID+"/participants/dave", ""), http.StatusNotFound, apiCodeParticipantNotFound)
	wantError(t, f.authed("DELETE", "/v1/calls/"+strings.Repeat("0", 32)+"/participants/dave", ""), http.StatusNotFound, apiCodeCallNotFound)
	wantError(t, f.authed("GET", "/v1/calls/"+strings.Repeat("0", 32), ""), http.StatusNotFound, apiCodeCallNotFound)
}
