package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orville/orville/internal/netnstest"
)

// podman runs podman commands inside a network namespace of the test's own
// (the container shares it: --network host), working around what this kind
// of host lacks, each found out and logged:
//   - /sys/fs/cgroup is not a cgroup2 file system (a v1/v2 "hybrid" host,
//     or the sysfs `ip netns exec` mounts): crun refuses to start ("cgroups in
//     hybrid mode not supported", "invalid file system type"). podman then
//     runs in a private mount namespace with cgroup2 mounted there, and
//     --cgroups=disabled.
//   - the process lacks CAP_SYS_RESOURCE (a sandbox dropped it): crun cannot
//     raise the hard limits podman asks for by default (RLIMIT_NOFILE
//     1048576, RLIMIT_NPROC above podman's own limit, pid_max) and fails with
//     "setrlimit: Operation not permitted". The container then gets the
//     current limits (--ulimit).
type podman struct {
	t     *testing.T
	ns    *netnstest.NS
	wrap  bool     // private mount namespace with cgroup2
	extra []string // flags for `podman run`
}

func newPodman(t *testing.T, ns *netnstest.NS) *podman {
	t.Helper()
	tool(t, "podman")
	p := &podman{t: t, ns: ns}
	var st syscall.Statfs_t
	// Looked at from inside the namespace: `ip netns exec` mounts a sysfs of its own.
	out, err := ns.Command("stat", "-f", "-c", "%T", "/sys/fs/cgroup").CombinedOutput()
	if fs := strings.TrimSpace(string(out)); err != nil || fs != "cgroup2fs" {
		_ = syscall.Statfs("/sys/fs/cgroup", &st)
		t.Logf("container workaround: /sys/fs/cgroup is %q in the namespace (host magic %#x), not cgroup2: podman runs in a private mount namespace with cgroup2 mounted, --cgroups=disabled", fs, st.Type)
		p.wrap = true
		p.extra = append(p.extra, "--cgroups=disabled")
	}
	if !hasCapSysResource() {
		var nofile, nproc syscall.Rlimit
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
		_ = syscall.Getrlimit(6 /* RLIMIT_NPROC */, &nproc)
		limit := min(nproc.Max, pidMax())
		t.Logf("container workaround: no CAP_SYS_RESOURCE, so crun cannot raise podman's default rlimits: --ulimit nofile=%d, nproc=%d (the current limits)", nofile.Max, limit)
		p.extra = append(p.extra, fmt.Sprintf("--ulimit=nofile=%d:%d", nofile.Max, nofile.Max), fmt.Sprintf("--ulimit=nproc=%d:%d", limit, limit))
	}
	return p
}

func hasCapSysResource() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<24) != 0 // CAP_SYS_RESOURCE
		}
	}
	return false
}

func pidMax() uint64 {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 4096
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 4096
	}
	return n
}

func (p *podman) cmd(args ...string) *exec.Cmd {
	if !p.wrap {
		return p.ns.Command("podman", args...)
	}
	script := `mount -t cgroup2 none /sys/fs/cgroup && exec podman "$@"`
	return p.ns.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "podman"}, args...)...)
}

func (p *podman) run(args ...string) string {
	p.t.Helper()
	out, err := p.cmd(args...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// The container image: deploy/container/build.sh makes it from the static
// binary with nothing to download; it runs as a non-root user, binds 443
// and 444 (its file capability), answers `orville test-calling`, and drains
// and exits 0 on `podman stop` (SIGTERM).
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image and runs a container")
	}
	tool(t, "setcap")
	ns := netnstest.New(t, "ctr")
	pm := newPodman(t, ns)
	image := fmt.Sprintf("localhost/orville-test:%d", os.Getpid())
	build := exec.Command("container/build.sh", image)
	// GOFLAGS empty: reuse the build cache instead of the release -trimpath build.
	build.Env = append(os.Environ(), "GOFLAGS=", "VERSION=test")
	var buildOut bytes.Buffer
	build.Stdout, build.Stderr = &buildOut, &buildOut
	start := time.Now()
	if err := build.Run(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, buildOut.String())
	}
	t.Logf("image built in %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { _ = exec.Command("podman", "rmi", "-f", image).Run() })
	if !strings.HasSuffix(strings.TrimSpace(buildOut.String()), image) {
		t.Fatalf("build.sh did not print the image name:\n%s", buildOut.String())
	}
	inspect := pm.run("image", "inspect", image, "--format", "{{.Config.User}}|{{.Config.Entrypoint}}|{{.Config.StopSignal}}|{{len .RootFS.Layers}}")
	if inspect != "65532:65532|[/usr/local/bin/orville]|SIGTERM|1" {
		t.Fatalf("image config %q: want user 65532:65532, the binary as entrypoint, SIGTERM, one layer on scratch", inspect)
	}

	const secret = "container-test-api-secret-0123456789"
	name := fmt.Sprintf("orville-test-%d", os.Getpid())
	t.Cleanup(func() { _ = pm.cmd("rm", "-f", "-t", "0", name).Run() })
	// The image's own ports: 444, 443, 8001 and the media range from 16384,
	// in the test's namespace; the advertised address is its loopback.
	args := append([]string{"run", "-d", "--name", name, "--network", "host"}, pm.extra...)
	args = append(args, "-e", "ORVILLE_API_SECRET="+secret, "-e", "ORVILLE_LISTEN_IP=127.0.0.1", "-e", "ORVILLE_PUBLIC_IP=127.0.0.1",
		image, "serve", "--health-listen", "127.0.0.1:8080", "--max-calls", "4")
	pm.run(args...)
	logs := func() string { out, _ := pm.cmd("logs", name).CombinedOutput(); return string(out) }

	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.DialContext(ctx, network, addr)
		}}}
	defer hc.CloseIdleConnections()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := hc.Get("http://127.0.0.1:8080/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container never became ready (%v); logs:\n%s", err, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}

	bin := filepath.Join(t.TempDir(), "orville")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/orville").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tc := ns.Command(bin, "test-calling", "--api", "https://127.0.0.1:444", "--insecure")
	tc.Env = append(os.Environ(), "ORVILLE_API_SECRET="+secret)
	var stdout, stderr bytes.Buffer
	tc.Stdout, tc.Stderr = &stdout, &stderr
	if err := tc.Run(); err != nil {
		t.Fatalf("test-calling against the container: %v\nstdout:\n%s\nstderr:\n%s\ncontainer logs:\n%s", err, stdout.String(), stderr.String(), logs())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if !strings.HasPrefix(lines[0], `{"cluster":"enterprise","state":{"eventId":"`) || !strings.Contains(lines[0], `"roomURI":"127.0.0.1:16384"`) {
		t.Fatalf("first line is not the start-call answer of the image's defaults: %s", lines[0])
	}
	ok := 0
	for _, l := range lines[1:] {
		if strings.HasSuffix(l, "OK") {
			ok++
		}
	}
	if ok < 4 {
		t.Fatalf("want an OK verdict per direction over UDP and TCP:\n%s", stdout.String())
	}
	t.Logf("test-calling against the container:\n%s", stdout.String())

	pm.run("stop", "-t", "60", name)
	if code := pm.run("inspect", name, "--format", "{{.State.ExitCode}}"); code != "0" {
		t.Fatalf("exit code %s after podman stop; logs:\n%s", code, logs())
	}
	if l := logs(); !strings.Contains(l, "SIGTERM: draining") || !strings.Contains(l, "drained: the last call has ended; stopping") {
		t.Fatalf("the container did not drain on podman stop; logs:\n%s", l)
	}
}
