package netnstest

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestLinkAndDo: two namespaces joined by a veth pair; a listener opened in
// one through Do is reached by a dial made in the other, and the addresses
// are the namespaces' own.
func TestLinkAndDo(t *testing.T) {
	a, b := New(t, "a"), New(t, "b")
	Link(t, a, "v-a", "10.90.0.1/24", b, "v-b", "10.90.0.2/24")
	ln, err := a.Listen("tcp", "10.90.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = c.Write([]byte("hi"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := b.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q %v", buf, err)
	}
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != "10.90.0.2" {
		t.Errorf("dialed from %s, want b's address", got)
	}
	// The test's own namespace has neither address.
	if _, err := net.Listen("tcp", "10.90.0.1:0"); err == nil {
		t.Error("10.90.0.1 exists outside the namespace")
	}
	n, err := b.Net()
	if err != nil {
		t.Fatal(err)
	}
	ifs, err := n.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, i := range ifs {
		names[i.Name] = true
	}
	if !names["v-b"] || names["v-a"] || len(ifs) != 2 {
		t.Errorf("interfaces in b: %v", names)
	}
}
