package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// errIDTaken: another live registration holds this node id.
var errIDTaken = errors.New("node id is registered by another node")

// run keeps this node registered: grant a lease, write the node record and
// re-pin the node's calls, keep the lease alive and the load fresh; when the
// lease is lost (etcd gone for longer than the TTL), start over.
func (c *Cluster) run() {
	defer c.wg.Done()
	var prev clientv3.LeaseID // the lease of the last registration
	backoff := 250 * time.Millisecond
	for c.ctx.Err() == nil {
		lease, err := c.register(prev)
		if err != nil {
			c.setNotReady(err.Error())
			if errors.Is(err, errIDTaken) {
				c.log.Error("cannot register: give every node a distinct --node-id", zap.Error(err))
			} else {
				c.log.Warn("cannot register in etcd; not taking new calls", zap.Error(err))
			}
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
		prev = lease
		c.keepAlive(lease)
	}
}

// register grants a lease and writes the node record under it. The record is
// created only if absent, or if it is this node's own earlier registration
// (its old lease may still be alive in etcd after a partition): two nodes
// never share an id.
func (c *Cluster) register(prev clientv3.LeaseID) (clientv3.LeaseID, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.OpTimeout)
	defer cancel()
	g, err := c.cli.Grant(ctx, int64(c.cfg.LeaseTTL/time.Second))
	if err != nil {
		return 0, fmt.Errorf("grant lease: %w", err)
	}
	lease := g.ID
	fail := func(err error) (clientv3.LeaseID, error) {
		rctx, rcancel := context.WithTimeout(context.Background(), c.cfg.OpTimeout)
		_, _ = c.cli.Revoke(rctx, lease)
		rcancel()
		return 0, err
	}
	val, err := c.record()
	if err != nil {
		return fail(err)
	}
	key := c.keys.node(c.cfg.Self.ID)
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fail(fmt.Errorf("write node record: %w", err))
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 || prev == 0 || clientv3.LeaseID(kvs[0].Lease) != prev {
			return fail(fmt.Errorf("%w (%s)", errIDTaken, c.cfg.Self.ID))
		}
		// Our own record on our old lease: move it to the new one.
		r, err := c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kvs[0].ModRevision)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).Commit()
		if err != nil || !r.Succeeded {
			return fail(fmt.Errorf("move node record to the new lease: %v", err))
		}
	}
	c.mu.Lock()
	c.lease, c.aliveAt, c.notReady = lease, time.Now(), ""
	c.mu.Unlock()
	if err := c.resync(lease); err != nil {
		c.log.Warn("re-pin calls", zap.Error(err))
		c.markDirty()
	}
	c.log.Info("registered in etcd", zap.String("node", c.cfg.Self.ID), zap.Int64("lease", int64(lease)),
		zap.Duration("ttl", c.cfg.LeaseTTL))
	return lease, nil
}

// keepAlive renews lease and rewrites the load record until the lease is lost
// or the cluster closes.
func (c *Cluster) keepAlive(lease clientv3.LeaseID) {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	ch, err := c.cli.KeepAlive(ctx, lease)
	if err != nil {
		c.loseLease(lease, err.Error())
		return
	}
	load := time.NewTicker(c.cfg.LoadInterval)
	defer load.Stop()
	resync := time.NewTicker(resyncInterval)
	defer resync.Stop()
	var lastWrite time.Time
	for {
		select {
		case <-c.ctx.Done():
			return
		case ka, ok := <-ch:
			if !ok || ka == nil {
				// The client closes the channel once the lease can no longer be
				// renewed: etcd unreachable past the TTL, or the lease revoked.
				c.loseLease(lease, "lease lost")
				return
			}
			c.mu.Lock()
			c.aliveAt = time.Now()
			c.mu.Unlock()
			continue
		case <-load.C:
		case <-c.poke:
			if wait := minLoadInterval - time.Since(lastWrite); wait > 0 {
				select {
				case <-c.ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		case <-resync.C:
			c.markDirty()
		}
		lastWrite = time.Now()
		c.writeLoad(lease)
		if c.takeDirty() {
			if err := c.resync(lease); err != nil {
				c.log.Warn("resync pins", zap.Error(err))
				c.markDirty()
			}
		}
	}
}

func (c *Cluster) writeLoad(lease clientv3.LeaseID) {
	val, err := c.record()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.OpTimeout)
	defer cancel()
	if _, err := c.cli.Put(ctx, c.keys.node(c.cfg.Self.ID), string(val), clientv3.WithLease(lease)); err != nil {
		c.log.Debug("write load", zap.Error(err))
	}
}

func (c *Cluster) loseLease(lease clientv3.LeaseID, why string) {
	c.mu.Lock()
	if c.lease == lease {
		c.lease, c.notReady = 0, why
	}
	c.mu.Unlock()
	if c.ctx.Err() == nil {
		c.log.Warn("etcd lease lost; not taking new calls until registered again", zap.String("reason", why))
	}
}

func (c *Cluster) setNotReady(why string) {
	c.mu.Lock()
	c.notReady = why
	c.mu.Unlock()
}

func (c *Cluster) markDirty() {
	c.mu.Lock()
	c.dirty = true
	c.mu.Unlock()
}

func (c *Cluster) takeDirty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dirty
	c.dirty = false
	return d
}
