package web_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"github.com/orville/orville/internal/browsertest"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/orville/orville/client"
	"github.com/orville/orville/internal/netnstest"
	"github.com/orville/orville/internal/tlsutil"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"github.com/orville/orville/web"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Browser tests run Debian's Chromium headless with a fake camera and
// microphone. Ports 46100–46199 (media) are this package's; HTTP servers use
// ephemeral loopback ports.

const apiSecret = "web-test-api-secret-0123456789"

// callServer is the whole server in-process on loopback, with the web
// client at / (plus the RFC 9605 vectors at /test-vectors.json, tests only).
type callServer struct {
	rooms *roommgr.Manager
	sig   *signaling.Server
	rtc   *httptest.Server
	api   *httptest.Server
	apiC  *client.APIClient
	spki  string // for --ignore-certificate-errors-spki-list
	base  string // https://127.0.0.1:port
	conns *trackingListener
}

// trackingListener remembers the client port's connections, so that a test
// can cut them from the server's side.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// cutAll closes every connection accepted so far (WebSockets included).
func (l *trackingListener) cutAll() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.conns)
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
	return n
}

func startCallServer(t *testing.T, portStart int, tap func(participant, trackID string, payload []byte)) *callServer {
	t.Helper()
	return startCallServerIn(t, portStart, tap, nil, "127.0.0.1")
}

// startCallServerIn runs the server's media sockets and client port on ip
// inside ns (nil: the test's own namespace); the API stays on loopback.
func startCallServerIn(t *testing.T, portStart int, tap func(participant, trackID string, payload []byte), ns *netnstest.NS, ip string) *callServer {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	rc := roommgr.Config{PortStart: portStart, MaxCalls: 2, MaxParticipants: 5,
		ListenIP: net.ParseIP(ip), PublicIP: ip, NodeID: "web1",
		EmptyTimeout: time.Minute, LeaveGrace: time.Second, MaxCallDuration: time.Hour, Logger: log, Tap: tap}
	var ln net.Listener
	if ns != nil {
		n, err := ns.Net()
		if err != nil {
			t.Fatal(err)
		}
		rc.Net = n
		if ln, err = ns.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
			t.Fatal(err)
		}
	}
	rooms, err := roommgr.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tlsutil.SelfSigned([]string{ip}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := &callServer{rooms: rooms, spki: tlsutil.SPKIHash(cert.Leaf)}
	s.rtc = httptest.NewUnstartedServer(nil)
	if ln != nil {
		_ = s.rtc.Listener.Close()
		s.rtc.Listener = ln
	}
	s.conns = &trackingListener{Listener: s.rtc.Listener}
	s.rtc.Listener = s.conns
	s.rtc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.rtc.StartTLS()
	s.base = "https://" + s.rtc.Listener.Addr().String()

	vectors, err := os.ReadFile("../e2ee/testdata/test-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	site := http.NewServeMux()
	site.Handle("GET /", web.Handler())
	site.HandleFunc("GET /test-vectors.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(vectors)
	})
	s.sig, err = signaling.New(signaling.Config{Rooms: rooms, APISecret: apiSecret,
		APIAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, SignalingURL: "wss" + strings.TrimPrefix(s.base, "https") + "/v1/rtc",
		Logger: log, Web: site})
	if err != nil {
		t.Fatal(err)
	}
	s.rtc.Config.Handler = s.sig.ClientHandler()
	s.api = httptest.NewTLSServer(s.sig.APIHandler())
	s.apiC = &client.APIClient{BaseURL: s.api.URL, Secret: apiSecret, HTTPClient: s.api.Client()}
	t.Cleanup(func() {
		s.sig.Close()
		rooms.Close()
		s.api.Close()
		s.rtc.Close()
	})
	return s
}

func (s *callServer) createCall(t *testing.T) string {
	t.Helper()
	sc, err := s.apiC.CreateCall(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sc.State.EventID
}

func (s *callServer) token(t *testing.T, call, id string) string {
	t.Helper()
	return s.namedToken(t, call, id, "")
}

// namedToken is a join token with a display name.
func (s *callServer) namedToken(t *testing.T, call, id, name string) string {
	t.Helper()
	g, err := s.apiC.AddNamedParticipant(context.Background(), call, id, name)
	if err != nil {
		t.Fatal(err)
	}
	return g.Token
}

// callURL is the link a participant opens: the token in the query, the
// secret in the fragment.
func (s *callServer) callURL(token, secret string) string {
	u := s.base + "/?token=" + token
	if secret != "" {
		u += "#key=" + secret
	}
	return u
}

// browser is one headless Chromium process with one tab.
type browser struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu   sync.Mutex
	sent []string // request URLs and WebSocket messages the page sent
}

// sentToServer returns every request URL (as sent: without the fragment)
// and every WebSocket message the page sent so far.
func (b *browser) sentToServer() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.sent...)
}

func newBrowser(t *testing.T, name string, s *callServer, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	browsertest.Require(t)
	opts := append(browsertest.Options(s.spki, t.TempDir()), extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, name: name, ctx: ctx}
	// The page's console and exceptions are printed when the test fails.
	var mu sync.Mutex
	var logs []string
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() {
			t.Logf("%s console:\n%s", name, strings.Join(logs, "\n"))
		}
	})
	listen := func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			line = "console." + string(e.Type) + ": " + strings.Join(parts, " ")
		case *network.EventRequestWillBeSent:
			b.record(e.Request.URL)
			return
		case *network.EventWebSocketFrameSent:
			b.record(string(e.Response.PayloadData))
			return
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			line = fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, d.Text)
			if d.Exception != nil {
				line += " " + d.Exception.Description
			}
		default:
			return
		}
		mu.Lock()
		if len(logs) < 200 {
			logs = append(logs, line)
		}
		mu.Unlock()
	}
	// chromedp enables the Network domain of each tab it attaches to.
	if err := chromedp.Listen(ctx, listen); err != nil { // starts the browser
		t.Fatalf("%s: start chromium: %v", name, err)
	}
	return b
}

const maxRecorded = 10000 // bounds what a browser's recorder keeps

func (b *browser) record(s string) {
	b.mu.Lock()
	if len(b.sent) < maxRecorded {
		b.sent = append(b.sent, s)
	}
	b.mu.Unlock()
}

func (b *browser) navigate(url string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := chromedp.Do(ctx, chromedp.Navigate(url))
		if err == nil {
			return
		}
		// A network namespace made just before the browser started can
		// still announce changes (links, routes): Chromium then fails the
		// load in flight, and a person would reload.
		if !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") || attempt == 3 {
			b.t.Fatalf("%s: open %s: %v", b.name, url, err)
		}
		b.t.Logf("%s: %v; loading again", b.name, err)
		time.Sleep(500 * time.Millisecond)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into T.
func eval[T any](b *browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

func mustEval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := eval[T](b, expr)
	if err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, expr, err)
	}
	return v
}

// pageStats is window.orville.stats().
type pageStats struct {
	State           string `json:"state"`
	Transport       string `json:"transport"`
	E2EE            bool   `json:"e2ee"`
	ParticipantID   string `json:"participantId"`
	ScriptTransform bool   `json:"scriptTransform"`
	KeySwitches     int    `json:"keySwitches"`
	// KeyFrameOnSwitch says how the last key switch got its key frame:
	// "generateKeyFrame", "reactivate", or "" before any switch.
	KeyFrameOnSwitch string `json:"keyFrameOnSwitch"`
	Camera           *struct {
		Width  int `json:"width"`
		Height int `json:"height"`
	} `json:"camera"`
	Tracks []trackStats `json:"tracks"`
	// The meeting page's state: names, decryption, resumes and restarts.
	Name         string `json:"name"`
	Participants []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"participants"`
	DecryptFailing []string           `json:"decryptFailing"`
	ICERestarts    int                `json:"iceRestarts"`
	Resumes        int                `json:"resumes"`
	LoopbackOnly   bool               `json:"loopbackOnly"`
	SpeakerSource  string             `json:"speakerSource"`
	Levels         map[string]float64 `json:"levels"`
}

type trackStats struct {
	Kind            string `json:"kind"`
	Source          string `json:"source"` // camera or screen
	Participant     string `json:"participant"`
	FramesDecoded   int    `json:"framesDecoded"`
	PacketsReceived int    `json:"packetsReceived"`
	FramesReceived  int    `json:"framesReceived"`
	DecryptFailures int    `json:"decryptFailures"`
	FramesDecrypted int    `json:"framesDecrypted"`
}

func (b *browser) stats() pageStats {
	b.t.Helper()
	return mustEval[pageStats](b, "window.orville.stats()")
}

func (s pageStats) track(participant, kind string) *trackStats {
	for i := range s.Tracks {
		if s.Tracks[i].Participant == participant && s.Tracks[i].Kind == kind {
			return &s.Tracks[i]
		}
	}
	return nil
}

// waitStats polls stats until ok holds or the deadline passes.
func (b *browser) waitStats(d time.Duration, what string, ok func(pageStats) bool) pageStats {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := b.stats()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: no %s within %v; stats %+v", b.name, what, d, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s pageStats) String() string {
	return fmt.Sprintf("{state %s transport %q e2ee %v id %s key switches %d (key frame by %q) tracks %+v}",
		s.State, s.Transport, s.E2EE, s.ParticipantID, s.KeySwitches, s.KeyFrameOnSwitch, s.Tracks)
}
