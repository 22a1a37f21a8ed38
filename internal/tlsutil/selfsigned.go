package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// clockSkew backdates NotBefore so clients whose clocks run a little behind
// the server's still accept a certificate generated at start-up.
const clockSkew = time.Hour

// SelfSigned generates an ECDSA P-256 certificate valid from now for
// validFor, for TLS servers (serverAuth), with a SAN for each of hosts (IP
// addresses as IP SANs, the rest as DNS names) plus 127.0.0.1, ::1 and
// localhost. Empty and unspecified (0.0.0.0, ::) entries are skipped, so the
// caller may pass its configured addresses as they are.
func SelfSigned(hosts []string, validFor time.Duration) (tls.Certificate, error) {
	if validFor <= 0 {
		return tls.Certificate{}, errors.New("tlsutil: self-signed certificate validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsutil: generate key: %w", err)
	}
	// RFC 5280 §4.1.2.2: a positive serial of at most 20 octets; 128 random
	// bits make collisions between restarts irrelevant.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsutil: serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Orville"}, CommonName: "Orville self-signed"},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature, // ECDSA: signatures only, no key encipherment
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	// Loopback names are always present so local tools (test-calling,
	// browsers in --dev) can connect by loopback name or address.
	addSANs(tmpl, slices.Concat(hosts, []string{"127.0.0.1", "::1", "localhost"}))

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsutil: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsutil: parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// addSANs sorts hosts into IP and DNS SANs, without duplicates.
func addSANs(tmpl *x509.Certificate, hosts []string) {
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(h), "["), "]")
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if ip.IsUnspecified() || seen[ip.String()] {
				continue
			}
			seen[ip.String()] = true
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		h = strings.ToLower(h)
		if seen[h] {
			continue
		}
		seen[h] = true
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
}
