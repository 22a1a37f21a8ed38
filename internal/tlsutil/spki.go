package tlsutil

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
)

// SPKIHash returns base64(SHA-256(SubjectPublicKeyInfo)) of cert: the form
// Chromium's --ignore-certificate-errors-spki-list and HPKP-style pins take.
// It equals
//
//	openssl x509 -pubkey -noout -in cert.pem | openssl pkey -pubin -outform der |
//	openssl dgst -sha256 -binary | base64
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
