package signaling

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"
)

// access is what a route demands beyond being routed.
type access int

const (
	// accessBearer: allow-listed source and the API secret (the default).
	accessBearer access = iota
	// accessSource: allow-listed source only (readiness probes, the OpenAPI
	// document): nothing secret, but not for the whole Internet either.
	accessSource
	// accessPublic: anyone (/healthz, which the client listener serves too).
	accessPublic
)

// sourceAllowed reports whether the peer's address is in --api-allow. It uses
// the TCP peer (RemoteAddr) only: X-Forwarded-For is set by whoever connects
// and would let anyone claim to be the messaging server.
func sourceAllowed(remoteAddr string, allow []netip.Prefix) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false // not an IP peer (e.g. a unix socket): deny
	}
	// A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d, and Contains
	// never matches a zoned address: compare the plain form.
	addr := ap.Addr().Unmap().WithZone("")
	for _, p := range allow {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// An operator may write ::ffff:10.0.0.0/104; it means 10.0.0.0/8.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Contains(addr) {
			return addr, true
		}
	}
	return addr, false
}

// bearerOK reports whether r carries "Authorization: Bearer <secret>" (RFC
// 6750 §2.1; the scheme is case-insensitive per RFC 9110 §11.1). present is
// false when no bearer credential was sent at all.
func bearerOK(r *http.Request, secret string) (present, ok bool) {
	h := r.Header.Get("Authorization")
	scheme, cred, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false, false
	}
	cred = strings.TrimSpace(cred)
	if cred == "" {
		return false, false
	}
	// Hashing first makes the comparison constant-time in the length too.
	got, want := sha256.Sum256([]byte(cred)), sha256.Sum256([]byte(secret))
	return true, subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// authorize applies the route's access rule in the documented order: source
// first (403 forbidden_source), then the secret (401 unauthorized, missing or
// wrong alike). It writes the refusal and returns false when r may not proceed.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, a access) bool {
	if a == accessPublic {
		return true
	}
	if _, ok := sourceAllowed(r.RemoteAddr, s.cfg.APIAllow); !ok {
		writeError(w, http.StatusForbidden, apiCodeForbiddenSource,
			"this address may not use the API: add it to --api-allow (ORVILLE_API_ALLOW)")
		return false
	}
	if a == accessSource {
		return true
	}
	present, ok := bearerOK(r, s.cfg.APISecret)
	switch {
	case !present:
		w.Header().Set("WWW-Authenticate", `Bearer realm="orville"`)
		writeError(w, http.StatusUnauthorized, apiCodeUnauthorized, "missing Authorization: Bearer <API secret>")
		return false
	case !ok:
		w.Header().Set("WWW-Authenticate", `Bearer realm="orville", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, apiCodeUnauthorized, "wrong API secret")
		return false
	}
	return true
}
