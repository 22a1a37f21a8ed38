package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Errors callers branch on.
var (
	// ErrNotRegistered: this node holds no live lease (etcd unreachable, or
	// the lease expired and a new one is not granted yet).
	ErrNotRegistered = errors.New("cluster: this node is not registered in etcd")
	// ErrPinned: the call id is already pinned (to this or another node).
	ErrPinned = errors.New("cluster: call is already pinned")
	// ErrNoPin: no live node owns the call.
	ErrNoPin = errors.New("cluster: no node owns the call")
)

// resyncInterval is how often a node compares its pins with its calls, to
// remove pins of calls that ended while etcd was unreachable.
const resyncInterval = 30 * time.Second

// Cluster is one node's membership: its registration under a lease, its
// pins, and the watch that notices other nodes' leases expiring.
type Cluster struct {
	cfg  Config
	log  *zap.Logger
	cli  *clientv3.Client
	keys keys

	mu       sync.Mutex
	lease    clientv3.LeaseID // 0 while not registered
	aliveAt  time.Time        // last keep-alive answer for lease
	notReady string           // why not registered, for Ready
	dirty    bool             // an unpin failed: resync soon

	poke      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // loops
	unpins    sync.WaitGroup // in-flight unpins
	closeOnce sync.Once
}

// New connects to etcd and starts registering in the background: a node
// whose etcd is unreachable at start serves (not ready) and registers once
// etcd answers.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.OpTimeout,
		// The client's own gRPC keep-alive notices a dead etcd connection
		// within the lease TTL, so the balancer moves to another endpoint.
		DialKeepAliveTime:    cfg.LeaseTTL / 2,
		DialKeepAliveTimeout: cfg.OpTimeout,
		Logger:               cfg.Logger.Named("etcd").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: etcd client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{cfg: cfg, log: cfg.Logger.Named("cluster"), cli: cli, keys: keys{cfg.Prefix},
		notReady: "registering", poke: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	c.wg.Add(2)
	go c.run()
	go c.watch()
	return c, nil
}

// Self is this node's id.
func (c *Cluster) Self() string { return c.cfg.Self.ID }

// LeaseTTL is how long a silent node stays registered.
func (c *Cluster) LeaseTTL() time.Duration { return c.cfg.LeaseTTL }

// Ready says whether this node may take new calls as far as the cluster is
// concerned: it holds a lease that etcd renewed recently — within two
// thirds of the TTL: the client renews every TTL/3 (checked every 500 ms), and
// a node cut off from etcd stops taking calls before its lease runs out.
func (c *Cluster) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease == 0 {
		return fmt.Errorf("%w (%s)", ErrNotRegistered, c.notReady)
	}
	if age := time.Since(c.aliveAt); age > 2*c.cfg.LeaseTTL/3 {
		return fmt.Errorf("%w (etcd last answered %v ago)", ErrNotRegistered, age.Round(time.Second))
	}
	return nil
}

// Poke asks for the load record to be written soon (a call started or ended),
// so that placement on other nodes sees it before the next interval.
func (c *Cluster) Poke() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// Nodes lists the registered nodes, by id. Only live leases hold a
// registration, so a dead node is absent within its TTL.
func (c *Cluster) Nodes(ctx context.Context) ([]Node, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.keys.nodes(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	out := make([]Node, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		n, err := decodeNode(kv.Value)
		if err != nil {
			c.log.Warn("unreadable node record", zap.ByteString("key", kv.Key), zap.Error(err))
			continue
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Node returns one registered node.
func (c *Cluster) Node(ctx context.Context, id string) (Node, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.keys.node(id))
	if err != nil {
		return Node{}, false, fmt.Errorf("cluster: get node: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Node{}, false, nil
	}
	n, err := decodeNode(resp.Kvs[0].Value)
	return n, err == nil, err
}

// Close leaves the cluster: it waits for pending unpins, revokes the lease
// (so the registration and any remaining pins vanish at once, not after the
// TTL) and closes the etcd client. End the node's calls first. Idempotent.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		c.unpins.Wait()
		c.cancel()
		c.wg.Wait()
		c.mu.Lock()
		lease := c.lease
		c.lease = 0
		c.notReady = "closed"
		c.mu.Unlock()
		if lease != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.OpTimeout)
			if _, err := c.cli.Revoke(ctx, lease); err != nil {
				c.log.Warn("revoke lease", zap.Error(err))
			}
			cancel()
		}
		_ = c.cli.Close()
	})
}

// currentLease returns the lease pins attach to, or ErrNotRegistered.
func (c *Cluster) currentLease() (clientv3.LeaseID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lease == 0 {
		return 0, fmt.Errorf("%w (%s)", ErrNotRegistered, c.notReady)
	}
	return c.lease, nil
}

func (c *Cluster) record() ([]byte, error) {
	return json.Marshal(Node{NodeInfo: c.cfg.Self, Load: c.cfg.Load(), UpdatedAt: time.Now().UTC()})
}

// keys lays out the cluster's etcd keys under the prefix:
//
//	nodes/<id>        a node's registration and load (its lease)
//	calls/<eventId>   a call's pin (its owner's lease)
//	lost/<id>/<rev>   which survivor handles a node's loss (the claimer's lease)
type keys struct{ prefix string }

func (k keys) nodes() string         { return k.prefix + "nodes/" }
func (k keys) node(id string) string { return k.prefix + "nodes/" + id }
func (k keys) calls() string         { return k.prefix + "calls/" }
func (k keys) call(id string) string { return k.prefix + "calls/" + id }
func (k keys) lost(id string, rev int64) string {
	return fmt.Sprintf("%slost/%s/%d", k.prefix, id, rev)
}
