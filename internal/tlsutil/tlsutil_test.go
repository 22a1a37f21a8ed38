package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSelfSignedServesPinnedClient(t *testing.T) {
	cert, err := SelfSigned([]string{"calls.example.com", "203.0.113.7", "[2001:db8::1]", "0.0.0.0", ""}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	for _, name := range []string{"calls.example.com", "localhost"} {
		if !slices.Contains(leaf.DNSNames, name) {
			t.Errorf("DNSNames %v miss %s", leaf.DNSNames, name)
		}
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	for _, ip := range []string{"203.0.113.7", "2001:db8::1", "127.0.0.1", "::1"} {
		if !slices.Contains(ips, ip) {
			t.Errorf("IPAddresses %v miss %s", ips, ip)
		}
	}
	if slices.Contains(ips, "0.0.0.0") {
		t.Error("unspecified address must not be a SAN")
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			_, _ = c.Write([]byte("hello")) // completes the handshake, or fails if the client refused
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()

	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, name := range []string{"calls.example.com", "localhost", "127.0.0.1", "203.0.113.7"} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Errorf("%s: pinned client rejected the certificate: %v", name, err)
			continue
		}
		got, err := io.ReadAll(conn)
		conn.Close()
		if err != nil || string(got) != "hello" {
			t.Errorf("%s: read %q, %v", name, got, err)
		}
	}

	// Without the pin the same client must refuse: no known CA issued it.
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "calls.example.com"}); err == nil {
		c.Close()
		t.Error("unpinned client accepted a self-signed certificate")
	}
	// A name outside the SANs must be refused even with the pin.
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "other.example.com"}); err == nil {
		c.Close()
		t.Error("pinned client accepted a name the certificate does not cover")
	}
}

func TestSelfSignedVerifiesLoopbackNames(t *testing.T) {
	cert, err := SelfSigned(nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := SelfSigned(nil, 0); err == nil {
		t.Error("zero validity accepted")
	}
}

// The expected hash was computed with the pipeline in SPKIHash's doc comment:
// openssl x509 -pubkey -noout -in testdata/cert.pem | openssl pkey -pubin -outform der |
// openssl dgst -sha256 -binary | base64
func TestSPKIHashKnownValue(t *testing.T) {
	data, err := os.ReadFile("testdata/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	const want = "t1HJgvLG35/NuuTUL+76IEcdwvUieWPKli2E9HoQwgw="
	if got := SPKIHash(cert); got != want {
		t.Errorf("SPKIHash = %s, want %s", got, want)
	}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	a, err := SelfSigned([]string{"a.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SelfSigned([]string{"b.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyDER := func(c tls.Certificate) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	certA := writePEM(t, dir, "a.crt", "CERTIFICATE", a.Certificate[0])
	keyA := writePEM(t, dir, "a.key", "PRIVATE KEY", keyDER(a))
	keyB := writePEM(t, dir, "b.key", "PRIVATE KEY", keyDER(b))

	got, err := Load(certA, keyA)
	if err != nil {
		t.Fatal(err)
	}
	if got.Leaf == nil || SPKIHash(got.Leaf) != SPKIHash(a.Leaf) {
		t.Error("loaded certificate differs from the written one")
	}

	for _, tt := range []struct {
		name      string
		cert, key string
		wantInErr []string
	}{
		{"missing cert", filepath.Join(dir, "nope.crt"), keyA, []string{"TLS certificate", "nope.crt"}},
		{"missing key", certA, filepath.Join(dir, "nope.key"), []string{"TLS key", "nope.key"}},
		{"key does not match", certA, keyB, []string{"a.crt", "b.key"}},
		{"swapped files", keyA, certA, []string{"a.key", "a.crt"}},
	} {
		_, err := Load(tt.cert, tt.key)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		for _, w := range tt.wantInErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tt.name, err, w)
			}
		}
	}
}
