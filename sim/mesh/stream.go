package mesh

import (
	"net"
	"sync"
)

// streamConn is one end of an in-memory stream between two nodes: a
// net.Pipe end (synchronous, with deadlines) that reports TCP addresses
// and that the network can cut.
type streamConn struct {
	net.Conn
	pair   *streamPair
	local  *Transport
	remote *Transport
}

// streamPair is both ends of one stream; both end nodes register the
// pair so a partition or crash can close it.
type streamPair struct {
	n      *Network
	ends   [2]*streamConn
	once   sync.Once
	closed bool
	mu     sync.Mutex
}

func newStreamPair(n *Network, dialer, acceptor *Transport) (client, server *streamConn) {
	a, b := net.Pipe()
	p := &streamPair{n: n}
	client = &streamConn{Conn: a, pair: p, local: dialer, remote: acceptor}
	server = &streamConn{Conn: b, pair: p, local: acceptor, remote: dialer}
	p.ends = [2]*streamConn{client, server}
	dialer.addStream(p)
	acceptor.addStream(p)
	return client, server
}

func (c *streamConn) LocalAddr() net.Addr  { return c.local.tcpAddr }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote.tcpAddr }

// Close closes this end; the peer then reads EOF.
func (c *streamConn) Close() error {
	err := c.Conn.Close()
	c.pair.forget()
	return err
}

// cut closes both ends, as a reset connection. It reports whether the
// stream was still registered (open) before.
func (p *streamPair) cut() bool {
	p.mu.Lock()
	was := !p.closed
	p.mu.Unlock()
	for _, e := range p.ends {
		_ = e.Conn.Close()
	}
	p.forget()
	return was
}

// forget removes the pair from the network's registry once.
func (p *streamPair) forget() {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.ends[0].local.removeStream(p)
		p.ends[1].local.removeStream(p)
	})
}
