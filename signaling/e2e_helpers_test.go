package signaling_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/orville/orville/client"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

const testSecret = "test-secret-0123456789abcdef"

var testTokenKey = []byte("test-token-key-0123456789abcdef")

// testServer is the whole server in-process: room manager, API on one TLS
// listener, client channel on another, on loopback.
type testServer struct {
	rooms     *roommgr.Manager
	sig       *signaling.Server
	api       *httptest.Server
	rtc       *httptest.Server
	apiClient *client.APIClient
	wsURL     string

	videoClients []*client.Client // joinVideo's (video_test.go)
}

type serverOpt func(*roommgr.Config, *signaling.Config)

func startServer(t testing.TB, portStart int, opts ...serverOpt) *testServer {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	rcfg := roommgr.Config{PortStart: portStart, MaxCalls: 4, MaxParticipants: 5,
		ListenIP: net.IPv4(127, 0, 0, 1), PublicIP: "127.0.0.1", NodeID: "f985",
		EmptyTimeout: time.Minute, LeaveGrace: 200 * time.Millisecond, MaxCallDuration: time.Hour, Logger: log}
	// A socket that drops keeps its participant for a resume: briefly here,
	// so that tests which just close sockets see the participant go soon.
	scfg := signaling.Config{APISecret: testSecret, TokenSecret: testTokenKey,
		APIAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Logger: log, ResumeGrace: 300 * time.Millisecond}
	for _, o := range opts {
		o(&rcfg, &scfg)
	}
	rooms, err := roommgr.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{rooms: rooms}
	ts.rtc = httptest.NewUnstartedServer(nil)
	ts.rtc.StartTLS()
	ts.wsURL = "wss://" + ts.rtc.Listener.Addr().String() + "/v1/rtc"
	scfg.Rooms, scfg.SignalingURL = rooms, ts.wsURL
	if ts.sig, err = signaling.New(scfg); err != nil {
		t.Fatal(err)
	}
	ts.rtc.Config.Handler = ts.sig.ClientHandler()
	ts.api = httptest.NewTLSServer(ts.sig.APIHandler())
	ts.apiClient = &client.APIClient{BaseURL: ts.api.URL, Secret: testSecret, HTTPClient: ts.api.Client()}
	t.Cleanup(ts.close)
	return ts
}

func (ts *testServer) close() {
	ts.sig.Close()
	ts.rooms.Close()
	ts.api.Close()
	ts.rtc.Close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

func (ts *testServer) createCall(t *testing.T) *client.StartCall {
	t.Helper()
	sc, err := ts.apiClient.CreateCall(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func (ts *testServer) token(t *testing.T, call, id string) string {
	t.Helper()
	g, err := ts.apiClient.AddParticipant(context.Background(), call, id)
	if err != nil {
		t.Fatal(err)
	}
	return g.Token
}

func (ts *testServer) join(t *testing.T, call, id string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Join(ctx, client.Config{SignalingURL: ts.wsURL, Token: ts.token(t, call, id),
		TLSConfig: &tls.Config{InsecureSkipVerify: true}, ParticipantID: id,
		PublishAudio: true, PublishVideo: true, VideoBitrate: 300_000})
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	return c
}
