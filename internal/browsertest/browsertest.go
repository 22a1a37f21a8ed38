// Package browsertest starts headless Chromium for tests: one set of flags,
// one rule for when the browser is missing.
package browsertest

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path is Debian's chromium package binary (.ci/run installs it).
const Path = "/usr/bin/chromium"

// Require fails the test under CI when Chromium is missing (CI must install
// it), and skips it elsewhere with the reason.
func Require(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(Path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing under CI: .ci/run must install the chromium package", Path)
	}
	t.Skipf("skipping browser test: %s not found (apt-get install chromium; under CI=true this fails instead)", Path)
}

// Options are the allocator flags: headless, no network of its own, a fake
// camera and microphone, WebRTC allowed on loopback, the server's
// self-signed certificate trusted by its SPKI hash, a fresh profile.
func Options(spki, userDataDir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// The server is on loopback: let WebRTC use loopback candidates and
		// real host addresses rather than mDNS names.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.UserDataDir(userDataDir),
	}
}

// WrapCommand runs Chromium under a prefix command, e.g. "ip netns exec NS"
// to put it in a network namespace. chromedp talks to the browser over a
// pipe (inherited file descriptors), which the prefix passes on.
func WrapCommand(prefix ...string) chromedp.ExecAllocatorOption {
	return chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
		path, err := exec.LookPath(prefix[0])
		if err != nil {
			path = prefix[0]
		}
		cmd.Args = append(append(append([]string{}, prefix...), cmd.Path), cmd.Args[1:]...)
		cmd.Path = path
		// What chromedp sets itself when nothing modifies the command: its
		// own process group, killed with the test.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	})
}
