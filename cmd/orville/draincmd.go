package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/orville/orville/client"
)

// drainCommand is `orville drain`: POST /v1/drain, then, with --wait, follow
// the drain until the server has stopped (its API no longer answers) or was
// replaced (a new process answers /readyz 200). Exit codes as test-calling:
// 0 done, 2 usage, 3 unreachable or still draining at --wait-timeout,
// 4 refused (secret, --api-allow).
func drainCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("drain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", "https://127.0.0.1:444", "the server's API URL (TCP 444)")
	insecure := fs.Bool("insecure", false, "accept the server's certificate without verification (self-signed)")
	secret := fs.String("api-secret", "", "API secret (default: $ORVILLE_API_SECRET)")
	wait := fs.Bool("wait", false, "wait until the server has stopped (or been replaced), printing the calls left")
	waitTimeout := fs.Duration("wait-timeout", 2*time.Hour, "with --wait, give up after this long")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "orville drain: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *secret == "" {
		*secret = getenv("ORVILLE_API_SECRET")
	}
	if *secret == "" {
		fmt.Fprintln(stderr, "FAIL: no API secret: set ORVILLE_API_SECRET (or --api-secret)")
		return exitUsage
	}
	base := strings.TrimRight(*api, "/")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: *insecure}, //nolint:gosec // operator's explicit choice
	}}
	defer hc.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/drain", nil)
	req.Header.Set("Authorization", "Bearer "+*secret)
	resp, err := hc.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "FAIL: the API at %s is unreachable: %v\n", base, err)
		return exitUnreachable
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var answer struct {
		Calls   int    `json:"calls"`
		Message string `json:"message"`
		Error   struct {
			Code, Message string
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &answer)
	switch resp.StatusCode {
	case http.StatusAccepted:
	case http.StatusUnauthorized, http.StatusForbidden:
		fmt.Fprintf(stderr, "FAIL: the API at %s refused the drain (%d %s): %s\n", base, resp.StatusCode, answer.Error.Code, answer.Error.Message)
		return exitRefused
	default:
		fmt.Fprintf(stderr, "FAIL: the API at %s answered %d: %s\n", base, resp.StatusCode, strings.TrimSpace(string(body)))
		return exitUnreachable
	}
	fmt.Fprintf(stdout, "draining: %s\n", answer.Message)
	if !*wait {
		return exitOK
	}
	apic := &client.APIClient{BaseURL: base, Secret: *secret, HTTPClient: hc}
	return followDrain(apic, hc, answer.Calls, *waitTimeout, stdout, stderr)
}

// drainPoll is how often --wait looks at the server.
const drainPoll = 2 * time.Second

func followDrain(apic *client.APIClient, hc *http.Client, calls int, timeout time.Duration, stdout, stderr io.Writer) int {
	deadline := time.Now().Add(timeout)
	last := calls
	for time.Now().Before(deadline) {
		time.Sleep(drainPoll)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		list, err := apic.ListCalls(ctx)
		cancel()
		var ae *client.APIError
		switch {
		case errors.As(err, &ae):
			fmt.Fprintf(stderr, "FAIL: the API at %s answered %d while draining: %s\n", apic.BaseURL, ae.Status, ae.Message)
			return exitUnreachable
		case err != nil:
			// The listener is gone: the process has exited.
			fmt.Fprintln(stdout, "stopped: the server no longer answers")
			return exitOK
		}
		if ready(hc, apic.BaseURL) {
			fmt.Fprintln(stdout, "replaced: a new server answers and takes calls")
			return exitOK
		}
		if len(list) != last {
			last = len(list)
			fmt.Fprintf(stdout, "draining: %d calls left\n", last)
		}
	}
	fmt.Fprintf(stderr, "FAIL: still draining after %v (%d calls left)\n", timeout, last)
	return exitUnreachable
}

// ready reports whether /readyz answers 200 (a server that is not draining).
func ready(hc *http.Client, base string) bool {
	resp, err := hc.Get(base + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
