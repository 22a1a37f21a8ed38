package turnproxy

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what TURN REST credentials are (coturn's use-auth-secret)
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MinSecretLen is the shortest accepted --turn-secret.
const MinSecretLen = 16

// Credentials returns TURN REST credentials ("A REST API For Access To TURN
// Services", draft-uberti-behave-turn-rest-00 §2.2, as coturn implements it
// with use-auth-secret) for one participant of one call:
//
//	username = "<expiry unix seconds>:<callID>:<participant>"
//	password = base64(HMAC-SHA1(secret, username))
//
// coturn reads the expiry from before the first colon and treats the rest as
// the user name, so an operator may run coturn with static-auth-secret set to
// the same secret instead of Orville's relay. Orville's relay additionally
// reads the call id to allow relaying to that call's two media ports only.
func Credentials(secret []byte, callID, participant string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + callID + ":" + participant
	return username, restPassword(secret, username)
}

func restPassword(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// user is what a TURN username says.
type user struct {
	expires     time.Time
	callID      string
	participant string
}

var errUsername = errors.New("turn username is not <expiry>:<call>:<participant>")

// parseUsername splits a username made by Credentials. Call ids never hold a
// colon; participant ids may, so they take the rest.
func parseUsername(s string) (user, error) {
	exp, rest, ok := strings.Cut(s, ":")
	if !ok {
		return user{}, errUsername
	}
	callID, participant, ok := strings.Cut(rest, ":")
	if !ok || callID == "" || participant == "" {
		return user{}, errUsername
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sec <= 0 {
		return user{}, fmt.Errorf("%w: bad expiry %q", errUsername, exp)
	}
	return user{expires: time.Unix(sec, 0), callID: callID, participant: participant}, nil
}
