package redistest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy started for a test, to put between a client under
// test and a server. It can go silent: Silence makes the connections it
// carries stop forwarding in both directions without closing them, as a
// connection does whose peer vanished behind a firewall or NAT (a
// half-open connection): the client's writes still succeed, and nothing
// comes back, ever.
type Proxy struct {
	// Addr is the proxy's address, 127.0.0.1:port.
	Addr string

	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	silent bool
	closed bool
	conns  map[*proxyConn]struct{}
}

// proxyConn is one client connection and, unless it was accepted while
// the proxy was silent, its connection to the target.
type proxyConn struct {
	client, server net.Conn
	silent         atomic.Bool
}

// StartProxy listens on a free loopback port and forwards every
// connection to target (host:port) until the test ends, when the proxy
// closes its listener and every connection.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// URL returns the proxy's address as a redis:// URL for database 0.
func (p *Proxy) URL() string { return "redis://" + p.Addr + "/0" }

// Silence makes every connection open now go silent for good: whatever
// either side sends is dropped, and neither is closed. Connections
// accepted until Resume are silent from the start.
func (p *Proxy) Silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.silent = true
	for c := range p.conns {
		c.silent.Store(true)
	}
}

// Resume makes connections accepted from now on forward again. The
// connections silenced stay silent, as a half-open connection does.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.silent = false
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		c := &proxyConn{client: client}
		p.mu.Lock()
		silent, closed := p.silent, p.closed
		p.mu.Unlock()
		if closed {
			client.Close()
			return
		}
		if !silent {
			if c.server, err = net.Dial("tcp", p.target); err != nil {
				client.Close()
				continue
			}
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.closeAll()
			return
		}
		c.silent.Store(c.server == nil || p.silent)
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.pump(c, c.client, c.server)
		if c.server != nil {
			p.wg.Add(1)
			go p.pump(c, c.server, c.client)
		}
	}
}

// pump copies from src to dst until src fails, dropping what it reads
// while c is silent. A connection that is not silent is closed as a whole
// when either side closes or fails; a silent one stays open on the
// client's side until the client closes it.
func (p *Proxy) pump(c *proxyConn, src, dst net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && dst != nil && !c.silent.Load() {
			if _, err := dst.Write(buf[:n]); err != nil && !c.silent.Load() {
				p.drop(c)
				return
			}
		}
		if err != nil {
			if !c.silent.Load() || src == c.client {
				p.drop(c)
			}
			return
		}
	}
}

// drop closes both sides of c and forgets it.
func (p *Proxy) drop(c *proxyConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.closeAll()
}

func (c *proxyConn) closeAll() {
	c.client.Close()
	if c.server != nil {
		c.server.Close()
	}
}

// close stops the proxy: its listener and every connection.
func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[*proxyConn]struct{}{}
	p.mu.Unlock()
	p.ln.Close()
	for c := range conns {
		c.closeAll()
	}
	p.wg.Wait()
}
