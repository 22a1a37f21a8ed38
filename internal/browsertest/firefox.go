package browsertest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FirefoxPath is Debian's firefox-esr package binary (.ci/run installs it).
const FirefoxPath = "/usr/bin/firefox-esr"

// RequireFirefox is Require for Firefox.
func RequireFirefox(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(FirefoxPath); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing under CI: .ci/run must install the firefox-esr package", FirefoxPath)
	}
	t.Skipf("skipping browser test: %s not found (apt-get install firefox-esr; under CI=true this fails instead)", FirefoxPath)
}

// firefoxPrefs go into the profile's user.js: fake camera and microphone
// without a permission prompt, media that plays without a click, real host
// addresses in ICE candidates (no mDNS names), and nothing that calls home.
// Certificates are accepted by the session (acceptInsecureCerts).
var firefoxPrefs = map[string]string{
	"media.navigator.streams.fake":                      "true",
	"media.navigator.permission.disabled":               "true",
	"media.autoplay.default":                            "0",
	"media.autoplay.blocking_policy":                    "0",
	"media.peerconnection.ice.obfuscate_host_addresses": "false",
	"media.setsinkid.enabled":                           "true",
	"browser.shell.checkDefaultBrowser":                 "false",
	"browser.startup.homepage_override.mstone":          `"ignore"`,
	"datareporting.policy.dataSubmissionEnabled":        "false",
	"toolkit.telemetry.reportingpolicy.firstRun":        "false",
	"app.update.enabled":                                "false",
	"app.normandy.enabled":                              "false",
	"extensions.update.enabled":                         "false",
	"browser.safebrowsing.malware.enabled":              "false",
	"browser.safebrowsing.phishing.enabled":             "false",
	"network.captive-portal-service.enabled":            "false",
	"network.connectivity-service.enabled":              "false",
	"services.settings.server":                          `"http://127.0.0.1:9/"`,
	"browser.sessionstore.resume_from_crash":            "false",
	"toolkit.startup.max_resumed_crashes":               "-1",
	"browser.startup.page":                              "0",
}

// Firefox is one headless Firefox driven over WebDriver BiDi.
type Firefox struct {
	*BiDi
	Tab string // the browsing context pages load in
	cmd *exec.Cmd
}

// FirefoxOptions place Firefox: Command (nil: exec.Command) starts the
// process, e.g. inside a network namespace; Dial reaches its debugging
// port from there.
type FirefoxOptions struct {
	Command func(name string, args ...string) *exec.Cmd
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error)
}

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on ws://([0-9.:\[\]a-f]+)`)

// StartFirefox starts headless Firefox with a fresh profile and opens a BiDi
// session; it is stopped at the end of the test.
func StartFirefox(t testing.TB, o FirefoxOptions) *Firefox {
	t.Helper()
	RequireFirefox(t)
	profile := t.TempDir()
	var prefs strings.Builder
	for k, v := range firefoxPrefs {
		fmt.Fprintf(&prefs, "user_pref(%q, %s);\n", k, v)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--headless", "--no-remote", "--profile", profile, "--remote-debugging-port", "0"}
	command := o.Command
	if command == nil {
		command = exec.Command
	}
	cmd := command(FirefoxPath, args...)
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1", "HOME="+profile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start firefox: %v", err)
	}
	f := &Firefox{cmd: cmd}
	t.Cleanup(func() {
		if f.BiDi != nil {
			f.BiDi.Close()
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the whole process group
		_ = cmd.Wait()
	})
	// Firefox may restart itself once on a fresh profile, and announce a
	// new port: every announced address is tried until one takes a session.
	addrs := make(chan string, 8)
	var outMu sync.Mutex
	var out []string
	t.Cleanup(func() {
		outMu.Lock()
		defer outMu.Unlock()
		if t.Failed() {
			t.Logf("firefox stderr:\n%s", strings.Join(out, "\n"))
		}
	})
	go func() { // reads stderr to its end, so Firefox never blocks on it
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			outMu.Lock()
			if len(out) < 200 {
				out = append(out, time.Now().Format("15:04:05.000 ")+sc.Text())
			}
			outMu.Unlock()
			if m := bidiListening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrs <- m[1]:
				default:
				}
			}
		}
	}()
	// A loaded machine makes a first start slow: up to 90 s.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var last error
	var a string
	for f.BiDi == nil {
		select {
		case a = <-addrs:
		case <-ctx.Done():
			t.Fatalf("firefox: no BiDi session in 90 s (last error: %v)", last)
		default:
			if a == "" {
				select {
				case a = <-addrs:
				case <-ctx.Done():
					t.Fatalf("firefox printed no BiDi address in 90 s")
				}
			}
		}
		if f.BiDi, last = DialBiDi(ctx, a, o.Dial); last != nil {
			select {
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
	if f.Tab, err = f.Context(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("firefox console:\n%s", strings.Join(f.Logs(), "\n"))
		}
	})
	return f
}
