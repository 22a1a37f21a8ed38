package turnproxy

import (
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orville/orville/internal/coturntest"
	"github.com/orville/orville/internal/tlsutil"
)

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
			args := append(flags, "-W", string(testSecret), "-u", callA+":"+testGrant+":alice",
				"-e", natIP.String(), "-r", strconv.Itoa(portA), "-n", "10", "-z", "5", "-p", port, host)
			out, code := coturntest.Run(t, 30*time.Second, args...)
			if sent, recv, ok := coturntest.Counts(out); code != 0 || !ok || sent != 20 || recv != 20 {
				t.Fatalf("uclient exit %d, want 20 messages each way:\n%s", code, out)
			}
			if len(pub.got) != 10 || len(sub.got) != 10 {
				t.Fatalf("media ports got %d and %d packets, want 10 each", len(pub.got), len(sub.got))
			}
			if st := s.Stats(); st.Relayed != 20 {
				t.Fatalf("stats %+v", st)
			}
			// A wrong secret cannot allocate.
			bad := append(flags, "-W", "not-the-secret-0123456789", "-u", callA+":"+testGrant+":alice",
				"-e", natIP.String(), "-r", strconv.Itoa(portA), "-n", "2", "-p", port, host)
			if out, code := coturntest.Run(t, 30*time.Second, bad...); code <= 0 || !strings.Contains(out, "Cannot complete Allocation") {
				t.Fatalf("wrong secret: exit %d\n%s", code, out)
			}
		})
	}
}
