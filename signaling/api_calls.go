package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/sfu"
)

// maxMetadataBytes bounds a call's opaque metadata (compacted JSON).
const maxMetadataBytes = 8 << 10

// createCallRequest is the optional body of POST /v1/calls.
type createCallRequest struct {
	MaxParticipants int             `json:"maxParticipants"`
	TTLSeconds      int64           `json:"ttlSeconds"`
	Metadata        json.RawMessage `json:"metadata"`
}

// startCallState and startCallResponse reproduce the reference deployment's
// start-call answer: the first two keys of the response and the key order
// inside "state" are what existing tooling (test-calling, the messaging
// server) expects, so struct field order here is load-bearing.
type startCallState struct {
	EventID     string `json:"eventId"`
	RoomURIIPv6 string `json:"roomURI_ipv6"`
	PID         string `json:"pid"`
	RoomURI     string `json:"roomURI"`
}

type startCallResponse struct {
	Cluster string         `json:"cluster"`
	State   startCallState `json:"state"`
	// Orville's additions, after the reference fields.
	SignalingURL string   `json:"signalingUrl"`
	ExpiresAt    string   `json:"expiresAt"`
	Ports        portPair `json:"ports"`
}

// portPair is a call's UDP ports: publish transports on P, subscribe on P+1.
type portPair struct {
	Publish   int `json:"publish"`
	Subscribe int `json:"subscribe"`
}

// callInfo is GET /v1/calls/{eventId}.
type callInfo struct {
	EventID string `json:"eventId"`
	// PID is the owner's node id, in a cluster only.
	PID             string                `json:"pid,omitempty"`
	RoomURI         string                `json:"roomURI"`
	RoomURIIPv6     string                `json:"roomURI_ipv6"`
	Ports           portPair              `json:"ports"`
	CreatedAt       string                `json:"createdAt"`
	ExpiresAt       string                `json:"expiresAt"`
	MaxParticipants int                   `json:"maxParticipants"`
	Metadata        json.RawMessage       `json:"metadata,omitempty"`
	Participants    []sfu.ParticipantInfo `json:"participants"`
}

type addParticipantRequest struct {
	ID      string `json:"id"`
	Name    string `json:"name"`    // display name, optional
	Publish *bool  `json:"publish"` // absent means true
}

type addParticipantResponse struct {
	Token        string      `json:"token"`
	ExpiresAt    string      `json:"expiresAt"`
	SignalingURL string      `json:"signalingUrl"`
	ICEServers   []ICEServer `json:"iceServers"`
	SOCKS        *socksProxy `json:"socks,omitempty"`
}

// socksProxy is the SOCKS5 relay a client may reach the call through
// (Config.SOCKSAddr); its credentials are the TURN ones.
type socksProxy struct {
	Address  string `json:"address"`
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Server) apiCreateCall(w http.ResponseWriter, r *http.Request) {
	var req createCallRequest
	if err := decodeBody(w, r, &req); err != nil && !errors.Is(err, errEmptyBody) {
		writeBodyError(w, err)
		return
	}
	resp, e := s.storeFor(r).create(r.Context(), req)
	if e != nil {
		e.write(w)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

// createOptions validates a start-call request. Limits above the server's own
// are lowered to them by the room manager, not refused: the messaging server
// need not know this server's configuration.
func (s *Server) createOptions(req createCallRequest) (roommgr.CreateOptions, string) {
	var opts roommgr.CreateOptions
	if req.MaxParticipants < 0 {
		return opts, "maxParticipants must be 0 (server default) or more"
	}
	if req.TTLSeconds < 0 {
		return opts, "ttlSeconds must be 0 (server maximum) or more"
	}
	opts.MaxParticipants = req.MaxParticipants
	// Beyond the maximum duration is the maximum; checking first also keeps
	// the multiplication from overflowing.
	if maxDur := s.rooms.Config().MaxCallDuration; req.TTLSeconds > 0 && req.TTLSeconds < int64(maxDur/time.Second) {
		opts.TTL = time.Duration(req.TTLSeconds) * time.Second
	}
	if meta := bytes.TrimSpace(req.Metadata); len(meta) > 0 && !bytes.Equal(meta, []byte("null")) {
		if meta[0] != '{' {
			return opts, "metadata must be a JSON object"
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, meta); err != nil {
			return opts, "metadata is not valid JSON"
		}
		if buf.Len() > maxMetadataBytes {
			return opts, fmt.Sprintf("metadata is %d bytes; the limit is %d", buf.Len(), maxMetadataBytes)
		}
		opts.Metadata = json.RawMessage(buf.Bytes())
	}
	return opts, ""
}

// roomURIs are the addresses clients are told: the public (advertised) IP,
// else the bind address; IPv6 only when configured.
func (s *Server) roomURIs(port int) (v4, v6 string) {
	rc := s.rooms.Config()
	ip := rc.PublicIP
	if ip == "" && rc.ListenIP != nil {
		ip = rc.ListenIP.String()
	}
	return roommgr.RoomURI(ip, port), roommgr.RoomURI(rc.PublicIPv6, port)
}

func (s *Server) callInfo(room *roommgr.Room) callInfo {
	uri, uri6 := s.roomURIs(room.Port)
	parts := room.ParticipantDetails()
	if parts == nil {
		parts = []sfu.ParticipantInfo{}
	}
	return callInfo{
		EventID: room.ID, RoomURI: uri, RoomURIIPv6: uri6,
		Ports:     portPair{room.Port, room.Port + 1},
		CreatedAt: rfc3339(room.CreatedAt), ExpiresAt: rfc3339(room.ExpiresAt),
		MaxParticipants: room.MaxParticipants, Metadata: room.Metadata, Participants: parts,
	}
}

func (s *Server) apiListCalls(w http.ResponseWriter, r *http.Request) {
	list, e := s.storeFor(r).list(r.Context())
	if e != nil {
		e.write(w)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) apiGetCall(w http.ResponseWriter, r *http.Request) {
	ci, e := s.storeFor(r).get(r.Context(), r.PathValue("eventId"))
	if e != nil {
		e.write(w)
		return
	}
	writeJSON(w, http.StatusOK, ci)
}

func (s *Server) apiEndCall(w http.ResponseWriter, r *http.Request) {
	if e := s.storeFor(r).end(r.Context(), r.PathValue("eventId")); e != nil {
		e.write(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiAddParticipant(w http.ResponseWriter, r *http.Request) {
	store, id := s.storeFor(r), r.PathValue("eventId")
	// An unknown call is 404 before the body is looked at, as on one node.
	if _, e := store.get(r.Context(), id); e != nil {
		e.write(w)
		return
	}
	var req addParticipantRequest
	if err := decodeBody(w, r, &req); err != nil {
		if errors.Is(err, errEmptyBody) {
			err = errors.New(`a body {"id":"…"} is required`)
		}
		writeBodyError(w, err)
		return
	}
	if !participantIDPattern.MatchString(req.ID) {
		writeError(w, http.StatusBadRequest, apiCodeBadRequest,
			"id must be 1–64 characters of A–Z, a–z, 0–9 and . _ @ : -")
		return
	}
	name, msg := displayName(req.Name)
	if msg != "" {
		writeError(w, http.StatusBadRequest, apiCodeBadRequest, msg)
		return
	}
	req.Name = name
	resp, e := store.addParticipant(r.Context(), id, req)
	if e != nil {
		e.write(w)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) apiRemoveParticipant(w http.ResponseWriter, r *http.Request) {
	if e := s.storeFor(r).removeParticipant(r.Context(), r.PathValue("eventId"), r.PathValue("id")); e != nil {
		e.write(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiReadyz says whether a new call would get a port pair, so a load balancer
// can steer calls to a server with room.
func (s *Server) apiReadyz(w http.ResponseWriter, _ *http.Request) {
	if e := s.notReady(); e != nil {
		e.write(w)
		return
	}
	free := s.rooms.PairsFree()
	writeJSON(w, http.StatusOK, struct {
		Status    string `json:"status"`
		CallsFree int    `json:"callsFree"`
	}{"ready", free})
}

// clip bounds a caller-supplied string echoed in an error message.
func clip(s string) string {
	const limit = 80
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}
