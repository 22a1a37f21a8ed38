package signaling

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/orville/orville/cluster"
	"go.uber.org/zap"
)

// Coordinator is what the API needs of the cluster (package cluster's
// *Cluster): membership, each call's owner, and this node's pins.
type Coordinator interface {
	// Self is this node's id (the start-call "pid").
	Self() string
	// Ready is nil while this node is registered and etcd answers.
	Ready() error
	// Nodes lists the live nodes with their load.
	Nodes(ctx context.Context) ([]cluster.Node, error)
	// Owner is the node a call is pinned to (cluster.ErrNoPin if none).
	Owner(ctx context.Context, call string) (cluster.Node, error)
	// Pin records this node as a new call's owner (atomically: never two).
	Pin(ctx context.Context, call string) error
}

// hopHeader marks a request one node sends another on the API listener. Its
// receiver answers from its own calls only: it never places or forwards
// again, so requests cannot loop. The value is the sender's node id, for logs.
const hopHeader = "X-Orville-Node"

// maxPlacementTries bounds how many nodes one start-call request may try
// (a node that died since it last wrote its load refuses at once).
const maxPlacementTries = 3

// storeFor picks the call store for a request.
func (s *Server) storeFor(r *http.Request) callStore {
	if s.clustered == nil || r.Header.Get(hopHeader) != "" {
		return s.local
	}
	return s.clustered
}

// clusterCalls serves every call of the cluster from any node: new calls go
// where the placer says, per-call requests to the call's owner.
type clusterCalls struct {
	s      *Server
	coord  Coordinator
	local  *localCalls
	placer *cluster.Placer
	peers  *peers
}

func (c *clusterCalls) unavailable(err error) *apiErr {
	return errorf(http.StatusServiceUnavailable, apiCodeClusterUnavailable,
		"the cluster's coordinator (etcd) cannot be reached from this node: "+err.Error())
}

func (c *clusterCalls) create(ctx context.Context, req createCallRequest) (startCallResponse, *apiErr) {
	if err := c.coord.Ready(); err != nil {
		return startCallResponse{}, c.unavailable(err)
	}
	nodes, err := c.coord.Nodes(ctx)
	if err != nil {
		return startCallResponse{}, c.unavailable(err)
	}
	ranked := c.placer.Rank(nodes)
	var last *apiErr
	for i, n := range ranked {
		if i == maxPlacementTries {
			break
		}
		var resp startCallResponse
		var e *apiErr
		if n.ID == c.coord.Self() {
			resp, e = c.local.create(ctx, req)
		} else {
			resp, e = c.peers.calls(n).create(ctx, req)
		}
		if e == nil {
			c.placer.Placed(n.ID)
			return resp, nil
		}
		if e.status != http.StatusServiceUnavailable && e.status != http.StatusBadGateway {
			return startCallResponse{}, e // the request itself is wrong: no other node takes it either
		}
		c.s.log.Info("node refused a new call; trying the next", zap.String("node", n.ID), zap.String("code", e.code))
		last = e
	}
	if last != nil && last.code != apiCodeNoCapacity {
		return startCallResponse{}, last
	}
	total := 0
	for _, n := range nodes {
		total += n.MaxCalls
	}
	return startCallResponse{}, errorf(http.StatusServiceUnavailable, apiCodeNoCapacity, fmt.Sprintf(
		"no node of the cluster has room (%d nodes, %d calls in all, none free or all draining): raise --max-calls (ORVILLE_MAX_CALLS) or add nodes",
		len(nodes), total))
}

// owner routes a per-call request: this node's call, else its owner's.
func (c *clusterCalls) owner(ctx context.Context, id string) (callStore, *apiErr) {
	if _, err := c.s.rooms.Get(id); err == nil {
		return c.local, nil
	}
	n, err := c.coord.Owner(ctx, id)
	switch {
	case errors.Is(err, cluster.ErrNoPin):
		return nil, callNotFound(id)
	case err != nil:
		return nil, c.unavailable(err)
	case n.ID == c.coord.Self():
		return nil, callNotFound(id) // pinned here but ended: the pin is on its way out
	}
	return c.peers.calls(n), nil
}

func (c *clusterCalls) get(ctx context.Context, id string) (callInfo, *apiErr) {
	st, e := c.owner(ctx, id)
	if e != nil {
		return callInfo{}, e
	}
	return st.get(ctx, id)
}

func (c *clusterCalls) end(ctx context.Context, id string) *apiErr {
	st, e := c.owner(ctx, id)
	if e != nil {
		return e
	}
	return st.end(ctx, id)
}

func (c *clusterCalls) addParticipant(ctx context.Context, id string, req addParticipantRequest) (addParticipantResponse, *apiErr) {
	st, e := c.owner(ctx, id)
	if e != nil {
		return addParticipantResponse{}, e
	}
	return st.addParticipant(ctx, id, req)
}

func (c *clusterCalls) removeParticipant(ctx context.Context, id, participant string) *apiErr {
	st, e := c.owner(ctx, id)
	if e != nil {
		return e
	}
	return st.removeParticipant(ctx, id, participant)
}

// list asks every live node for its calls, in parallel. A node that does not
// answer is named in Errors; a dead node's registration, and so its calls,
// are gone within its lease TTL.
func (c *clusterCalls) list(ctx context.Context) (callList, *apiErr) {
	nodes, err := c.coord.Nodes(ctx)
	if err != nil {
		own, _ := c.local.list(ctx)
		own.Errors = []string{"etcd unreachable: only this node's calls are listed (" + err.Error() + ")"}
		return own, nil
	}
	lists := make([]callList, len(nodes))
	errs := make([]*apiErr, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n.ID == c.coord.Self() {
				lists[i], errs[i] = c.local.list(ctx)
			} else {
				lists[i], errs[i] = c.peers.calls(n).list(ctx)
			}
		}()
	}
	wg.Wait()
	out := callList{Calls: []callInfo{}}
	for i, n := range nodes {
		if errs[i] != nil {
			out.Errors = append(out.Errors, fmt.Sprintf("node %s did not answer: %s", n.ID, errs[i].message))
			continue
		}
		for _, ci := range lists[i].Calls {
			ci.PID = n.ID
			out.Calls = append(out.Calls, ci)
		}
	}
	// Oldest first, as on one node.
	sort.SliceStable(out.Calls, func(i, j int) bool { return out.Calls[i].CreatedAt < out.Calls[j].CreatedAt })
	return out, nil
}
