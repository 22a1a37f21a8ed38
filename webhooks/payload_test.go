package webhooks

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignAndVerify(t *testing.T) {
	body := []byte(`{"id":"1","type":"call.started"}`)
	now := time.Unix(1767225600, 0)
	sig := Sign(testSecret, now, body)
	// The documented construction: HMAC-SHA256 over "<t>.<body>", hex.
	if !strings.HasPrefix(sig, "t=1767225600,v1=") || len(sig) != len("t=1767225600,v1=")+64 {
		t.Fatalf("signature %q", sig)
	}
	if want := "t=1767225600,v1=" + mac(testSecret, "1767225600", body); sig != want {
		t.Fatalf("signature %q, want %q", sig, want)
	}
	for _, c := range []struct {
		name   string
		secret string
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"good", testSecret, sig, string(body), now, nil},
		{"within tolerance", testSecret, sig, string(body), now.Add(4 * time.Minute), nil},
		{"stale", testSecret, sig, string(body), now.Add(6 * time.Minute), ErrStale},
		{"future", testSecret, sig, string(body), now.Add(-6 * time.Minute), ErrStale},
		{"other body", testSecret, sig, `{"id":"2"}`, now, ErrBadSignature},
		{"other secret", "another-secret-0123456789", sig, string(body), now, ErrBadSignature},
		{"rotation: any v1 may match", testSecret, "t=1767225600,v1=00ff," + sig[len("t=1767225600,"):], string(body), now, nil},
		{"no v1", testSecret, "t=1767225600", string(body), now, ErrMalformed},
		{"no t", testSecret, sig[len("t=1767225600,"):], string(body), now, ErrMalformed},
		{"garbage", testSecret, "garbage", string(body), now, ErrMalformed},
		{"empty", testSecret, "", string(body), now, ErrMalformed},
	} {
		if err := Verify(c.secret, c.header, []byte(c.body), c.now, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
