package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// BiDi is a WebDriver BiDi session (W3C WebDriver BiDi, the protocol
// Firefox speaks on --remote-debugging-port): commands are JSON objects
// {id, method, params} answered by {id, type: "success"|"error", …}; events
// come as {type: "event", method, params}. Only what the tests use is here.
type BiDi struct {
	conn *websocket.Conn

	wmu  sync.Mutex // one writer at a time
	mu   sync.Mutex
	next int
	wait map[int]chan bidiReply
	logs []string
	err  error
	done chan struct{}
}

type bidiReply struct {
	Type    string          `json:"type"`
	ID      *int            `json:"id"`
	Method  string          `json:"method"`
	Result  json.RawMessage `json:"result"`
	Params  json.RawMessage `json:"params"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

// maxBiDiLogs bounds the console lines kept for a failing test.
const maxBiDiLogs = 300

// DialBiDi connects to ws://addr/session (dial opens the TCP connection,
// e.g. inside a network namespace; nil dials directly) and starts a
// session that accepts the test server's self-signed certificate.
func DialBiDi(ctx context.Context, addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*BiDi, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: dial}
	conn, _, err := d.DialContext(ctx, "ws://"+addr+"/session", nil)
	if err != nil {
		return nil, fmt.Errorf("bidi: dial %s: %w", addr, err)
	}
	conn.SetReadLimit(64 << 20) // screenshots
	b := &BiDi{conn: conn, wait: map[int]chan bidiReply{}, done: make(chan struct{})}
	go b.readLoop()
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{"acceptInsecureCerts": true}}}
	if _, err := b.Call(ctx, "session.new", caps); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if _, err := b.Call(ctx, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return b, nil
}

func (b *BiDi) readLoop() {
	defer close(b.done)
	for {
		var r bidiReply
		if err := b.conn.ReadJSON(&r); err != nil {
			b.mu.Lock()
			b.err = err
			for id, ch := range b.wait {
				close(ch)
				delete(b.wait, id)
			}
			b.mu.Unlock()
			return
		}
		b.mu.Lock()
		if r.Type == "event" {
			if r.Method == "log.entryAdded" && len(b.logs) < maxBiDiLogs {
				var e struct {
					Level string `json:"level"`
					Text  string `json:"text"`
				}
				_ = json.Unmarshal(r.Params, &e)
				b.logs = append(b.logs, e.Level+": "+e.Text)
			}
		} else if r.ID != nil {
			if ch := b.wait[*r.ID]; ch != nil {
				ch <- r
				delete(b.wait, *r.ID)
			}
		}
		b.mu.Unlock()
	}
}

// Call sends one command and returns its result.
func (b *BiDi) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("bidi: connection lost: %w", b.err)
	}
	b.next++
	id := b.next
	ch := make(chan bidiReply, 1)
	b.wait[id] = ch
	b.mu.Unlock()
	b.wmu.Lock()
	err := b.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params})
	b.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("bidi: %s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("bidi: %s: connection lost", method)
		}
		if r.Type == "error" {
			return nil, fmt.Errorf("bidi: %s: %s: %s", method, r.Error, r.Message)
		}
		return r.Result, nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.wait, id)
		b.mu.Unlock()
		return nil, fmt.Errorf("bidi: %s: %w", method, ctx.Err())
	}
}

// Logs are the console lines the pages printed so far.
func (b *BiDi) Logs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.logs...)
}

// Context returns the id of the first top-level browsing context (tab).
func (b *BiDi) Context(ctx context.Context) (string, error) {
	res, err := b.Call(ctx, "browsingContext.getTree", map[string]any{"maxDepth": 0})
	if err != nil {
		return "", err
	}
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := json.Unmarshal(res, &tree); err != nil || len(tree.Contexts) == 0 {
		return "", fmt.Errorf("bidi: no browsing context in %s", res)
	}
	return tree.Contexts[0].Context, nil
}

// Navigate loads url in the browsing context and waits for it to load.
func (b *BiDi) Navigate(ctx context.Context, context, url string) error {
	_, err := b.Call(ctx, "browsingContext.navigate", map[string]any{"context": context, "url": url, "wait": "complete"})
	return err
}

// EvalJSON evaluates a JavaScript expression in the page (awaiting a
// promise) and unmarshals its JSON.stringify into out.
func (b *BiDi) EvalJSON(ctx context.Context, context, expr string, out any) error {
	res, err := b.Call(ctx, "script.evaluate", map[string]any{
		"expression":      "(async () => JSON.stringify(await (" + expr + ")))()",
		"target":          map[string]any{"context": context},
		"awaitPromise":    true,
		"resultOwnership": "none",
	})
	if err != nil {
		return err
	}
	var r struct {
		Type   string `json:"type"`
		Result struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if r.Type == "exception" {
		return fmt.Errorf("bidi: %s: %s", expr, r.ExceptionDetails.Text)
	}
	if r.Result.Type != "string" {
		return errors.New("bidi: the expression's value has no JSON form (undefined?)")
	}
	return json.Unmarshal([]byte(r.Result.Value), out)
}

// Close ends the session and the connection.
func (b *BiDi) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = b.Call(ctx, "session.end", map[string]any{})
	_ = b.conn.Close()
	<-b.done
}
