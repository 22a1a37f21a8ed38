package signaling

import (
	"context"
	"net/http"
	"strconv"
)

// callStore is how the API reaches calls. localCalls holds this node's room
// manager; in a cluster, clusterCalls finds each call's owner and speaks to
// other nodes through peerCalls, the remote implementation. The handlers
// decode and validate requests, then ask the store.
type callStore interface {
	create(ctx context.Context, req createCallRequest) (startCallResponse, *apiErr)
	list(ctx context.Context) (callList, *apiErr)
	get(ctx context.Context, id string) (callInfo, *apiErr)
	end(ctx context.Context, id string) *apiErr
	addParticipant(ctx context.Context, id string, req addParticipantRequest) (addParticipantResponse, *apiErr)
	removeParticipant(ctx context.Context, id, participant string) *apiErr
}

// callList is GET /v1/calls. Errors name the nodes of a cluster that did not
// answer, whose calls are missing from the list.
type callList struct {
	Calls  []callInfo `json:"calls"`
	Errors []string   `json:"errors,omitempty"`
}

// apiErr is an API refusal on its way to the client: status and the error
// shape's code and message. Remote nodes' refusals pass through as they are.
type apiErr struct {
	status  int
	code    string
	message string
	// retryAfter, if set, is sent as Retry-After (seconds, RFC 9110 §10.2.3).
	retryAfter int
}

func (e *apiErr) write(w http.ResponseWriter) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeError(w, e.status, e.code, e.message)
}

func errorf(status int, code, message string) *apiErr {
	return &apiErr{status: status, code: code, message: message}
}
