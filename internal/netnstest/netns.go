// Package netnstest gives tests network namespaces of their own: clients and
// servers on ordinary (non-loopback) addresses that exist nowhere else, links
// between them, firewall rules (nftables) inside them, and sockets, dials and
// whole processes placed in them. A test's namespaces carry its PID in their
// names and are deleted at cleanup; nothing is added to the namespace the
// test itself runs in.
package netnstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// NS is one network namespace, /run/netns/<Name>.
type NS struct {
	Name string
}

var seq atomic.Int64 // namespaces made by this process

// Require skips the test unless it may create network namespaces (root and
// iproute2); under CI=true it fails instead, since CI runs as root.
func Require(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath("ip")
	if err == nil && os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("network namespace tests need root and iproute2 under CI (euid %d, ip: %v)", os.Geteuid(), err)
	}
	t.Skipf("skipping: network namespaces need root and iproute2 (euid %d, ip: %v)", os.Geteuid(), err)
}

// New creates a namespace with loopback up, deleted at cleanup. tag names it
// for humans reading `ip netns list`.
func New(t testing.TB, tag string) *NS {
	t.Helper()
	Require(t)
	n := &NS{Name: fmt.Sprintf("orvt-%s-%d-%d", tag, os.Getpid(), seq.Add(1))}
	if len(n.Name) > 40 {
		t.Fatalf("namespace name %q too long", n.Name)
	}
	run(t, "ip", "netns", "add", n.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", n.Name).Run() })
	n.Run(t, "ip", "link", "set", "lo", "up")
	return n
}

// Link connects a and b with a veth pair, a's end named aIf with aAddr
// (CIDR, e.g. "10.77.0.1/24"), b's end bIf with bAddr. Both ends are created
// directly in their namespaces.
func Link(t testing.TB, a *NS, aIf, aAddr string, b *NS, bIf, bAddr string) {
	t.Helper()
	run(t, "ip", "link", "add", aIf, "netns", a.Name, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	a.Run(t, "ip", "addr", "add", aAddr, "dev", aIf)
	b.Run(t, "ip", "addr", "add", bAddr, "dev", bIf)
	// No duplicate address detection on the IPv6 link-local addresses: its
	// end, a second after the link is up, is a network change to a browser
	// started meanwhile (Chromium fails a page load in flight with
	// ERR_NETWORK_CHANGED). Best effort: a kernel without IPv6 has no knob.
	_ = a.Command("sysctl", "-qw", "net.ipv6.conf."+aIf+".accept_dad=0").Run()
	_ = b.Command("sysctl", "-qw", "net.ipv6.conf."+bIf+".accept_dad=0").Run()
	a.Run(t, "ip", "link", "set", aIf, "up")
	b.Run(t, "ip", "link", "set", bIf, "up")
}

// Command is a command run inside the namespace (ip netns exec).
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and fails the test if it fails.
func (n *NS) Run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := n.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("in %s: %s %s: %v\n%s", n.Name, name, strings.Join(args, " "), err, out)
	}
}

// Nft loads an nftables ruleset (nft -f syntax) into the namespace.
func (n *NS) Nft(t testing.TB, rules string) {
	t.Helper()
	cmd := n.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in %s: nft: %v\n%s\nrules:\n%s", n.Name, err, out, rules)
	}
}

// Do runs f on an OS thread that has entered the namespace: sockets f opens
// (listen, dial) belong to it for their whole life, whatever goroutine uses
// them later. Goroutines f starts run elsewhere, in the process's own
// namespace. The thread returns to the process's namespace afterwards; if
// it cannot, it is left locked and ends with its goroutine. (A thread that
// ends takes with it the children it forked with Pdeathsig set, as
// browsers are started: so threads must not end needlessly.)
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := syscall.Open("/proc/thread-self/ns/net", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: own namespace: %w", err)
			return
		}
		defer syscall.Close(home)
		if err := setns(n.Name); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = f()
		if _, _, e := syscall.RawSyscall(sysSetns, uintptr(home), syscall.CLONE_NEWNET, 0); e == 0 {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func setns(name string) error {
	fd, err := syscall.Open("/run/netns/"+name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer syscall.Close(fd)
	if _, _, e := syscall.RawSyscall(sysSetns, uintptr(fd), syscall.CLONE_NEWNET, 0); e != 0 {
		return fmt.Errorf("setns %s: %w", name, e)
	}
	return nil
}

// DialContext dials from inside the namespace.
func (n *NS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens inside the namespace.
func (n *NS) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// run runs a command in the test's own namespace.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
