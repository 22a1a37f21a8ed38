package sfu

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"strings"

	"github.com/pion/dtls/v3/pkg/crypto/fingerprint"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
)

// certificate is the DTLS identity of a call's transports and the SDP
// fingerprint that names it (RFC 8122 §5, sha-256 as RFC 8827 §6.5 requires).
type certificate struct {
	tls         tls.Certificate
	fingerprint string
}

func newCertificate(c *tls.Certificate) (*certificate, error) {
	var cert tls.Certificate
	if c != nil {
		cert = *c
	} else {
		var err error
		if cert, err = selfsign.GenerateSelfSigned(); err != nil {
			return nil, err
		}
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	fp, err := fingerprint.Fingerprint(leaf, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	// RFC 8122 §5: upper-case hex (Firefox refuses lower case).
	return &certificate{tls: cert, fingerprint: strings.ToUpper(fp)}, nil
}
