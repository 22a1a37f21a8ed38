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
//	username = "<expiry unix seconds>:<callID>:<grant>:<participant>"
//	password = base64(HMAC-SHA1(secret, username))
//
// coturn reads the expiry from before the first colon and treats the rest as
// the user name, so an operator may run coturn with static-auth-secret set to
// the same secret instead of Orville's relay. Orville's relay additionally
// reads the call id (it relays to that call's two media ports only) and the
// grant, the id the call recorded for these credentials: removing the
// participant revokes it (Config.Granted).
func Credentials(secret []byte, callID, grant, participant string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + callID + ":" + grant + ":" + participant
	return username, restPassword(secret, username)
}

func restPassword(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// CheckPassword reports whether password is the one Credentials made for
// username (constant time).
func CheckPassword(secret []byte, username, password string) bool {
	return hmac.Equal([]byte(restPassword(secret, username)), []byte(password))
}

// User is what a TURN username says.
type User struct {
	Expires     time.Time
	CallID      string
	Grant       string
	Participant string
}

var errUsername = errors.New("turn username is not <expiry>:<call>:<grant>:<participant>")

// ParseUsername splits a username made by Credentials. Call ids and grants
// never hold a colon; participant ids may, so they take the rest.
func ParseUsername(s string) (User, error) {
	exp, rest, ok := strings.Cut(s, ":")
	if !ok {
		return User{}, errUsername
	}
	callID, rest, ok := strings.Cut(rest, ":")
	if !ok || callID == "" {
		return User{}, errUsername
	}
	grant, participant, ok := strings.Cut(rest, ":")
	if !ok || grant == "" || participant == "" {
		return User{}, errUsername
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sec <= 0 {
		return User{}, fmt.Errorf("%w: bad expiry %q", errUsername, exp)
	}
	return User{Expires: time.Unix(sec, 0), CallID: callID, Grant: grant, Participant: participant}, nil
}
