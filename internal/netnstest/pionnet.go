package netnstest

import (
	"context"
	"net"
	"sync"

	pionnet "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// Net is a pion network (transport.Net) inside the namespace: an ICE agent
// given it gathers the namespace's interfaces and opens its sockets there,
// also after an address change (Interfaces reads them again each time).
func (n *NS) Net() (pionnet.Net, error) {
	var std *stdnet.Net
	err := n.Do(func() error {
		var err error
		std, err = stdnet.NewNet()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &nsNet{Net: std, ns: n, std: std}, nil
}

type nsNet struct {
	pionnet.Net
	ns  *NS
	std *stdnet.Net
	mu  sync.Mutex // stdnet's interface list is not safe to update concurrently
}

func (m *nsNet) Interfaces() ([]*pionnet.Interface, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ns.Do(m.std.UpdateInterfaces); err != nil {
		return nil, err
	}
	return m.std.Interfaces()
}

func (m *nsNet) InterfaceByIndex(i int) (*pionnet.Interface, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.std.InterfaceByIndex(i)
}

func (m *nsNet) InterfaceByName(name string) (*pionnet.Interface, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.std.InterfaceByName(name)
}

func (m *nsNet) ListenPacket(network, address string) (c net.PacketConn, err error) {
	err = m.ns.Do(func() error { c, err = m.std.ListenPacket(network, address); return err })
	return c, err
}

func (m *nsNet) ListenUDP(network string, laddr *net.UDPAddr) (c pionnet.UDPConn, err error) {
	err = m.ns.Do(func() error { c, err = m.std.ListenUDP(network, laddr); return err })
	return c, err
}

func (m *nsNet) ListenTCP(network string, laddr *net.TCPAddr) (l pionnet.TCPListener, err error) {
	err = m.ns.Do(func() error { l, err = m.std.ListenTCP(network, laddr); return err })
	return l, err
}

func (m *nsNet) Dial(network, address string) (c net.Conn, err error) {
	err = m.ns.Do(func() error { c, err = m.std.Dial(network, address); return err })
	return c, err
}

func (m *nsNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (c pionnet.UDPConn, err error) {
	err = m.ns.Do(func() error { c, err = m.std.DialUDP(network, laddr, raddr); return err })
	return c, err
}

func (m *nsNet) DialTCP(network string, laddr, raddr *net.TCPAddr) (c pionnet.TCPConn, err error) {
	err = m.ns.Do(func() error { c, err = m.std.DialTCP(network, laddr, raddr); return err })
	return c, err
}

func (m *nsNet) CreateDialer(d *net.Dialer) pionnet.Dialer { return nsDialer{m.ns, d} }

func (m *nsNet) CreateListenConfig(lc *net.ListenConfig) pionnet.ListenConfig {
	return nsListenConfig{m.ns, lc}
}

type nsDialer struct {
	ns *NS
	d  *net.Dialer
}

func (d nsDialer) Dial(network, address string) (c net.Conn, err error) {
	err = d.ns.Do(func() error { c, err = d.d.Dial(network, address); return err })
	return c, err
}

type nsListenConfig struct {
	ns *NS
	lc *net.ListenConfig
}

func (l nsListenConfig) Listen(ctx context.Context, network, address string) (ln net.Listener, err error) {
	err = l.ns.Do(func() error { ln, err = l.lc.Listen(ctx, network, address); return err })
	return ln, err
}

func (l nsListenConfig) ListenPacket(ctx context.Context, network, address string) (c net.PacketConn, err error) {
	err = l.ns.Do(func() error { c, err = l.lc.ListenPacket(ctx, network, address); return err })
	return c, err
}
