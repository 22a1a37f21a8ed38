package roommgr

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// maxGrantsPerParticipant bounds the live grants one participant holds: a
// join token per invitation and TURN/SOCKS credentials per join and
// refresh. Past it the grant expiring soonest is forgotten (so revoked),
// which only an abusive number of invitations reaches.
const maxGrantsPerParticipant = 256

// A grant is one credential issued to a participant: a join token (its
// jti) or a set of TURN/SOCKS credentials. Removing the participant revokes
// every grant it holds, so whatever was issued before the removal stops
// working — also after the participant is invited again, which issues new
// grants. Expiry is the credential's own check; the expiry recorded here
// only lets an expired grant be forgotten.

// Grant records a new credential for participant id, valid until exp, and
// returns its id (16 hex digits); "" when the call has ended or the
// participant was removed and not invited again (Readmit).
func (r *Room) Grant(id string, exp time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	g := hex.EncodeToString(b[:])
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended || r.removed[id] {
		return ""
	}
	if r.grants == nil {
		r.grants = map[string]map[string]time.Time{}
	}
	held := r.grants[id]
	if held == nil {
		held = map[string]time.Time{}
		r.grants[id] = held
	}
	for k, e := range held {
		if e.Before(now) {
			delete(held, k)
		}
	}
	for len(held) >= maxGrantsPerParticipant {
		var first string
		for k, e := range held {
			if first == "" || e.Before(held[first]) {
				first = k
			}
		}
		delete(held, first)
	}
	held[g] = exp
	return g
}

// Granted reports whether g is a grant of participant id that no removal
// has revoked since it was issued.
func (r *Room) Granted(id, g string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.grants[id][g]
	return ok && !r.ended
}

// revokeLocked forgets every grant of participant id.
func (r *Room) revokeLocked(id string) { delete(r.grants, id) }
