package cluster

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// watch notices other nodes' registrations vanishing. A lease's keys are
// deleted in one revision, so the pins deleted in the same revision as a
// node's record are the calls it had when it was lost; a node that ends its
// calls and leaves (Close) leaves nothing behind to report.
func (c *Cluster) watch() {
	defer c.wg.Done()
	for c.ctx.Err() == nil {
		c.watchOnce()
		select {
		case <-c.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (c *Cluster) watchOnce() {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(c.ctx))
	defer cancel()
	for resp := range c.cli.Watch(ctx, c.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithPrevKV()) {
		if err := resp.Err(); err != nil {
			// Compacted past us, or no leader: start again from now.
			c.log.Debug("watch", zap.Error(err))
			return
		}
		c.handleDeletes(resp.Events)
	}
}

// handleDeletes finds node records deleted in events and the pins deleted in
// the same revision.
func (c *Cluster) handleDeletes(events []*clientv3.Event) {
	type loss struct {
		node  Node
		calls []string
	}
	lost := map[int64]*loss{} // by revision
	for _, ev := range events {
		if ev.Type != mvccpb.DELETE || ev.PrevKv == nil {
			continue
		}
		key := string(ev.Kv.Key)
		if id, ok := strings.CutPrefix(key, c.keys.nodes()); ok && id != c.cfg.Self.ID {
			n, err := decodeNode(ev.PrevKv.Value)
			if err != nil {
				n = Node{NodeInfo: NodeInfo{ID: id}}
			}
			l := lost[ev.Kv.ModRevision]
			if l == nil {
				l = &loss{}
				lost[ev.Kv.ModRevision] = l
			}
			l.node = n
		}
	}
	if len(lost) == 0 {
		return
	}
	for _, ev := range events {
		l := lost[ev.Kv.ModRevision]
		if ev.Type != mvccpb.DELETE || ev.PrevKv == nil || l == nil {
			continue
		}
		if id, ok := strings.CutPrefix(string(ev.Kv.Key), c.keys.calls()); ok {
			var p Pin
			if json.Unmarshal(ev.PrevKv.Value, &p) == nil && p.Node == l.node.ID {
				l.calls = append(l.calls, id)
			}
		}
	}
	for rev, l := range lost {
		if len(l.calls) > 0 && l.node.ID != "" {
			c.wg.Add(1)
			go c.nodeLost(l.node, l.calls, rev)
		}
	}
}

// nodeLost claims the loss (one survivor reports it, whichever commits the
// claim first), asks the node whether it still runs the calls (it may only
// have lost etcd) and reports the rest.
func (c *Cluster) nodeLost(n Node, calls []string, rev int64) {
	defer c.wg.Done()
	lease, err := c.currentLease()
	if err != nil {
		return // not registered ourselves: a registered survivor claims it
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.OpTimeout)
	defer cancel()
	key := c.keys.lost(n.ID, rev)
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, c.cfg.Self.ID, clientv3.WithLease(lease))).Commit()
	if err != nil || !resp.Succeeded {
		return
	}
	gone := calls
	if c.cfg.Alive != nil {
		gone = minus(calls, c.cfg.Alive(n, calls))
	}
	c.log.Warn("node lost: its lease expired", zap.String("node", n.ID), zap.Int("calls", len(calls)),
		zap.Int("callsGone", len(gone)))
	if len(gone) > 0 && c.cfg.OnNodeLost != nil {
		c.cfg.OnNodeLost(n.ID, gone)
	}
}

func minus(all, some []string) []string {
	drop := map[string]bool{}
	for _, s := range some {
		drop[s] = true
	}
	var out []string
	for _, s := range all {
		if !drop[s] {
			out = append(out, s)
		}
	}
	return out
}
