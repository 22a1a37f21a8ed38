package signaling

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/orville/orville/cluster"
)

// peerTimeout bounds one node-to-node request. Creating a call opens two
// sockets; nothing here should take long, and a dead peer must not hold a
// start-call request for long either.
const peerTimeout = 5 * time.Second

// maxPeerBody bounds what a peer may answer (a listing of a node's calls
// with their participants is the largest).
const maxPeerBody = 16 << 20

// peers holds one HTTP client per peer node. Node-to-node requests go to the
// peer's API listener with the cluster's API secret (every node has the same
// --api-secret) and the hop header. TLS is pinned to the certificate hash
// the peer registered in etcd, so self-signed certificates work and no CA
// is needed: whoever can write etcd can already redirect every call.
type peers struct {
	self, secret string

	mu      sync.Mutex
	clients map[string]*peerClient // by node id
}

type peerClient struct {
	apiURL, cert string
	http         *http.Client
}

func (p *peers) calls(n cluster.Node) *peerCalls {
	return &peerCalls{p: p, node: n, c: p.client(n)}
}

func (p *peers) client(n cluster.Node) *peerClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[n.ID]; c != nil && c.apiURL == n.APIURL && c.cert == n.CertSHA256 {
		return c
	}
	if old := p.clients[n.ID]; old != nil {
		old.http.CloseIdleConnections()
	}
	want, _ := hex.DecodeString(n.CertSHA256)
	tlsConf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is the pin below, not a CA chain.
		InsecureSkipVerify: true, //nolint:gosec // pinned in VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || len(want) == 0 {
				return errors.New("peer presented no certificate, or registered no hash")
			}
			got := sha256.Sum256(raw[0])
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return fmt.Errorf("peer %s's certificate is not the one it registered in etcd", n.ID)
			}
			return nil
		},
	}
	c := &peerClient{apiURL: n.APIURL, cert: n.CertSHA256, http: &http.Client{
		Timeout: peerTimeout,
		Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true,
			MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute, TLSHandshakeTimeout: peerTimeout},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	if p.clients == nil {
		p.clients = map[string]*peerClient{}
	}
	p.clients[n.ID] = c
	return c
}

// close drops idle connections to every peer.
func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		c.http.CloseIdleConnections()
	}
}

// peerCalls is the remote call store: one other node's own calls.
type peerCalls struct {
	p    *peers
	node cluster.Node
	c    *peerClient
}

// do sends one request and decodes a 2xx answer into out (nil: no body).
// The peer's API errors come back as they are; a peer that cannot be
// reached is 502 peer_unreachable.
func (pc *peerCalls) do(ctx context.Context, method, path string, body, out any, want int) *apiErr {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return errorf(http.StatusInternalServerError, apiCodeInternal, "request could not be encoded")
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, pc.c.apiURL+path, rd)
	if err != nil {
		return errorf(http.StatusBadGateway, apiCodePeerUnreachable, fmt.Sprintf("node %s: bad API URL %q", pc.node.ID, pc.c.apiURL))
	}
	req.Header.Set("Authorization", "Bearer "+pc.p.secret)
	req.Header.Set(hopHeader, pc.p.self)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := pc.c.http.Do(req)
	if err != nil {
		return errorf(http.StatusBadGateway, apiCodePeerUnreachable, fmt.Sprintf("node %s (%s) did not answer: %v", pc.node.ID, pc.c.apiURL, err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerBody))
	if err != nil {
		return errorf(http.StatusBadGateway, apiCodePeerUnreachable, fmt.Sprintf("node %s: reading the answer: %v", pc.node.ID, err))
	}
	if resp.StatusCode != want {
		var ae apiError
		if json.Unmarshal(raw, &ae) == nil && ae.Error.Code != "" {
			return errorf(resp.StatusCode, ae.Error.Code, ae.Error.Message)
		}
		return errorf(http.StatusBadGateway, apiCodePeerUnreachable, fmt.Sprintf("node %s answered %s", pc.node.ID, resp.Status))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return errorf(http.StatusBadGateway, apiCodePeerUnreachable, fmt.Sprintf("node %s: unreadable answer: %v", pc.node.ID, err))
		}
	}
	return nil
}

func callPath(id string) string { return "/v1/calls/" + url.PathEscape(id) }

func (pc *peerCalls) create(ctx context.Context, req createCallRequest) (startCallResponse, *apiErr) {
	var out startCallResponse
	return out, pc.do(ctx, http.MethodPost, "/v1/calls", req, &out, http.StatusCreated)
}

func (pc *peerCalls) list(ctx context.Context) (callList, *apiErr) {
	var out callList
	return out, pc.do(ctx, http.MethodGet, "/v1/calls", nil, &out, http.StatusOK)
}

func (pc *peerCalls) get(ctx context.Context, id string) (callInfo, *apiErr) {
	var out callInfo
	return out, pc.do(ctx, http.MethodGet, callPath(id), nil, &out, http.StatusOK)
}

func (pc *peerCalls) end(ctx context.Context, id string) *apiErr {
	return pc.do(ctx, http.MethodDelete, callPath(id), nil, nil, http.StatusNoContent)
}

func (pc *peerCalls) addParticipant(ctx context.Context, id string, req addParticipantRequest) (addParticipantResponse, *apiErr) {
	var out addParticipantResponse
	return out, pc.do(ctx, http.MethodPost, callPath(id)+"/participants", req, &out, http.StatusCreated)
}

func (pc *peerCalls) removeParticipant(ctx context.Context, id, participant string) *apiErr {
	return pc.do(ctx, http.MethodDelete, callPath(id)+"/participants/"+url.PathEscape(participant), nil, nil, http.StatusNoContent)
}
