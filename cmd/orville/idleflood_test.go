package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/orville/orville/client"
)

// floodConns is how many idle connections the flood test opens from one
// address: more than tcpsniff's total connection limit (8192), so that
// without a per-address cap one host would hold the whole client port.
const floodConns = 9000

// raiseFileLimit lifts the soft RLIMIT_NOFILE to what the test needs (both
// ends of every connection live in this process), failing if the hard limit
// does not allow it.
func raiseFileLimit(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		t.Fatalf("RLIMIT_NOFILE hard limit %d is below the %d descriptors this test needs (raise it, e.g. ulimit -Hn)", lim.Max, need)
	}
	old := lim.Cur
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lim.Cur = old
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	})
}

// scrapeCounters returns the samples of one metric family from /metrics,
// by the value of its one label ("" for unlabelled).
func (s *stack) scrapeCounters(t *testing.T, name string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.secret)
	resp, err := s.apic.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		label := ""
		if i := strings.Index(line, `="`); i >= 0 && strings.HasPrefix(line, name+"{") {
			label = line[i+2 : strings.Index(line[i+2:], `"`)+i+2]
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[label] = v
	}
	return out
}

// 9,000 idle connections from one address (127.0.0.2), each a finished TLS
// handshake and one HTTP request on a kept-alive connection, do not lock a
// client on another address (127.0.0.1) out of the client port: it joins
// and exchanges media over TCP. The flood holds at most its per-address
// share (--tcp-max-conns-per-ip), the rest is refused and counted in
// /metrics, and the idle ones it holds are closed by the short idle timeout.
func TestIdleFloodFromOneAddressDoesNotLockOthersOut(t *testing.T) {
	raiseFileLimit(t, floodConns+4096) // the flood's ends; the server closes what it refuses
	s := startStack(t, 45300)

	var (
		mu       sync.Mutex
		conns    []net.Conn
		served   []*tls.Conn
		refused  atomic.Int64
		attempts atomic.Int64
	)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	// The flood's own handshakes as cheap as TLS allows (no post-quantum key
	// share): the test measures the server, not the client's key generation.
	floodTLS := s.tlsConf.Clone()
	floodTLS.CurvePreferences = []tls.CurveID{tls.X25519}
	flood := func() {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
		for attempts.Add(1) <= floodConns {
			raw, err := d.Dial("tcp", s.tcpAddr)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			mu.Lock()
			conns = append(conns, raw) // kept open, answered or not
			mu.Unlock()
			_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
			tc := tls.Client(raw, floodTLS)
			ok := tc.Handshake() == nil
			if ok {
				_, err := io.WriteString(tc, "GET /healthz HTTP/1.1\r\nHost: flood\r\n\r\n")
				resp, rerr := http.ReadResponse(bufio.NewReader(tc), nil)
				ok = err == nil && rerr == nil && resp.StatusCode == http.StatusOK
				if resp != nil {
					resp.Body.Close()
				}
			}
			_ = raw.SetDeadline(time.Time{})
			if !ok {
				refused.Add(1)
				continue
			}
			mu.Lock()
			served = append(served, tc)
			mu.Unlock()
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() { defer wg.Done(); flood() }()
	}
	// What the server holds for the flood never exceeds the address's cap.
	peak := 0.0
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for attempts.Load() < floodConns {
			peak = max(peak, s.scrapeCounters(t, "orville_tcp_connections_open")[""])
			time.Sleep(200 * time.Millisecond)
		}
	}()
	wg.Wait()
	<-sampled
	t.Logf("flood: %d connections in %v, %d served and kept alive, %d refused; at most %v open",
		floodConns, time.Since(start).Round(time.Millisecond), len(served), refused.Load(), peak)
	if peak > 512 || peak == 0 {
		t.Errorf("the server held up to %v connections of one address, want at most the cap of 512", peak)
	}
	if len(served) < 256 {
		t.Errorf("%d flood connections served: the address's own share is 512", len(served))
	}

	// A client elsewhere joins and exchanges media over the client port.
	_, g := s.call(t, "alice", "bob")
	alice := s.join(t, g["alice"], "alice", func(c *client.Config) { c.ForceTCP = true })
	bob := s.join(t, g["bob"], "bob", func(c *client.Config) { c.ForceTCP = true })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bob.WaitForMedia(ctx, []string{"alice"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatalf("bob: %v", err)
	}
	if err := alice.WaitForMedia(ctx, []string{"bob"}, []string{client.KindAudio, client.KindVideo}); err != nil {
		t.Fatalf("alice: %v", err)
	}
	for _, c := range []*client.Client{alice, bob} {
		if st := c.Stats(); !isTCPPath(st.Publish.Path) || !isTCPPath(st.Subscribe.Path) {
			t.Errorf("%s: paths %q/%q, want TCP", st.ParticipantID, st.Publish.Path, st.Subscribe.Path)
		}
	}

	m := s.scrapeCounters(t, "orville_tcp_connections_total")
	if got := m["refused_per_ip"] + m["evicted"]; got < float64(refused.Load()) || refused.Load() < floodConns/2 {
		t.Errorf("refused_per_ip %v + evicted %v, want at least the %d the flood saw refused", m["refused_per_ip"], m["evicted"], refused.Load())
	}
	t.Logf("client port counters: %v", m)

	// The idle connections the flood holds are closed by the server.
	deadline := time.Now().Add(clientIdleTimeout + 10*time.Second)
	for i, tc := range served {
		_ = tc.SetReadDeadline(deadline)
		if _, err := tc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("idle flood connection %d still open %v after the flood (err %v)", i, clientIdleTimeout+10*time.Second, err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
