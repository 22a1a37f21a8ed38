package signaling_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// Every token carries an id (jti); removing a participant revokes every
// token issued to it before the removal — also after it is invited again —
// while the token of the new invitation works.
func TestRemovalRevokesEarlierTokensAfterReinvite(t *testing.T) {
	ts := startServer(t, 44160)
	ctx := context.Background()
	call := ts.createCall(t).State.EventID

	first, second := ts.token(t, call, "erin"), ts.token(t, call, "erin")
	ids := map[string]bool{}
	for _, tok := range []string{first, second} {
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			JTI string `json:"jti"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil || claims.JTI == "" {
			t.Fatalf("token payload %s has no jti (%v)", payload, err)
		}
		ids[claims.JTI] = true
	}
	if len(ids) != 2 {
		t.Fatalf("two tokens share one id: %v", ids)
	}

	// Someone stays, so the call does not end (leave grace) while erin is out.
	stay := dialWS(t, ts)
	send(t, stay, joinMsg(ts.token(t, call, "frank")))
	next(t, stay, "joined")
	in := dialWS(t, ts)
	send(t, in, joinMsg(first))
	next(t, in, "joined")
	if err := ts.apiClient.RemoveParticipant(ctx, call, "erin"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, in, "ended"); m.Reason != "removed" {
		t.Fatalf("ended reason %q", m.Reason)
	}

	fresh := ts.token(t, call, "erin") // invited again
	for name, tok := range map[string]string{"the token used before": first, "an unused earlier token": second} {
		c := dialWS(t, ts)
		send(t, c, joinMsg(tok))
		if m := expectError(t, c, "forbidden"); !strings.Contains(m.Message, "revoked") {
			t.Errorf("%s: message %q", name, m.Message)
		}
	}
	c := dialWS(t, ts)
	send(t, c, joinMsg(fresh))
	next(t, c, "joined")
}
