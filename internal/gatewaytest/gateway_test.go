package gatewaytest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// plainCaddy is Caddy's own main package, with only the standard modules.
// These tests exercise the helpers against it, so they do not depend on
// the gateway's main package.
const plainCaddy = "github.com/caddyserver/caddy/v2/cmd/caddy"

func TestMain(m *testing.M) {
	Package = plainCaddy
	code := m.Run()
	if b, ok := builds.Load(plainCaddy); ok {
		os.Remove(b.(*build).path)
	}
	os.Exit(code)
}

// proxyCaddyfile is a gateway that forwards everything to upstream, adding
// extra (a header_up directive or nothing) to the proxied requests.
func proxyCaddyfile(admin, site int, upstream, extra string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
}

# The API behind the gateway.
http://127.0.0.1:%d {
	reverse_proxy %s {
		%s
	}
}
`, admin, site, upstream, extra)
}

func get(t *testing.T, url string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestGateway(t *testing.T) {
	t.Parallel()
	up := Upstream(t)
	admin, site := FreePort(t), FreePort(t)
	g := Start(t, proxyCaddyfile(admin, site, up.URL, ""))

	if want := fmt.Sprintf("http://127.0.0.1:%d", site); g.Base != want {
		t.Fatalf("Base = %q, want %q", g.Base, want)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", admin); g.AdminAddr != want {
		t.Fatalf("AdminAddr = %q, want %q", g.AdminAddr, want)
	}
	if data, err := os.ReadFile(filepath.Join(g.Dir, "Caddyfile")); err != nil || !strings.Contains(string(data), "reverse_proxy") {
		t.Fatalf("Caddyfile in Dir: %q, %v", data, err)
	}

	e := DecodeEcho(t, get(t, g.Base+"/v1/items?limit=2", http.Header{"X-Api-Key": {"k1"}}))
	if e.Method != http.MethodGet || e.Path != "/v1/items" || e.RawQuery != "limit=2" {
		t.Fatalf("upstream saw %s %s?%s", e.Method, e.Path, e.RawQuery)
	}
	if got := e.Header.Get("X-Api-Key"); got != "k1" {
		t.Fatalf("upstream saw X-Api-Key %q, want k1", got)
	}
	if e.Header.Get("X-Forwarded-For") == "" {
		t.Fatalf("upstream saw no X-Forwarded-For; headers %v", e.Header)
	}

	before := g.Goroutines(t)
	if before <= 0 {
		t.Fatalf("Goroutines() = %d", before)
	}

	g.Reload(t, proxyCaddyfile(admin, site, up.URL, "header_up X-Gateway reloaded"))
	e = DecodeEcho(t, get(t, g.Base+"/after", nil))
	if got := e.Header.Get("X-Gateway"); got != "reloaded" {
		t.Fatalf("after Reload upstream saw X-Gateway %q, want reloaded", got)
	}
	if after := g.Goroutines(t); after <= 0 {
		t.Fatalf("Goroutines() after Reload = %d", after)
	}
	if !strings.Contains(g.Logs(), "admin endpoint started") {
		t.Errorf("log lacks Caddy's startup lines:\n%s", g.Logs())
	}

	g.Stop(t)
	if g.Running() {
		t.Fatal("Running() after Stop")
	}
	if !strings.Contains(g.Logs(), "shutting down") {
		t.Errorf("Stop did not shut Caddy down gracefully; log:\n%s", g.Logs())
	}
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(g.Base, "http://"), time.Second); err == nil {
		conn.Close()
		t.Fatal("site port still accepts connections after Stop")
	}
	g.Stop(t) // stopping twice is harmless
}

func TestReloadMovesSite(t *testing.T) {
	t.Parallel()
	up := Upstream(t)
	admin := FreePort(t)
	g := Start(t, proxyCaddyfile(admin, FreePort(t), up.URL, ""))
	site := FreePort(t)
	g.Reload(t, proxyCaddyfile(admin, site, up.URL, ""))
	if want := fmt.Sprintf("http://127.0.0.1:%d", site); g.Base != want {
		t.Fatalf("Base after Reload = %q, want %q", g.Base, want)
	}
	DecodeEcho(t, get(t, g.Base+"/", nil))
}

func TestStartWith(t *testing.T) {
	t.Parallel()
	admin, site := FreePort(t), FreePort(t)
	g := StartWith(t, fmt.Sprintf(`{
	admin 127.0.0.1:%d
}

:%d {
	respond /healthz "ok" 200
	respond "teapot" 418
}
`, admin, site), fmt.Sprintf("http://127.0.0.1:%d/healthz", site))
	resp := get(t, g.Base+"/healthz", nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("GET /healthz = %s %q", resp.Status, body)
	}
	resp = get(t, g.Base+"/other", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("GET /other = %s", resp.Status)
	}
}

func TestGatewaysAreIsolated(t *testing.T) {
	t.Parallel()
	up := Upstream(t)
	a := Start(t, proxyCaddyfile(FreePort(t), FreePort(t), up.URL, "header_up X-Gateway a"))
	b := Start(t, proxyCaddyfile(FreePort(t), FreePort(t), up.URL, "header_up X-Gateway b"))
	if a.Dir == b.Dir || a.Base == b.Base || a.AdminAddr == b.AdminAddr {
		t.Fatalf("gateways share state: %+v %+v", a, b)
	}
	for _, g := range []*Gateway{a, b} {
		e := DecodeEcho(t, get(t, g.Base+"/", nil))
		want := "a"
		if g == b {
			want = "b"
		}
		if got := e.Header.Get("X-Gateway"); got != want {
			t.Fatalf("gateway %s: upstream saw X-Gateway %q, want %q", g.Base, got, want)
		}
	}
	// Caddy's storage lives under each gateway's own directory.
	if _, err := os.Stat(filepath.Join(a.Dir, "data", "caddy")); err != nil {
		t.Errorf("no Caddy data under the gateway's XDG_DATA_HOME: %v", err)
	}
}

func TestUpstreamEcho(t *testing.T) {
	t.Parallel()
	up := Upstream(t)
	req, err := http.NewRequest(http.MethodPost, up.URL+"/a/b?x=1&y=2", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	e := DecodeEcho(t, resp)
	if e.Method != http.MethodPost || e.Path != "/a/b" || e.RawQuery != "x=1&y=2" || e.Body != "payload" {
		t.Fatalf("echo = %+v", e)
	}
	if got := e.Header.Values("X-Multi"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Fatalf("X-Multi = %q", got)
	}
	if e.Host != strings.TrimPrefix(up.URL, "http://") {
		t.Fatalf("Host = %q", e.Host)
	}
}

func TestBinary(t *testing.T) {
	t.Parallel()
	bin := Binary(t)
	if bin != Build(t, plainCaddy) {
		t.Fatalf("Binary() = %q, want the build of Package", bin)
	}
	if filepath.Dir(bin) != filepath.Clean(os.TempDir()) ||
		!strings.HasPrefix(filepath.Base(bin), fmt.Sprintf("accessgate-test-caddy-%d", os.Getpid())) {
		t.Fatalf("binary at %q, want os.TempDir()/accessgate-test-caddy-<pid>-...", bin)
	}
	if Binary(t) != bin {
		t.Fatal("Binary() built twice")
	}
}

// TestBinaryFromEnv runs alone: it changes the environment.
func TestBinaryFromEnv(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "caddy")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(BinaryEnv, bin)
	if got := Binary(t); got != bin {
		t.Fatalf("Binary() with $%s = %q, want %q", BinaryEnv, got, bin)
	}
}
