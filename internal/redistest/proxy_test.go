package redistest

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// ping sends PING on conn and returns the reply line, or the read error
// when nothing comes back within wait.
func ping(t *testing.T, conn net.Conn, wait time.Duration) (string, error) {
	t.Helper()
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		t.Fatalf("writing PING: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return line, err
}

func TestProxySilence(t *testing.T) {
	srv := Start(t)
	px := StartProxy(t, srv.Addr)
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", px.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	before := dial()
	if line, err := ping(t, before, 10*time.Second); err != nil || line != "+PONG\r\n" {
		t.Fatalf("through the proxy: %q, %v", line, err)
	}

	px.Silence()
	during := dial()
	// Nothing comes back, and the connection is not closed either: the
	// read ends by its deadline, not with EOF.
	for name, c := range map[string]net.Conn{"connection open before": before, "connection made during": during} {
		if line, err := ping(t, c, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("silent proxy, %s: %q, %v; want no answer and no close", name, line, err)
		}
	}

	px.Resume()
	after := dial()
	if line, err := ping(t, after, 10*time.Second); err != nil || line != "+PONG\r\n" {
		t.Fatalf("after Resume, a new connection: %q, %v", line, err)
	}
	for name, c := range map[string]net.Conn{"connection open before": before, "connection made during": during} {
		if line, err := ping(t, c, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("after Resume, %s: %q, %v; want it silent for good", name, line, err)
		}
	}
}
