package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartStopRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") || s.Addr == "127.0.0.1:6379" {
		t.Fatalf("Addr = %q, want 127.0.0.1 on a free port", s.Addr)
	}
	if want := "redis://" + s.Addr + "/0"; s.URL() != want {
		t.Fatalf("URL() = %q, want %q", s.URL(), want)
	}
	opt, err := redis.ParseURL(s.URL())
	if err != nil || opt.Addr != s.Addr || opt.DB != 0 {
		t.Fatalf("ParseURL(%q) = %+v, %v", s.URL(), opt, err)
	}

	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v", got, err)
	}

	s.Stop(t)
	if s.Running() {
		t.Fatal("Running() after Stop")
	}
	if conn, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("connected after Stop")
	}
	s.Stop(t) // stopping twice is harmless

	addr := s.Addr
	s.Restart(t)
	if s.Addr != addr {
		t.Fatalf("Addr after Restart = %q, want %q", s.Addr, addr)
	}
	// The pool may hold a connection to the killed process; go-redis
	// retries on a fresh one.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET k after Restart = %v, want redis.Nil (no persistence)", err)
	}
}

func TestRestartKeepsDataWithPersistence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t, "--appendonly", "yes", "--appendfsync", "always")
	c := s.Client(t)
	if err := c.Set(ctx, "k", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "kept" {
		t.Fatalf("GET k after Restart = %q, %v; want kept", got, err)
	}
}

func TestServersAreIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := Start(t), Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("two servers share %s", a.Addr)
	}
	if err := a.Client(t).Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Client(t).Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET k on the second server = %v, want redis.Nil", err)
	}
}

func TestCommandCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	if n := s.CommandCount(t, "get"); n != 0 {
		t.Fatalf("CommandCount(get) on a fresh server = %d, want 0", n)
	}
	c := s.Client(t)
	for range 3 {
		c.Get(ctx, "missing")
	}
	c.Set(ctx, "k", "v", 0)
	if n := s.CommandCount(t, "get"); n != 3 {
		t.Fatalf("CommandCount(get) = %d, want 3", n)
	}
	if n := s.CommandCount(t, "SET"); n != 1 {
		t.Fatalf("CommandCount(SET) = %d, want 1", n)
	}
	if n := s.CommandCount(t, "hgetall"); n != 0 {
		t.Fatalf("CommandCount(hgetall) = %d, want 0", n)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cl := StartCluster(t, 3)
	if got := len(cl.Addrs()); got != 3 {
		t.Fatalf("len(Addrs()) = %d, want 3", got)
	}
	c := cl.Client(t)
	const keys = 50
	for i := range keys {
		if err := c.Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err(); err != nil {
			t.Fatalf("SET key:%d: %v", i, err)
		}
	}
	for i := range keys {
		got, err := c.Get(ctx, fmt.Sprintf("key:%d", i)).Int()
		if err != nil || got != i {
			t.Fatalf("GET key:%d = %d, %v", i, got, err)
		}
	}
	// The keys hash to slots on every master, so each one served SETs.
	for _, n := range cl.Nodes() {
		if sets := n.CommandCount(t, "set"); sets == 0 {
			t.Errorf("node %s served no SET", n.Addr)
		}
	}
}

func TestSentinel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := StartSentinel(t)
	if s.MasterName() != "mymaster" {
		t.Fatalf("MasterName() = %q", s.MasterName())
	}
	if got := s.MasterAddr(t); got != s.Master().Addr {
		t.Fatalf("MasterAddr() = %q, want %q", got, s.Master().Addr)
	}
	c := s.FailoverClient(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v", got, err)
	}
	if n := s.Master().CommandCount(t, "set"); n != 1 {
		t.Fatalf("master served %d SETs, want 1", n)
	}
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := StartSentinel(t)
	c := s.FailoverClient(t)
	if err := c.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Let the write reach the replica before the master dies.
	if err := c.Wait(ctx, 1, time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	s.Master().Stop(t)
	waitFor(t, 20*time.Second, "the replica to be promoted", func() error {
		if got := s.MasterAddr(t); got != s.Replica().Addr {
			return fmt.Errorf("master is %s", got)
		}
		return nil
	})
	waitFor(t, 10*time.Second, "a write through the failover client", func() error {
		return c.Set(ctx, "after", "2", 0).Err()
	})
	if got, err := c.Get(ctx, "before").Result(); err != nil || got != "1" {
		t.Fatalf("GET before = %q, %v", got, err)
	}
}

func TestMissingBinaryFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		Start(ft)
	}()
	want := "redis-server not found: install it with `apt-get install -y redis-server`"
	if !ft.fatal || ft.msg != want {
		t.Fatalf("Start without redis-server: fatal=%v msg=%q, want fatal %q", ft.fatal, ft.msg, want)
	}
}

// fatalRecorder records Fatalf instead of ending the test, then panics to
// unwind the helper the way runtime.Goexit would.
type fatalRecorder struct {
	testing.TB
	fatal bool
	msg   string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.fatal = true
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}

func (f *fatalRecorder) Skip(...any)          { panic("Skip called") }
func (f *fatalRecorder) Skipf(string, ...any) { panic("Skipf called") }
func (f *fatalRecorder) SkipNow()             { panic("SkipNow called") }
