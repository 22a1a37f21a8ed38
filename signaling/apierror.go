package signaling

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// Error codes of the HTTP API. They are part of the API contract (openapi.yaml
// lists them): the messaging server branches on the code, the message is for
// people.
const (
	apiCodeBadRequest          = "bad_request"
	apiCodeTooLarge            = "too_large"
	apiCodeUnauthorized        = "unauthorized"
	apiCodeForbiddenSource     = "forbidden_source"
	apiCodeNotFound            = "not_found"
	apiCodeMethodNotAllowed    = "method_not_allowed"
	apiCodeCallNotFound        = "call_not_found"
	apiCodeParticipantNotFound = "participant_not_found"
	apiCodeNoCapacity          = "no_capacity"
	apiCodeShuttingDown        = "shutting_down"
	apiCodeDraining            = "draining"
	apiCodeClusterUnavailable  = "cluster_unavailable"
	apiCodePeerUnreachable     = "peer_unreachable"
	apiCodeInternal            = "internal"
)

// apiError is the one error shape of the API: {"error":{"code":…,"message":…}}.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeJSON writes v as the whole response. It encodes before writing the
// status so an unencodable value becomes a clean 500, not a half-sent 200.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		buf.Reset()
		status = http.StatusInternalServerError
		_ = json.NewEncoder(&buf).Encode(apiError{apiErrorBody{apiCodeInternal, "response could not be encoded"}})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Answers carry join tokens and live call state: never cache them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError writes the API's error shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, apiError{apiErrorBody{Code: code, Message: message}})
}
