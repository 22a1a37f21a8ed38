// Package cluster makes several Orville nodes one calling service through
// etcd: each node registers under a lease with its addresses and load, calls
// are pinned to their owner with an atomic create attached to the owner's
// lease, and a node whose lease expires takes its registration and its pins
// with it. It stands alone: the API layer reaches it through a small
// interface and gives it the load figures as plain numbers.
package cluster

import (
	"encoding/json"
	"time"
)

// NodeInfo is what a node says about itself when it registers: who it is and
// where it is reached.
type NodeInfo struct {
	// ID is the start-call answer's "pid", distinct per node.
	ID string `json:"id"`
	// APIURL is where other nodes reach this node's API (https://host:444).
	APIURL string `json:"apiUrl"`
	// CertSHA256 is the hex SHA-256 of the API listener's leaf certificate:
	// peers pin it, so node-to-node TLS needs no shared CA and works with
	// self-signed certificates (etcd is the trust root).
	CertSHA256 string `json:"certSha256"`
	// SignalingURL is the clients' WebSocket URL on this node.
	SignalingURL string `json:"signalingUrl"`
	// MediaIPs are the addresses clients send media to (IPv4, IPv6).
	MediaIPs []string `json:"mediaIps"`
	// MaxCalls is this node's port-pair capacity.
	MaxCalls int `json:"maxCalls"`
	// Version is the binary's version.
	Version string `json:"version,omitempty"`
}

// Load is a node's current load, sampled every LoadInterval.
type Load struct {
	// PairsFree is how many more calls fit (free port pairs).
	PairsFree int `json:"pairsFree"`
	// Calls and Participants are what runs now.
	Calls        int `json:"calls"`
	Participants int `json:"participants"`
	// PacketsPerSecond is RTP packets received plus forwarded per second.
	PacketsPerSecond float64 `json:"packetsPerSecond"`
	// CPU is the process's CPU use as a fraction of the machine (0–1).
	CPU float64 `json:"cpu"`
	// Draining nodes take no new calls.
	Draining bool `json:"draining"`
}

// Node is one registered node: its info, its load and when the load was
// written.
type Node struct {
	NodeInfo
	Load      Load      `json:"load"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Pin is one call's owner.
type Pin struct {
	Call      string    `json:"-"`
	Node      string    `json:"node"`
	CreatedAt time.Time `json:"createdAt"`
}

func decodeNode(b []byte) (Node, error) {
	var n Node
	err := json.Unmarshal(b, &n)
	return n, err
}
