package turnproxy

import (
	"context"
	"crypto/tls"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/internal/tlsutil"
)

// uclient runs coturn's turnutils_uclient (Debian package coturn, installed
// by .ci/run) and returns its output and exit code; -1 if it was stopped
// after the timeout.
func uclient(t *testing.T, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	bin, err := exec.LookPath("turnutils_uclient")
	if err != nil {
		t.Fatal("turnutils_uclient not found: install the Debian package coturn (.ci/run does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), -1
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

var recvRe = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)

// lastMatch returns uclient's final message counts (sent, received).
func lastMatch(out string) []string {
	all := recvRe.FindAllStringSubmatch(out, -1)
	if len(all) == 0 {
		return nil
	}
	return all[len(all)-1]
}

// coturn's client, over TCP and over TLS, allocates and relays RTP and RTCP
// to the call's port pair (uclient sends to -r and -r+1) through the
// advertised NAT address, with credentials it derives itself from the shared
// secret (-W: coturn's TURN REST implementation), and echoes come back.
func TestCoturnClient(t *testing.T) {
	cert, err := tlsutil.SelfSigned([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, secure := range []bool{false, true} {
		name := "tcp"
		if secure {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			s, addr := newTestServer(t, func(ln net.Listener) net.Listener {
				if secure {
					return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
				}
				return ln
			})
			pub, sub := newEcho(t, portA), newEcho(t, portA+1)
			host, port, _ := net.SplitHostPort(addr)
			flags := []string{"-t"}
			if secure {
				flags = append(flags, "-S")
			}
			args := append(flags, "-W", string(testSecret), "-u", callA+":alice",
				"-e", natIP.String(), "-r", "45100", "-n", "10", "-z", "5", "-p", port, host)
			out, code := uclient(t, 30*time.Second, args...)
			m := lastMatch(out)
			if code != 0 || m == nil || m[1] != "20" || m[2] != "20" {
				t.Fatalf("uclient exit %d, want 20 messages each way:\n%s", code, out)
			}
			if len(pub.got) != 10 || len(sub.got) != 10 {
				t.Fatalf("media ports got %d and %d packets, want 10 each", len(pub.got), len(sub.got))
			}
			if st := s.Stats(); st.Relayed != 20 {
				t.Fatalf("stats %+v", st)
			}
			// A wrong secret cannot allocate.
			bad := append(flags, "-W", "not-the-secret-0123456789", "-u", callA+":alice",
				"-e", natIP.String(), "-r", "45100", "-n", "2", "-p", port, host)
			if out, code := uclient(t, 30*time.Second, bad...); code <= 0 || !strings.Contains(out, "Cannot complete Allocation") {
				t.Fatalf("wrong secret: exit %d\n%s", code, out)
			}
		})
	}
}
