package redistest

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"testing"
)

// HoldProxy relays TCP connections to a server. While it holds, it keeps
// what clients send instead of forwarding it, as the kernel of a server
// that stopped answering would: commands reach the server, and run, only
// once the proxy releases them, even those of a client that gave up and
// closed its connection meanwhile.
type HoldProxy struct {
	// Addr is the proxy's address, 127.0.0.1:port.
	Addr string

	target string
	ln     net.Listener

	mu    sync.Mutex
	held  bool
	conns map[*holdConn]bool
	// seen is everything clients sent while the proxy held, for Held.
	seen []byte
}

// holdConn is one relayed connection.
type holdConn struct {
	client, server net.Conn
	pending        []byte // sent by the client while the proxy held
	clientGone     bool
	// done is closed once the server has closed the connection.
	done chan struct{}
}

// NewHoldProxy starts a proxy to target (host:port) on a free loopback port.
// It is closed, with every connection, when the test ends.
func NewHoldProxy(t testing.TB, target string) *HoldProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	p := &HoldProxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[*holdConn]bool{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.accept(&wg)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			_ = c.client.Close()
			_ = c.server.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

// URL returns the proxy's address as a redis:// URL for database 0.
func (p *HoldProxy) URL() string { return "redis://" + p.Addr + "/0" }

// Port returns the proxy's TCP port.
func (p *HoldProxy) Port() int {
	_, port, _ := net.SplitHostPort(p.Addr)
	n, _ := strconv.Atoi(port)
	return n
}

func (p *HoldProxy) accept(wg *sync.WaitGroup) {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		c := &holdConn{client: client, server: server, done: make(chan struct{})}
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		wg.Add(2)
		go func() {
			defer wg.Done()
			p.answer(c)
		}()
		go func() {
			defer wg.Done()
			p.relay(c)
		}()
	}
}

// answer forwards what the server sends until it closes the connection,
// also after the client has gone.
func (p *HoldProxy) answer(c *holdConn) {
	defer close(c.done)
	buf := make([]byte, 32<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 {
			_, _ = c.client.Write(buf[:n])
		}
		if err != nil {
			_ = c.client.Close()
			return
		}
	}
}

// relay forwards what the client sends, or keeps it while the proxy holds.
func (p *HoldProxy) relay(c *holdConn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.held {
				c.pending = append(c.pending, buf[:n]...)
				p.seen = append(p.seen, buf[:n]...)
			} else if _, werr := c.server.Write(buf[:n]); werr != nil {
				err = werr
			}
			p.mu.Unlock()
		}
		if err != nil {
			p.mu.Lock()
			c.clientGone = true
			if len(c.pending) == 0 {
				_ = c.server.Close()
				delete(p.conns, c)
			}
			p.mu.Unlock()
			return
		}
	}
}

// Hold makes the proxy keep what clients send from now on.
func (p *HoldProxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held, p.seen = true, nil
}

// Release forwards everything held, in order, and relays again. For a
// client that closed its connection meanwhile, Release waits until the
// server has run what it had sent and closed the connection too.
func (p *HoldProxy) Release() {
	p.mu.Lock()
	p.held = false
	var gone []*holdConn
	for c := range p.conns {
		if len(c.pending) > 0 {
			_, _ = c.server.Write(c.pending)
			c.pending = nil
		}
		if c.clientGone {
			gone = append(gone, c)
			delete(p.conns, c)
		}
	}
	p.mu.Unlock()
	for _, c := range gone {
		if tc, ok := c.server.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		<-c.done
		_ = c.server.Close()
	}
}

// Held counts the occurrences of s in what clients sent since the last
// Hold.
func (p *HoldProxy) Held(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Count(p.seen, []byte(s))
}
