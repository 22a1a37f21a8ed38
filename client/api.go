package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// maxAPIResponse bounds how much of an API response is read.
const maxAPIResponse = 4 << 20

// APIClient calls the messaging-server HTTP API (TCP 444, DESIGN.md
// "HTTP API"). It is what the messaging server does, for tests and
// `orville test-calling`.
type APIClient struct {
	// BaseURL is e.g. https://calls.example.com:444 (no trailing /v1).
	BaseURL string
	// Secret is sent as "Authorization: Bearer <Secret>".
	Secret string
	// HTTPClient defaults to http.DefaultClient.
	HTTPClient *http.Client
}

// CreateCallOptions is the optional body of POST /v1/calls.
type CreateCallOptions struct {
	MaxParticipants int            `json:"maxParticipants,omitempty"`
	TTLSeconds      int            `json:"ttlSeconds,omitempty"`
	Metadata        map[string]any `json:"metadata,omitempty"`
}

// StartCall is the answer to POST /v1/calls.
type StartCall struct {
	Cluster      string    `json:"cluster"`
	State        CallState `json:"state"`
	SignalingURL string    `json:"signalingUrl"`
	ExpiresAt    time.Time `json:"expiresAt"`
	// Raw is the response body as received (test-calling prints it).
	Raw []byte `json:"-"`
}

// CallState is the "state" object of the start-call answer, in the shape
// operators of the reference deployment know.
type CallState struct {
	EventID     string `json:"eventId"`
	RoomURIIPv6 string `json:"roomURI_ipv6"`
	PID         string `json:"pid"`
	RoomURI     string `json:"roomURI"`
}

// JoinGrant is the answer to POST /v1/calls/{eventId}/participants.
type JoinGrant struct {
	Token        string             `json:"token"`
	ExpiresAt    time.Time          `json:"expiresAt"`
	SignalingURL string             `json:"signalingUrl"`
	ICEServers   []webrtc.ICEServer `json:"iceServers"`
	// SOCKS is the server's SOCKS5 relay, when it runs one (Config.SOCKS).
	SOCKS *SOCKSProxy `json:"socks,omitempty"`
}

// CallInfo is one call as GET /v1/calls and GET /v1/calls/{eventId} show it.
type CallInfo struct {
	EventID         string            `json:"eventId"`
	RoomURI         string            `json:"roomURI"`
	RoomURIIPv6     string            `json:"roomURI_ipv6"`
	CreatedAt       time.Time         `json:"createdAt"`
	ExpiresAt       time.Time         `json:"expiresAt"`
	MaxParticipants int               `json:"maxParticipants"`
	Participants    []CallParticipant `json:"participants"`
}

// CallParticipant is a participant as the API shows it.
type CallParticipant struct {
	ID        string      `json:"id"`
	Name      string      `json:"name,omitempty"`
	JoinedAt  time.Time   `json:"joinedAt"`
	Transport string      `json:"transport"` // udp, tcp or turn
	Tracks    []TrackInfo `json:"tracks"`
}

// APIError is a non-2xx answer. Code and Message come from the stable
// error body {"error":{"code","message"}} when there is one.
type APIError struct {
	Method  string
	Path    string
	Status  int
	Code    string
	Message string
	Body    []byte
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("orville api: %s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// CreateCall starts a call (POST /v1/calls). opts may be nil.
func (a *APIClient) CreateCall(ctx context.Context, opts *CreateCallOptions) (*StartCall, error) {
	var body any
	if opts != nil {
		body = opts
	}
	var sc StartCall
	raw, err := a.do(ctx, http.MethodPost, "/v1/calls", body, http.StatusCreated, &sc)
	if err != nil {
		return nil, err
	}
	sc.Raw = raw
	return &sc, nil
}

// AddParticipant issues a join token for participant id
// (POST /v1/calls/{eventId}/participants).
func (a *APIClient) AddParticipant(ctx context.Context, eventID, id string) (*JoinGrant, error) {
	return a.AddNamedParticipant(ctx, eventID, id, "")
}

// AddNamedParticipant is AddParticipant with a display name ("" for none),
// which the server puts in the token and shows the other participants.
func (a *APIClient) AddNamedParticipant(ctx context.Context, eventID, id, name string) (*JoinGrant, error) {
	var g JoinGrant
	path := "/v1/calls/" + url.PathEscape(eventID) + "/participants"
	body := map[string]string{"id": id}
	if name != "" {
		body["name"] = name
	}
	if _, err := a.do(ctx, http.MethodPost, path, body, http.StatusCreated, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// GetCall describes one call (GET /v1/calls/{eventId}).
func (a *APIClient) GetCall(ctx context.Context, eventID string) (*CallInfo, error) {
	var ci CallInfo
	if _, err := a.do(ctx, http.MethodGet, "/v1/calls/"+url.PathEscape(eventID), nil, http.StatusOK, &ci); err != nil {
		return nil, err
	}
	return &ci, nil
}

// ListCalls lists the running calls (GET /v1/calls).
func (a *APIClient) ListCalls(ctx context.Context) ([]CallInfo, error) {
	var res struct {
		Calls []CallInfo `json:"calls"`
	}
	if _, err := a.do(ctx, http.MethodGet, "/v1/calls", nil, http.StatusOK, &res); err != nil {
		return nil, err
	}
	return res.Calls, nil
}

// EndCall ends a call (DELETE /v1/calls/{eventId}).
func (a *APIClient) EndCall(ctx context.Context, eventID string) error {
	_, err := a.do(ctx, http.MethodDelete, "/v1/calls/"+url.PathEscape(eventID), nil, http.StatusNoContent, nil)
	return err
}

// RemoveParticipant removes a participant from a call
// (DELETE /v1/calls/{eventId}/participants/{id}).
func (a *APIClient) RemoveParticipant(ctx context.Context, eventID, id string) error {
	path := "/v1/calls/" + url.PathEscape(eventID) + "/participants/" + url.PathEscape(id)
	_, err := a.do(ctx, http.MethodDelete, path, nil, http.StatusNoContent, nil)
	return err
}

// do sends one request; a JSON body when in != nil, and decodes a JSON
// answer into out when out != nil. It returns the raw response body.
func (a *APIClient) do(ctx context.Context, method, path string, in any, want int, out any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("orville api: %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.BaseURL, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("orville api: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if a.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+a.Secret)
	}
	hc := a.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("orville api: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse))
	if err != nil {
		return nil, fmt.Errorf("orville api: %s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode != want {
		e := &APIError{Method: method, Path: path, Status: resp.StatusCode, Body: raw}
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		}
		return raw, e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("orville api: %s %s: decode %q: %w", method, path, truncate(raw, 200), err)
		}
	}
	return raw, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
