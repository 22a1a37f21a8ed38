package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/orville/orville/events"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" where the
// HMAC, keyed with the webhook secret, is over "<t>.<body>". The time is
// the attempt's, so a receiver can refuse stale (replayed) requests.
const SignatureHeader = "X-Orville-Signature"

// payload is the JSON body of one webhook request (docs/webhooks.md).
type payload struct {
	// ID is the event's own id: the same on every attempt, so a receiver
	// de-duplicates retries with it.
	ID   string `json:"id"`
	Type string `json:"type"`
	// Time is when it happened: RFC 3339 UTC with milliseconds.
	Time string `json:"time"`
	// EventID is the call's eventId, as in the start-call answer.
	EventID       string        `json:"eventId"`
	ParticipantID string        `json:"participantId,omitempty"`
	Reason        string        `json:"reason,omitempty"`
	Track         *payloadTrack `json:"track,omitempty"`
	// Node is the node id ("pid") of the server the call runs on.
	Node string `json:"node,omitempty"`
}

type payloadTrack struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

func encode(e events.Event, node string) []byte {
	p := payload{ID: e.ID, Type: string(e.Type), Time: e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		EventID: e.CallID, ParticipantID: e.ParticipantID, Reason: e.Reason, Node: node}
	if e.Track != nil {
		p.Track = &payloadTrack{ID: e.Track.ID, Kind: e.Track.Kind}
	}
	b, _ := json.Marshal(p) // strings only: cannot fail
	return b
}

// Sign returns the X-Orville-Signature value for body sent at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhooks: signature does not match")
	ErrStale        = errors.New("webhooks: signature time is outside the tolerance")
	ErrMalformed    = errors.New("webhooks: malformed signature header")
)

// Verify checks a received request the way a receiver must: the header's
// HMAC matches body (compared in constant time) and its time is within
// tolerance of now. Several v1= values are accepted (any may match), for a
// future secret rotation.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return ErrMalformed
		case k == "t":
			ts = v
		case k == "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrMalformed
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return ErrBadSignature
}
