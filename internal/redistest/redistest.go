// Package redistest starts real Redis processes for tests: a standalone
// redis-server, a Redis Cluster, or a master with a replica watched by a
// sentinel. Every process listens on a free loopback port, keeps its files
// in a per-test temporary directory and is killed when the test ends, so
// concurrent test runs never share a server and never touch a Redis that
// is already running on the machine.
package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// readyTimeout bounds how long a started process may take to answer PING.
	readyTimeout = 10 * time.Second
	// ioTimeout bounds a single helper command sent to a process.
	ioTimeout = 2 * time.Second
	// startAttempts is how many free ports Start tries before giving up.
	startAttempts = 5
)

// errAddrInUse reports that a process could not bind its port.
var errAddrInUse = errors.New("address already in use")

// lookPath finds a Redis executable on PATH or fails the test with the
// command that installs it.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install it with `apt-get install -y redis-server`", name)
	}
	return p
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// process is one running Redis executable.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Server is a redis-server process started for a test. Sentinels and
// cluster nodes started by this package are Servers too.
type Server struct {
	// Addr is the server's address, 127.0.0.1:port. It stays the same
	// across Stop and Restart.
	Addr string

	bin     string
	dir     string
	logPath string
	argv    func(port int) ([]string, error)
	port    int

	mu   sync.Mutex
	proc *process
}

// Start starts a redis-server on a free loopback port for the duration of
// the test and waits until it answers PING. The server runs with
// --save "" --appendonly no --port N --bind 127.0.0.1 --dir <temp dir>
// followed by args, so args can override those settings (for example
// "--appendonly", "yes" to keep data across Restart). A missing
// redis-server fails the test.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	dir := t.TempDir()
	extra := append([]string(nil), args...)
	return startServer(t, bin, dir, func(port int) ([]string, error) {
		base := []string{
			"--save", "",
			"--appendonly", "no",
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--dir", dir,
		}
		return append(base, extra...), nil
	})
}

// startServer launches bin with the arguments argv returns for a port,
// trying other ports when one turns out to be taken, and registers the
// cleanup that kills the process.
func startServer(t testing.TB, bin, dir string, argv func(port int) ([]string, error)) *Server {
	t.Helper()
	s := &Server{
		bin:     bin,
		dir:     dir,
		logPath: filepath.Join(dir, "redis.log"),
		argv:    argv,
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("redistest: last lines of %s log (%s):\n%s", s.Addr, s.logPath, s.logTail(20))
		}
	})
	var err error
	for range startAttempts {
		port := freePort(t)
		if err = s.launch(port); err == nil {
			return s
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("redistest: starting %s: %v", filepath.Base(bin), err)
	return nil
}

// launch starts the process on port and waits until it is ready.
func (s *Server) launch(port int) error {
	args, err := s.argv(port)
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "### redistest: starting %s on port %d\n", filepath.Base(s.bin), port)

	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()

	s.mu.Lock()
	if s.port != port {
		// Written only when the port changes, never on Restart, so that
		// Addr can be read without locking while the server runs.
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	s.proc = p
	s.mu.Unlock()

	if err := s.waitReady(p); err != nil {
		p.kill()
		s.mu.Lock()
		s.proc = nil
		s.mu.Unlock()
		return err
	}
	return nil
}

// waitReady polls until the process answers PING and reports its own pid,
// which proves that the port is served by this process and not by another
// one that took the port first.
func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		if p.exited() {
			logs := s.logTail(20)
			err := fmt.Errorf("process exited before answering PING (%v); log:\n%s", p.cmd.ProcessState, logs)
			if strings.Contains(logs, "already in use") {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return err
		}
		lastErr = s.checkReady(p.cmd.Process.Pid)
		if lastErr == nil {
			return nil
		}
		if errors.Is(lastErr, errAddrInUse) {
			return lastErr
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer to PING on %s within %v (last error: %v); log:\n%s",
		s.Addr, readyTimeout, lastErr, s.logTail(20))
}

func (s *Server) checkReady(pid int) error {
	pong, err := commandString(s.Addr, ioTimeout, "PING")
	if err != nil {
		return err
	}
	if pong != "PONG" {
		return fmt.Errorf("PING answered %q", pong)
	}
	info, err := commandString(s.Addr, ioTimeout, "INFO", "server")
	if err != nil {
		return err
	}
	if got, _ := infoField(info, "process_id"); got != strconv.Itoa(pid) {
		return fmt.Errorf("%w: %s is served by process %s, not %d", errAddrInUse, s.Addr, got, pid)
	}
	return nil
}

// logTail returns the last n lines the process wrote to its log.
func (s *Server) logTail(n int) string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(reading log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Logs returns everything the server process has written to stdout and
// stderr, across restarts.
func (s *Server) Logs() string {
	data, _ := os.ReadFile(s.logPath)
	return string(data)
}

// Dir returns the server's working directory, where it keeps its data
// files.
func (s *Server) Dir() string { return s.dir }

// Port returns the server's TCP port.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// URL returns the server's address as a redis:// URL for database 0.
func (s *Server) URL() string {
	return "redis://" + s.Addr + "/0"
}

// Client returns a go-redis client connected to the server. It is closed
// when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.exited()
}

// kill stops the process, if any, with SIGKILL.
func (s *Server) kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// Stop kills the server with SIGKILL, as in a crash, and waits for it to
// exit. Its address is kept for Restart. Stopping a stopped server does
// nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.kill()
}

// Restart starts the server again on the same port, stopping it first if
// it is running, and waits until it answers PING. The data is gone unless
// the server was started with persistence arguments. Since another
// process may have taken the port in the meantime, Restart retries for a
// few seconds before failing the test.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.kill()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.launch(s.Port())
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("redistest: restarting %s: %v", s.Addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Info returns the text of the server's INFO reply for section, failing the test
// on error.
func (s *Server) Info(t testing.TB, section string) string {
	t.Helper()
	info, err := commandString(s.Addr, ioTimeout, "INFO", section)
	if err != nil {
		t.Fatalf("redistest: INFO %s on %s: %v", section, s.Addr, err)
	}
	return info
}

// CommandCount returns how many times cmd has been called on the server
// since it started (or since CONFIG RESETSTAT), from the calls= value of
// cmdstat_<cmd> in INFO commandstats. A command never called counts 0.
// Subcommands are named with a bar, as Redis does: "client|setinfo".
func (s *Server) CommandCount(t testing.TB, cmd string) int64 {
	t.Helper()
	info := s.Info(t, "commandstats")
	stat, ok := infoField(info, "cmdstat_"+strings.ToLower(cmd))
	if !ok {
		return 0
	}
	for _, kv := range strings.Split(stat, ",") {
		if v, ok := strings.CutPrefix(kv, "calls="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("redistest: parsing %q: %v", stat, err)
			}
			return n
		}
	}
	t.Fatalf("redistest: no calls= in %q", stat)
	return 0
}
