package cluster

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Config configures one node's membership.
type Config struct {
	// Endpoints are etcd client URLs (http://10.0.0.5:2379, …). Required.
	Endpoints []string
	// Prefix roots every key this cluster writes (default "/orville/"), so
	// several clusters can share one etcd.
	Prefix string
	// LeaseTTL is how long a node may go silent before its registration and
	// its calls' pins vanish (default 10 s). Whole seconds (etcd's unit), at
	// least 2 s: keep-alives go every TTL/3 and must survive one lost round trip.
	LeaseTTL time.Duration
	// OpTimeout bounds every etcd request (default min(2 s, LeaseTTL/2)).
	OpTimeout time.Duration
	// LoadInterval is how often the node's load is written (default 2 s);
	// Poke writes it sooner, at most every MinLoadInterval (100 ms).
	LoadInterval time.Duration

	// Self is this node's identity and addresses; Self.ID is required.
	Self NodeInfo
	// Load samples this node's load; required.
	Load func() Load
	// LocalCalls lists the calls this node owns, re-pinned after a new
	// lease (etcd lost and back); required.
	LocalCalls func() []string
	// Alive, if set, asks a node whose lease expired which of calls it still
	// runs (it may only have lost etcd, and pins them again when etcd is
	// back); those are not reported lost. Nil counts every call as lost.
	Alive func(n Node, calls []string) (running []string)
	// OnNodeLost, if set, runs once per lost node across the cluster (on the
	// survivor that claimed the loss) with the calls that node had.
	OnNodeLost func(node string, calls []string)

	Logger *zap.Logger
}

// minLoadInterval bounds how often pokes write the load record.
const minLoadInterval = 100 * time.Millisecond

func (c *Config) validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("cluster: at least one etcd endpoint is required")
	}
	for _, e := range c.Endpoints {
		if strings.TrimSpace(e) == "" {
			return errors.New("cluster: empty etcd endpoint")
		}
	}
	if c.Self.ID == "" || strings.Contains(c.Self.ID, "/") {
		return fmt.Errorf("cluster: node id %q must be non-empty and contain no /", c.Self.ID)
	}
	if c.Load == nil || c.LocalCalls == nil || c.Logger == nil {
		return errors.New("cluster: Load, LocalCalls and Logger are required")
	}
	if c.Prefix == "" {
		c.Prefix = "/orville/"
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.LeaseTTL < 2*time.Second || c.LeaseTTL%time.Second != 0 {
		return fmt.Errorf("cluster: lease TTL %v must be whole seconds, at least 2 s", c.LeaseTTL)
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = min(2*time.Second, c.LeaseTTL/2)
	}
	if c.LoadInterval <= 0 {
		c.LoadInterval = 2 * time.Second
	}
	return nil
}
