// Package coturntest runs coturn's TURN test client, turnutils_uclient
// (Debian package coturn, installed by .ci/run), for tests that check the
// relay against a TURN client nobody here wrote.
package coturntest

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// Run runs turnutils_uclient with args and returns its output and exit code,
// or -1 when it was stopped at the timeout (it waits long for echoes a peer
// that does not echo never sends).
func Run(t testing.TB, timeout time.Duration, args ...string) (string, int) {
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
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

var countsRe = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)

// Counts returns uclient's latest message counts: sent to the peer and
// received back from it through the relay.
func Counts(out string) (sent, received int, ok bool) {
	all := countsRe.FindAllStringSubmatch(out, -1)
	if len(all) == 0 {
		return 0, 0, false
	}
	last := all[len(all)-1]
	sent, _ = strconv.Atoi(last[1])
	received, _ = strconv.Atoi(last[2])
	return sent, received, true
}
