package signaling

import (
	"fmt"
	"net/http"

	"github.com/orville/orville/roommgr"
)

// drainRetryAfter is the Retry-After (seconds) of a draining server's 503: a
// messaging server behind a load balancer reaches another node at once, one
// talking to this server alone reaches its successor after the restart.
const drainRetryAfter = 10

func errDraining() *apiErr {
	e := errorf(http.StatusServiceUnavailable, apiCodeDraining, roommgr.ErrDraining.Error())
	e.retryAfter = drainRetryAfter
	return e
}

// notReady says why this node would refuse a new call now (etcd out of
// reach in a cluster, draining, no free port pair), or nil.
func (s *Server) notReady() *apiErr {
	if s.clustered != nil {
		if err := s.clustered.coord.Ready(); err != nil {
			return s.clustered.unavailable(err)
		}
	}
	if s.rooms.Draining() {
		return errDraining()
	}
	if s.rooms.PairsFree() <= 0 {
		noCap := &roommgr.NoCapacityError{MaxCalls: s.rooms.Config().MaxCalls}
		return errorf(http.StatusServiceUnavailable, apiCodeNoCapacity, noCap.Error())
	}
	return nil
}

// apiDrain is POST /v1/drain: the node takes no new calls from now on; its
// calls go on (and can be joined) until they end or --drain-timeout, then
// the process exits. Idempotent; there is no undrain.
func (s *Server) apiDrain(w http.ResponseWriter, _ *http.Request) {
	s.rooms.Drain() // the process's drain watcher logs it and counts down
	calls := s.rooms.Count()
	writeJSON(w, http.StatusAccepted, struct {
		Status  string `json:"status"`
		Calls   int    `json:"calls"`
		Message string `json:"message"`
	}{"draining", calls, fmt.Sprintf("no new calls; %d calls in progress go on until they end or the drain timeout, then the server exits", calls)})
}
