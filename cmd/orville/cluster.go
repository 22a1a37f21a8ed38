package main

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orville/orville/cluster"
	"github.com/orville/orville/events"
	"github.com/orville/orville/internal/config"
	"github.com/orville/orville/metrics"
	"github.com/orville/orville/roommgr"
	"github.com/orville/orville/signaling"
	"go.uber.org/zap"
)

// clusterNode wires package cluster to this process: the node's identity and
// addresses, its load figures, its calls, and the API server that answers
// for node losses. Built only with --etcd-endpoints.
type clusterNode struct {
	*cluster.Cluster
	sig atomic.Pointer[signaling.Server] // set once the API server exists
}

// nodeLostReason is call.ended's reason for the calls of a node whose lease
// expired (it died, or lost etcd and no longer has them).
const nodeLostReason = "node_lost"

func newClusterNode(cfg *config.Config, cert tls.Certificate, rooms *roommgr.Manager, mets *metrics.Metrics,
	pub events.Publisher, log *zap.Logger) (*clusterNode, error) {
	if len(cfg.EtcdEndpoints) == 0 {
		return nil, nil
	}
	var ips []string
	for _, a := range []string{addrString(cfg.PublicIP), addrString(cfg.PublicIPv6)} {
		if a != "" {
			ips = append(ips, a)
		}
	}
	fp := sha256.Sum256(cert.Certificate[0])
	n := &clusterNode{}
	load := &loadSampler{rooms: rooms, mets: mets, draining: rooms.Draining}
	c, err := cluster.New(cluster.Config{
		Endpoints: cfg.EtcdEndpoints, Prefix: cfg.EtcdPrefix, LeaseTTL: cfg.EtcdLeaseTTL,
		Self: cluster.NodeInfo{ID: cfg.NodeID, APIURL: cfg.PeerAPIURL(), CertSHA256: hex.EncodeToString(fp[:]),
			SignalingURL: cfg.SignalingURL(), MediaIPs: ips, MaxCalls: cfg.MaxCalls, Version: version},
		Load: load.sample,
		LocalCalls: func() []string {
			var ids []string
			for _, r := range rooms.List() {
				ids = append(ids, r.ID)
			}
			return ids
		},
		Alive: func(node cluster.Node, calls []string) []string {
			if s := n.sig.Load(); s != nil {
				return s.RunningOn(node, calls)
			}
			return nil
		},
		// One survivor (the one that claimed the loss in etcd) publishes the
		// lost calls' call.ended, so webhooks and metrics see each once.
		OnNodeLost: func(node string, calls []string) {
			for _, id := range calls {
				log.Warn("call ended: its node was lost", zap.String("call", id), zap.String("node", node),
					zap.String("reason", nodeLostReason))
				pub.Publish(events.Event{Type: events.CallEnded, CallID: id, Reason: nodeLostReason})
			}
		},
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	n.Cluster = c
	return n, nil
}

// loadSampler turns the room manager's and the metrics' running totals into
// the figures a node registers; rates are over the time since the last
// sample.
type loadSampler struct {
	rooms    *roommgr.Manager
	mets     *metrics.Metrics
	draining func() bool

	mu          sync.Mutex
	at          time.Time
	packets     float64
	cpu         time.Duration
	pps, cpuUse float64
}

// minRateWindow keeps rates from being computed over a sliver of time when
// a poke follows a periodic sample closely.
const minRateWindow = 500 * time.Millisecond

func (l *loadSampler) sample() cluster.Load {
	now, packets, cpu := time.Now(), l.mets.Packets(), processCPU()
	l.mu.Lock()
	if dt := now.Sub(l.at); !l.at.IsZero() && dt >= minRateWindow {
		l.pps = (packets - l.packets) / dt.Seconds()
		l.cpuUse = (cpu - l.cpu).Seconds() / dt.Seconds() / float64(runtime.NumCPU())
	}
	if l.at.IsZero() || now.Sub(l.at) >= minRateWindow {
		l.at, l.packets, l.cpu = now, packets, cpu
	}
	pps, cpuUse := l.pps, l.cpuUse
	l.mu.Unlock()
	return cluster.Load{
		PairsFree: l.rooms.PairsFree(), Calls: l.rooms.PairsInUse(), Participants: l.rooms.ParticipantCount(),
		PacketsPerSecond: pps, CPU: cpuUse, Draining: l.draining != nil && l.draining(),
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// callEnded removes a call's pin (roommgr's OnEnd). Nil-safe: no cluster.
func (n *clusterNode) callEnded(id string) {
	if n != nil {
		n.Unpin(id)
	}
}

// coordinator is the API's view of the cluster: nil for a single node (not
// a nil *clusterNode, which would be a non-nil interface).
func (n *clusterNode) coordinator() signaling.Coordinator {
	if n == nil {
		return nil
	}
	return n.Cluster
}

// serving hands the node the API server that answers other nodes' questions.
func (n *clusterNode) serving(s *signaling.Server) {
	if n != nil {
		n.sig.Store(s)
	}
}
