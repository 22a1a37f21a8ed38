package tlsutil

import (
	"crypto/tls"
	"fmt"
	"os"
)

// Load reads a PEM certificate (chain, leaf first) and its PEM private key.
// Errors name the file at fault, since operators often mix up the two files
// or point at a directory.
func Load(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS key: %w", err)
	}
	// X509KeyPair checks that the key matches the certificate and fills Leaf.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate %q with key %q: %w", certFile, keyFile, err)
	}
	return cert, nil
}
