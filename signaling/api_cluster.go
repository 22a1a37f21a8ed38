package signaling

import (
	"context"
	"net/http"
	"time"

	"github.com/orville/orville/cluster"
)

// clusterView is GET /v1/cluster.
type clusterView struct {
	// Mode is "etcd" in a cluster, "single" for a node on its own.
	Mode string `json:"mode"`
	// Self is the answering node's id.
	Self string `json:"self"`
	// Ready says whether the answering node takes new calls (registered,
	// etcd answering).
	Ready bool `json:"ready"`
	// Error says why not, or why the node list could not be read.
	Error string         `json:"error,omitempty"`
	Nodes []cluster.Node `json:"nodes"`
}

func (s *Server) apiCluster(w http.ResponseWriter, r *http.Request) {
	if s.clustered == nil {
		n := cluster.Node{NodeInfo: cluster.NodeInfo{ID: s.rooms.Config().NodeID, SignalingURL: s.cfg.SignalingURL,
			MaxCalls: s.rooms.Config().MaxCalls}, UpdatedAt: time.Now().UTC()}
		rc := s.rooms.Config()
		ip := rc.PublicIP
		if ip == "" && rc.ListenIP != nil {
			ip = rc.ListenIP.String()
		}
		for _, a := range []string{ip, rc.PublicIPv6} {
			if a != "" {
				n.MediaIPs = append(n.MediaIPs, a)
			}
		}
		if s.cfg.Load != nil {
			n.Load = s.cfg.Load()
		} else {
			n.Load = cluster.Load{PairsFree: s.rooms.PairsFree(), Calls: s.rooms.PairsInUse()}
		}
		writeJSON(w, http.StatusOK, clusterView{Mode: "single", Self: n.ID, Ready: true, Nodes: []cluster.Node{n}})
		return
	}
	co := s.clustered.coord
	v := clusterView{Mode: "etcd", Self: co.Self(), Nodes: []cluster.Node{}}
	if err := co.Ready(); err != nil {
		v.Error = err.Error()
	} else {
		v.Ready = true
	}
	nodes, err := co.Nodes(r.Context())
	if err != nil {
		v.Ready, v.Error = false, err.Error()
	} else {
		v.Nodes = nodes
	}
	writeJSON(w, http.StatusOK, v)
}

// RunningOn asks node n which of calls it still runs. The cluster asks it
// when n's lease expired: a node that only lost etcd keeps its calls (and
// pins them again when etcd is back), so only calls it no longer has, or all
// of them when it does not answer, are lost.
func (s *Server) RunningOn(n cluster.Node, calls []string) []string {
	if s.clustered == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	list, e := s.clustered.peers.calls(n).list(ctx)
	if e != nil {
		return nil
	}
	has := map[string]bool{}
	for _, ci := range list.Calls {
		has[ci.EventID] = true
	}
	var out []string
	for _, id := range calls {
		if has[id] {
			out = append(out, id)
		}
	}
	return out
}
