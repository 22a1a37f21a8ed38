// Package etcdtest runs Debian's etcd-server (/usr/bin/etcd, installed by
// .ci/run) on loopback with a temporary data directory, for the cluster
// tests. It can stop and restart the same member to test etcd outages.
package etcdtest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Path is where Debian's etcd-server installs the server.
const Path = "/usr/bin/etcd"

// Etcd is one single-member etcd on loopback.
type Etcd struct {
	// Endpoint is the client URL (http://127.0.0.1:PORT).
	Endpoint string

	t          testing.TB
	dir        string
	clientPort int
	peerPort   int

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan struct{}
}

// Require fails under CI (which must install etcd-server) and skips
// elsewhere when etcd is not installed.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing under CI: .ci/run must install the etcd-server package", Path)
	}
	t.Skipf("skipping cluster test: %s not found (apt-get install etcd-server; under CI=true this fails instead)", Path)
}

// Start runs etcd and waits until it answers; it is stopped at cleanup.
func Start(t testing.TB) *Etcd {
	t.Helper()
	Require(t)
	e := &Etcd{t: t, dir: dataDir(t), clientPort: freePort(t), peerPort: freePort(t)}
	e.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", e.clientPort)
	e.Restart()
	t.Cleanup(e.Stop)
	return e
}

// Restart starts the member again (after Stop) with the same data and ports.
func (e *Etcd) Restart() {
	e.t.Helper()
	e.mu.Lock()
	if e.cmd != nil {
		e.mu.Unlock()
		e.t.Fatal("etcdtest: already running")
	}
	peer := fmt.Sprintf("http://127.0.0.1:%d", e.peerPort)
	cmd := exec.Command(Path, "--name", "test", "--data-dir", e.dir,
		"--listen-client-urls", e.Endpoint, "--advertise-client-urls", e.Endpoint,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer, "--log-level", "error", "--logger", "zap")
	e.logs = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		e.mu.Unlock()
		e.t.Fatalf("etcdtest: start %s: %v", Path, err)
	}
	e.cmd, e.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(e.done)
	e.mu.Unlock()

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(e.Endpoint + "/health")
		if err == nil {
			ok := resp.StatusCode == http.StatusOK
			resp.Body.Close()
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("etcdtest: etcd not healthy after 20 s: %v\n%s", err, e.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the member (SIGKILL: an outage, not a clean leave). Idempotent.
func (e *Etcd) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Kill()
	<-e.done
	e.cmd = nil
}

// dataDir is on tmpfs (/dev/shm) where there is one: etcd fsyncs every
// write, and on a disk shared with a loaded test run a sync can take longer
// than the nodes' request timeout. The cluster tests test Orville, not disks.
func dataDir(t testing.TB) string {
	if d, err := os.MkdirTemp("/dev/shm", "etcdtest-"); err == nil {
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		return d
	}
	return t.TempDir()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
