// Package gatewaytest runs the real Caddy binary with the accessgate module
// for integration tests, together with an upstream HTTP server that echoes
// what reached it. Each gateway gets its own temporary directory, its own
// HOME and XDG directories and ports chosen by the test, so concurrent
// test runs never collide.
package gatewaytest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// startTimeout bounds how long Caddy may take to become ready.
	startTimeout = 30 * time.Second
	// stopTimeout is how long a gateway may take to shut down gracefully
	// before it is killed.
	stopTimeout = 5 * time.Second
	// reloadTimeout bounds one `caddy reload`.
	reloadTimeout = 30 * time.Second
	// logTailLines is how many log lines a failed test gets.
	logTailLines = 100
)

// FreePort returns a loopback TCP port that was free a moment ago, for the
// admin and site addresses of a Caddyfile.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gatewaytest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Gateway is a Caddy process started for a test.
type Gateway struct {
	// Base is the URL of the Caddyfile's first site, such as
	// http://127.0.0.1:8080, without a trailing slash.
	Base string
	// AdminAddr is the admin endpoint's address, such as 127.0.0.1:2999.
	AdminAddr string
	// Dir is the gateway's temporary directory, holding the Caddyfile,
	// the log and the HOME and XDG directories Caddy runs with.
	Dir string

	bin        string
	configPath string
	logPath    string
	env        []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
}

// Start writes caddyfile to a temporary directory and runs
// `caddy run --config <file> --adapter caddyfile` with the binary from
// Binary. The Caddyfile must set `admin 127.0.0.1:<port>` in its global
// options (ports come from FreePort); its first site address gives Base
// and should be written http://127.0.0.1:<port> or :<port>. Start waits
// until the admin endpoint answers and the first site's port accepts
// connections. When the test ends the gateway is stopped, and if the test
// failed the last 100 lines of its log are logged.
func Start(t testing.TB, caddyfile string) *Gateway {
	t.Helper()
	return StartWith(t, caddyfile, "")
}

// StartWith is Start, but when waitURL is not empty it waits until an HTTP
// GET of waitURL gets a response (of any status) instead of waiting for
// the first site's port.
func StartWith(t testing.TB, caddyfile, waitURL string) *Gateway {
	t.Helper()
	admin, err := adminAddress(caddyfile)
	if err != nil {
		t.Fatalf("gatewaytest: %v", err)
	}
	base, siteErr := siteBase(caddyfile)
	if siteErr != nil && waitURL == "" {
		t.Fatalf("gatewaytest: %v", siteErr)
	}
	bin := Binary(t)

	dir := t.TempDir()
	g := &Gateway{
		Base:       base,
		AdminAddr:  admin,
		Dir:        dir,
		bin:        bin,
		configPath: filepath.Join(dir, "Caddyfile"),
		logPath:    filepath.Join(dir, "caddy.log"),
	}
	g.env = environ(map[string]string{
		"HOME":            filepath.Join(dir, "home"),
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_CACHE_HOME":  filepath.Join(dir, "cache"),
	})
	for _, d := range []string{"home", "data", "config", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("gatewaytest: %v", err)
		}
	}
	if err := os.WriteFile(g.configPath, []byte(caddyfile), 0o644); err != nil {
		t.Fatalf("gatewaytest: writing Caddyfile: %v", err)
	}
	logFile, err := os.Create(g.logPath)
	if err != nil {
		t.Fatalf("gatewaytest: creating log: %v", err)
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "run", "--config", g.configPath, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = g.env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("gatewaytest: starting %s: %v", bin, err)
	}
	g.cmd = cmd
	g.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		g.stop(t)
		if t.Failed() {
			t.Logf("gatewaytest: last %d lines of the gateway log (%s):\n%s", logTailLines, g.logPath, g.logTail(logTailLines))
		}
	})

	if err := g.waitReady(waitURL); err != nil {
		t.Fatalf("gatewaytest: gateway not ready: %v\nlog:\n%s", err, g.logTail(logTailLines))
	}
	if g.Base == "" {
		if u, err := url.Parse(waitURL); err == nil {
			g.Base = u.Scheme + "://" + u.Host
		}
	}
	return g
}

// environ returns the test process's environment with the given variables
// replaced.
func environ(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

func (g *Gateway) exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// waitReady polls until the admin endpoint answers and then either waitURL
// answers or the first site's port accepts connections.
func (g *Gateway) waitReady(waitURL string) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(startTimeout)
	adminURL := "http://" + g.AdminAddr + "/config/"
	var siteAddr string
	if waitURL == "" {
		u, err := url.Parse(g.Base)
		if err != nil {
			return err
		}
		siteAddr = u.Host
	}
	adminUp := false
	var lastErr error
	for time.Now().Before(deadline) {
		if g.exited() {
			return fmt.Errorf("caddy exited: %v", g.cmd.ProcessState)
		}
		switch {
		case !adminUp:
			lastErr = getOK(client, adminURL)
			adminUp = lastErr == nil
		case waitURL != "":
			var resp *http.Response
			if resp, lastErr = client.Get(waitURL); lastErr == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return nil
			}
		default:
			var conn net.Conn
			if conn, lastErr = net.DialTimeout("tcp", siteAddr, time.Second); lastErr == nil {
				conn.Close()
				return nil
			}
		}
		if lastErr != nil {
			time.Sleep(25 * time.Millisecond)
		}
	}
	return fmt.Errorf("not ready within %v: %v", startTimeout, lastErr)
}

// getOK fetches u and reports an error unless it answers 200.
func getOK(client *http.Client, u string) error {
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return nil
}

// LogPath returns the file holding Caddy's stdout and stderr.
func (g *Gateway) LogPath() string { return g.logPath }

// ConfigPath returns the Caddyfile the gateway runs with.
func (g *Gateway) ConfigPath() string { return g.configPath }

// Logs returns everything Caddy has written to stdout and stderr so far.
func (g *Gateway) Logs() string {
	data, _ := os.ReadFile(g.logPath)
	return string(data)
}

func (g *Gateway) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(g.Logs(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Running reports whether the Caddy process is still running.
func (g *Gateway) Running() bool { return !g.exited() }

// Reload replaces the gateway's Caddyfile with caddyfile and applies it
// with `caddy reload --config <file> --adapter caddyfile --address
// <admin>`, failing the test with the command's output if that fails.
// Base and AdminAddr follow the new Caddyfile.
func (g *Gateway) Reload(t testing.TB, caddyfile string) {
	t.Helper()
	if err := os.WriteFile(g.configPath, []byte(caddyfile), 0o644); err != nil {
		t.Fatalf("gatewaytest: writing Caddyfile: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, "reload",
		"--config", g.configPath, "--adapter", "caddyfile", "--address", g.AdminAddr)
	cmd.Dir = g.Dir
	cmd.Env = g.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gatewaytest: caddy reload: %v\n%s", err, out)
	}
	if admin, err := adminAddress(caddyfile); err == nil {
		g.AdminAddr = admin
	}
	if base, err := siteBase(caddyfile); err == nil {
		g.Base = base
	}
}

// Stop shuts the gateway down: SIGINT, which makes Caddy stop gracefully,
// then SIGKILL if it is still running after 5 seconds. Stopping a stopped
// gateway does nothing.
func (g *Gateway) Stop(t testing.TB) {
	t.Helper()
	g.stop(t)
}

func (g *Gateway) stop(t testing.TB) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.exited() {
		return
	}
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.done:
		return
	case <-time.After(stopTimeout):
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
		return
	case <-time.After(time.Second):
	}
	t.Logf("gatewaytest: caddy did not stop within %v of SIGINT; killing it", stopTimeout)
	_ = g.cmd.Process.Kill()
	<-g.done
}

// Kill ends the gateway with SIGKILL, as in a crash: it gets no chance
// to clean up or give anything back. Killing a stopped gateway does
// nothing.
func (g *Gateway) Kill(t testing.TB) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.exited() {
		return
	}
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatalf("gatewaytest: killing caddy: %v", err)
	}
	<-g.done
}

// goroutineTotal matches the first line of a debug=1 goroutine profile.
var goroutineTotal = regexp.MustCompile(`^goroutine profile: total (\d+)`)

// Goroutines returns the number of goroutines in the Caddy process, read
// from /debug/pprof/goroutine?debug=1 on the admin endpoint.
func (g *Gateway) Goroutines(t testing.TB) int {
	t.Helper()
	u := "http://" + g.AdminAddr + "/debug/pprof/goroutine?debug=1"
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("gatewaytest: GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("gatewaytest: GET %s: %s: %s", u, resp.Status, body)
	}
	first, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil && first == "" {
		t.Fatalf("gatewaytest: reading %s: %v", u, err)
	}
	m := goroutineTotal.FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("gatewaytest: %s starts with %q, not a goroutine profile", u, first)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatalf("gatewaytest: %v", err)
	}
	return n
}
