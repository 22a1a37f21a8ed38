package signaling

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Join tokens are HS256 JWTs (RFC 7519) bound to one call and one participant.
const (
	tokenIssuer   = "orville"
	tokenAudience = "orville-rtc"
)

// Claims are a join token's contents.
type Claims struct {
	// ID (jti) is the grant the room recorded for this token
	// (roommgr.Room.Grant): removing the participant revokes it.
	jwt.RegisteredClaims
	// Call is the eventId the token opens; Subject is the participant id.
	Call string `json:"call"`
	// Publish grants sending media; tokens without it may only receive.
	Publish bool `json:"publish"`
	// Name is the participant's display name, for other clients to show.
	Name string `json:"name,omitempty"`
}

// ErrInvalidToken covers every way a token can be refused.
var ErrInvalidToken = errors.New("invalid token")

type tokens struct {
	key []byte
	ttl time.Duration
}

// issue signs a token for grant (its jti), expiring at exp.
func (t tokens) issue(call, participant, name, grant string, publish bool, now, exp time.Time) (string, error) {
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:     grant,
			Issuer: tokenIssuer, Subject: participant, Audience: jwt.ClaimStrings{tokenAudience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Call: call, Publish: publish, Name: name,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
}

func (t tokens) parse(s string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(s, &c, func(*jwt.Token) (any, error) { return t.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(tokenAudience), jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Call == "" || c.Subject == "" || c.ID == "" {
		return nil, fmt.Errorf("%w: no call, participant or token id", ErrInvalidToken)
	}
	return &c, nil
}
