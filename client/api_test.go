package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

const startCallBody = `{"cluster":"enterprise","state":{"eventId":"5bda4906dd4d41ff996ada256cef5308","roomURI_ipv6":"","pid":"f985","roomURI":"12.34.56.78:16384"},"signalingUrl":"wss://calls.example.com/v1/rtc","expiresAt":"2030-01-02T03:04:05Z"}`

const callInfoBody = `{"eventId":"5bda4906dd4d41ff996ada256cef5308","roomURI":"12.34.56.78:16384","roomURI_ipv6":"",
"createdAt":"2030-01-02T02:04:05Z","expiresAt":"2030-01-02T03:04:05Z","maxParticipants":50,
"participants":[{"id":"alice","joinedAt":"2030-01-02T02:05:00Z","transport":"udp","tracks":[{"id":"alice-audio","kind":"audio","muted":true}]}]}`

// fakeAPI serves the contract of the messaging-server API.
func fakeAPI(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer s3cret" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `{"error":{"code":"forbidden","message":"bad secret"}}`)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("POST /v1/calls", auth(func(w http.ResponseWriter, r *http.Request) {
		var opts CreateCallOptions
		if err := json.NewDecoder(r.Body).Decode(&opts); err != nil && !errors.Is(err, io.EOF) {
			t.Errorf("create body: %v", err)
		}
		if opts.MaxParticipants == 99 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"code":"no_capacity","message":"raise --max-calls"}}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, startCallBody)
	}))
	mux.HandleFunc("POST /v1/calls/{id}/participants", auth(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ ID string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		if r.PathValue("id") != "abc" || body.ID != "alice" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("add participant %s %q", r.PathValue("id"), body.ID)
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"token":"tok","expiresAt":"2030-01-02T03:04:05Z","signalingUrl":"wss://x/v1/rtc",
			"iceServers":[{"urls":["turns:x:443?transport=tcp"],"username":"u","credential":"c"}]}`)
	}))
	mux.HandleFunc("GET /v1/calls", auth(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"calls":[`+callInfoBody+`]}`)
	}))
	mux.HandleFunc("GET /v1/calls/{id}", auth(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "5bda4906dd4d41ff996ada256cef5308" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":"call_not_found","message":"no such call"}}`)
			return
		}
		_, _ = io.WriteString(w, callInfoBody)
	}))
	mux.HandleFunc("DELETE /v1/calls/{id}", auth(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("DELETE /v1/calls/{id}/participants/{pid}", auth(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("pid") != "bob smith" {
			t.Errorf("remove participant %q", r.PathValue("pid"))
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestAPIClient(t *testing.T) {
	srv := fakeAPI(t)
	a := &APIClient{BaseURL: srv.URL + "/", Secret: "s3cret", HTTPClient: srv.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	sc, err := a.CreateCall(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(sc.Raw) != startCallBody {
		t.Errorf("raw body %s", sc.Raw)
	}
	if sc.Cluster != "enterprise" || sc.State.EventID != "5bda4906dd4d41ff996ada256cef5308" || sc.State.PID != "f985" ||
		sc.State.RoomURI != "12.34.56.78:16384" || sc.SignalingURL != "wss://calls.example.com/v1/rtc" ||
		!sc.ExpiresAt.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("start call %+v", sc)
	}

	_, err = a.CreateCall(ctx, &CreateCallOptions{MaxParticipants: 99, TTLSeconds: 60, Metadata: map[string]any{"k": "v"}})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "no_capacity" || ae.Message != "raise --max-calls" {
		t.Errorf("503: %v", err)
	}

	g, err := a.AddParticipant(ctx, "abc", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if g.Token != "tok" || len(g.ICEServers) != 1 || g.ICEServers[0].URLs[0] != "turns:x:443?transport=tcp" ||
		g.ICEServers[0].Credential != "c" {
		t.Errorf("grant %+v", g)
	}

	calls, err := a.ListCalls(ctx)
	if err != nil || len(calls) != 1 {
		t.Fatalf("list: %v %+v", err, calls)
	}
	ci, err := a.GetCall(ctx, calls[0].EventID)
	if err != nil {
		t.Fatal(err)
	}
	if ci.MaxParticipants != 50 || len(ci.Participants) != 1 || ci.Participants[0].Transport != "udp" ||
		!ci.Participants[0].Tracks[0].Muted {
		t.Errorf("call info %+v", ci)
	}
	_, err = a.GetCall(ctx, "missing")
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "call_not_found" {
		t.Errorf("404: %v", err)
	}

	if err := a.EndCall(ctx, "abc"); err != nil {
		t.Error(err)
	}
	if err := a.RemoveParticipant(ctx, "abc", "bob smith"); err != nil {
		t.Error(err)
	}

	bad := &APIClient{BaseURL: srv.URL, Secret: "wrong", HTTPClient: srv.Client()}
	err = bad.EndCall(ctx, "abc")
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Code != "forbidden" || string(ae.Body) == "" {
		t.Errorf("403: %v", err)
	}
	t.Log(err)
}
