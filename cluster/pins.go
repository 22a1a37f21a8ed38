package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Pin records that this node owns call: an atomic create (the transaction
// fails if any node already pinned that id) attached to this node's lease,
// so the pin dies with the node. ErrPinned if another node holds the id; a
// pin this node already holds (a resync got there first) is success.
func (c *Cluster) Pin(ctx context.Context, call string) error {
	lease, err := c.currentLease()
	if err != nil {
		return err
	}
	val, _ := json.Marshal(Pin{Node: c.cfg.Self.ID, CreatedAt: time.Now().UTC()})
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	key := c.keys.call(call)
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fmt.Errorf("cluster: pin call: %w", err)
	}
	if !resp.Succeeded {
		var p Pin
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 1 && json.Unmarshal(kvs[0].Value, &p) == nil && p.Node == c.cfg.Self.ID {
			return nil
		}
		return ErrPinned
	}
	c.Poke()
	return nil
}

// Unpin removes this node's pin of call, in the background (a call's end
// must not wait on etcd). Only a pin on this node's current lease is
// removed; one left behind (etcd unreachable) is found by the next resync or
// vanishes with the lease.
func (c *Cluster) Unpin(call string) {
	lease, err := c.currentLease()
	if err != nil {
		c.markDirty()
		return
	}
	c.unpins.Add(1)
	go func() {
		defer c.unpins.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.OpTimeout)
		defer cancel()
		key := c.keys.call(call)
		if _, err := c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
			Then(clientv3.OpDelete(key)).Commit(); err != nil {
			c.log.Debug("unpin call", zap.String("call", call), zap.Error(err))
			c.markDirty()
		}
		c.Poke()
	}()
}

// Owner returns the node that owns call, ErrNoPin if none does.
func (c *Cluster) Owner(ctx context.Context, call string) (Node, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.keys.call(call))
	if err != nil {
		return Node{}, fmt.Errorf("cluster: look up call: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Node{}, ErrNoPin
	}
	var p Pin
	if err := json.Unmarshal(resp.Kvs[0].Value, &p); err != nil {
		return Node{}, fmt.Errorf("cluster: unreadable pin: %w", err)
	}
	n, ok, err := c.Node(ctx, p.Node)
	if err != nil {
		return Node{}, err
	}
	if !ok {
		return Node{}, ErrNoPin // the owner's lease is ending
	}
	return n, nil
}

// Pins lists every pinned call.
func (c *Cluster) Pins(ctx context.Context) ([]Pin, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.keys.calls(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("cluster: list calls: %w", err)
	}
	out := make([]Pin, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var p Pin
		if json.Unmarshal(kv.Value, &p) != nil {
			continue
		}
		p.Call = strings.TrimPrefix(string(kv.Key), c.keys.calls())
		out = append(out, p)
	}
	return out, nil
}

// resync makes etcd's pins of this node match its calls: a running call
// without a pin (etcd was away) is pinned, a pin on an old lease moves to
// lease, and a pin of a call that has ended is removed.
func (c *Cluster) resync(lease clientv3.LeaseID) error {
	ctx, cancel := context.WithTimeout(c.ctx, 4*c.cfg.OpTimeout)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.keys.calls(), clientv3.WithPrefix())
	if err != nil {
		return err
	}
	// The calls after the pins: a call is created before it is pinned, so a
	// pin read above belongs to a call in this list unless the call ended.
	local := map[string]bool{}
	for _, id := range c.cfg.LocalCalls() {
		local[id] = true
	}
	for _, kv := range resp.Kvs {
		var p Pin
		if json.Unmarshal(kv.Value, &p) != nil || p.Node != c.cfg.Self.ID {
			continue
		}
		id := strings.TrimPrefix(string(kv.Key), c.keys.calls())
		same := clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)
		switch {
		case !local[id]:
			_, err = c.cli.Txn(ctx).If(same).Then(clientv3.OpDelete(string(kv.Key))).Commit()
		case clientv3.LeaseID(kv.Lease) != lease:
			_, err = c.cli.Txn(ctx).If(same).
				Then(clientv3.OpPut(string(kv.Key), string(kv.Value), clientv3.WithLease(lease))).Commit()
		}
		if err != nil {
			return err
		}
		delete(local, id)
	}
	for id := range local {
		val, _ := json.Marshal(Pin{Node: c.cfg.Self.ID, CreatedAt: time.Now().UTC()})
		key := c.keys.call(id)
		r, err := c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).Commit()
		if err != nil {
			return err
		}
		if !r.Succeeded {
			c.log.Error("a running call's id is pinned to another node", zap.String("call", id))
		}
	}
	return nil
}
