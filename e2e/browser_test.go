// Package e2e_test drives the web console and browser CORS in a real
// headless Chromium (through the DevTools protocol, with chromedp) against a
// real Caddy built from this module and a real redis-server. It lives apart
// from the main packages so that only these tests depend on chromedp.
package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

const (
	// chromiumEnv names a Chromium binary to use instead of the one on PATH.
	chromiumEnv = "ACCESSGATE_CHROMIUM"
	// screenshotsEnv, set to 1, makes the tests write docs/screenshots/*.png.
	screenshotsEnv = "ACCESSGATE_SCREENSHOTS"
	// stepTimeout bounds one browser step (a navigation, a wait, a click).
	stepTimeout = 15 * time.Second
	// viewportW and viewportH are the browser's window, and the size of
	// the screenshots.
	viewportW, viewportH = 1280, 800
)

// ---------------------------------------------------------------- gateway

// stack is a redis-server and a Caddy serving, over HTTPS with Caddy's
// internal CA, the management API and console on api.localhost and two
// plain pages on app.localhost and evil.localhost, all on one port.
// Chromium resolves every *.localhost name to the loopback address itself.
type stack struct {
	redis *redistest.Server
	gw    *gatewaytest.Gateway
	store *keystore.Store
	port  int
	// roots holds Caddy's internal root CA; client trusts only it.
	roots  *x509.CertPool
	client *http.Client
	// spki are the base64 SHA-256 hashes of the public keys of the
	// internal CA's root and intermediate, for Chromium's
	// --ignore-certificate-errors-spki-list.
	spki []string
}

// stackCaddyfile is the gateway configuration of the tests: the management
// API (/api/v1/) and the web console (/console/) are both routed to
// access_keys_api, and /data/ stands for an upstream API guarded by the
// access_keys handler.
const stackCaddyfile = `{
	admin 127.0.0.1:%[1]d
	http_port %[2]d
	https_port %[3]d
	skip_install_trust
	auto_https disable_redirects
	log {
		level INFO
	}
	access_keys {
		redis %[4]s
		key_prefix %[5]s
		last_used_flush 1s
	}
}

https://api.localhost:%[3]d {
	tls internal
	log
	handle /api/v1/* {
		access_keys_api
	}
	handle /console/* {
		access_keys_api
	}
	handle /data/* {
		route {
			access_keys {
				scope viewCollectors GET /data/*
			}
			respond "upstream ok" 200
		}
	}
}

https://app.localhost:%[3]d, https://evil.localhost:%[3]d {
	tls internal
	header Content-Type "text/html; charset=utf-8"
	respond "<!doctype html><html lang=en><title>{host}</title><h1>{host}</h1></html>" 200
}
`

// startStack starts redis-server and Caddy and waits until Caddy serves
// HTTPS with its internal CA.
func startStack(t *testing.T) *stack {
	t.Helper()
	prefix := "e2e" + strings.ToLower(strings.NewReplacer("/", "", "_", "").Replace(t.Name()))
	return startStackWith(t, stackCaddyfile, prefix, true)
}

// startStackWith starts the stack on a Caddyfile template taking the
// admin port, the HTTP port, the HTTPS port, the Redis URL and the key
// prefix, in that order; its client follows redirects only when
// followRedirects is set.
func startStackWith(t *testing.T, caddyfile, prefix string, followRedirects bool) *stack {
	t.Helper()
	s := &stack{redis: redistest.Start(t)}
	admin, httpPort, port := gatewaytest.FreePort(t), gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	s.port = port
	s.gw = gatewaytest.Start(t, fmt.Sprintf(caddyfile, admin, httpPort, port, s.redis.URL(), prefix))
	s.store = keystore.New(s.redis.Client(t), keystore.Options{Prefix: prefix})
	s.loadCA(t)
	s.client = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: s.roots},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, p, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				var d net.Dialer
				return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", p))
			},
		},
	}
	if !followRedirects {
		s.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	t.Cleanup(s.client.CloseIdleConnections)
	s.waitHTTPS(t)
	return s
}

// origin returns the HTTPS origin of a host of the stack.
func (s *stack) origin(host string) string {
	return fmt.Sprintf("https://%s:%d", host, s.port)
}

// loadCA reads the root and intermediate certificates that Caddy's
// internal CA keeps in the gateway's data directory.
func (s *stack) loadCA(t *testing.T) {
	t.Helper()
	dir := filepath.Join(s.gw.Dir, "data", "caddy", "pki", "authorities", "local")
	deadline := time.Now().Add(20 * time.Second)
	for {
		root, err1 := os.ReadFile(filepath.Join(dir, "root.crt"))
		inter, err2 := os.ReadFile(filepath.Join(dir, "intermediate.crt"))
		if err1 == nil && err2 == nil {
			s.roots = x509.NewCertPool()
			for _, pemData := range [][]byte{root, inter} {
				cert, err := parsePEMCert(pemData)
				if err != nil {
					break
				}
				sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
				s.spki = append(s.spki, base64.StdEncoding.EncodeToString(sum[:]))
			}
			if len(s.spki) == 2 && s.roots.AppendCertsFromPEM(root) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Caddy's internal CA did not appear in %s", dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func parsePEMCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// waitHTTPS waits until every site answers over TLS with a certificate of
// the internal CA (Caddy issues them just after it starts).
func (s *stack) waitHTTPS(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, host := range []string{"api.localhost", "app.localhost", "evil.localhost"} {
		for {
			resp, err := s.client.Get(s.origin(host) + "/")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not answer over HTTPS: %v", host, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// apiCall sends a management API request with an access key and returns
// the status and body.
func (s *stack) apiCall(t *testing.T, c cred, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.origin("api.localhost")+"/api/v1/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(c.id, c.secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// cred is an Access ID and its Access Key.
type cred struct {
	id, secret string
}

var testOp = keystore.Operator{ID: "e2e", Interface: keystore.InterfaceCLI}

// role saves a role with the given capabilities.
func (s *stack) role(t *testing.T, id string, caps ...string) {
	t.Helper()
	if _, err := s.store.PutRole(context.Background(), keystore.Role{ID: id, Capabilities: caps}, "e2e"); err != nil {
		t.Fatal(err)
	}
}

// user saves an active user with the given roles.
func (s *stack) user(t *testing.T, id string, roles ...string) {
	t.Helper()
	o := keystore.Owner{ID: id, Kind: keystore.OwnerUser, Email: id + "@example.com", RoleIDs: roles, IsActive: true}
	if _, err := s.store.PutOwner(context.Background(), o, "e2e"); err != nil {
		t.Fatal(err)
	}
}

// key creates a key; age makes it look created that long ago, which moves
// its expiry back by as much.
func (s *stack) key(t *testing.T, spec keystore.KeySpec, age time.Duration) cred {
	t.Helper()
	st := s.store
	if age > 0 {
		st = keystore.New(s.store.Client(), keystore.Options{
			Prefix: s.store.Prefix(),
			Now:    func() time.Time { return time.Now().Add(-age) },
		})
	}
	k, secret, err := st.CreateKey(context.Background(), spec, testOp)
	if err != nil {
		t.Fatal(err)
	}
	return cred{k.ID, secret}
}

// ---------------------------------------------------------------- browser

// chromiumPath finds Chromium, or fails the test saying how to install it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(chromiumEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("$%s: %v", chromiumEnv, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("chromium not found: install it with `apt-get install -y chromium` (or set $%s to a Chromium binary)", chromiumEnv)
	return ""
}

// browser is one headless Chromium with one tab, used by the test t.
type browser struct {
	t *testing.T
	*session
}

// session is the state of a browser that its users share.
type session struct {
	ctx context.Context

	// allowed lists fragments of console errors that the test causes on
	// purpose.
	allowed []string

	mu       sync.Mutex
	problems []string // uncaught exceptions, console errors, CSP violations
	output   bytes.Buffer
}

// on returns the browser for use by the test t, such as a subtest, so that
// its failures are reported there.
func (b *browser) on(t *testing.T) *browser {
	return &browser{t: t, session: b.session}
}

// syncWriter guards the Chromium output buffer.
type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// newBrowser starts headless Chromium with a fresh profile. It trusts the
// stack's internal CA by the hashes of its public keys
// (--ignore-certificate-errors-spki-list): certificate errors are ignored
// only for chains holding one of those keys, and every other certificate
// is checked as usual. allowed lists fragments of console errors that the
// test causes on purpose.
func newBrowser(t *testing.T, s *stack, allowed ...string) *browser {
	t.Helper()
	b := &browser{t: t, session: &session{allowed: allowed}}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(s.spki, ",")),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(viewportW, viewportH),
		chromedp.CombinedOutput(syncWriter{&b.mu, &b.output}),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	b.ctx = ctx
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output (tail):\n%s", b.chromiumOutput())
		}
	})
	// The first action starts the browser; it must not run under a
	// timeout of its own, since that would stop the browser with it.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting chromium: %v\n%s", err, b.chromiumOutput())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("chromium did not start within 30s\n%s", b.chromiumOutput())
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !b.expected(m.Text) {
				b.problem(fmt.Sprintf("console %s: %s (%s)", m.Type, m.Text, m.URL))
			}
		}
	}()
	b.run("sizing the viewport", chromedp.EmulateViewport(viewportW, viewportH))
	return b
}

// chromiumOutput returns the end of what Chromium printed.
func (b *browser) chromiumOutput() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.output.String()
	if len(out) > 4000 {
		out = out[len(out)-4000:]
	}
	return out
}

// expected reports whether a console error is one the test causes on
// purpose: a failed request that the page handles (a 4xx answer), or one
// that newBrowser was told to allow.
func (b *browser) expected(text string) bool {
	if strings.Contains(text, "Failed to load resource: the server responded with a status of 4") {
		return true
	}
	for _, a := range b.allowed {
		if strings.Contains(text, a) {
			return true
		}
	}
	return false
}

func (b *browser) problem(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, p)
}

// assertNoProblems fails the test for every uncaught exception, console
// error and Content-Security-Policy violation seen so far.
func (b *browser) assertNoProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("browser: %s", p)
	}
}

// run runs actions in order, bounded by stepTimeout, and fails the test
// with what when one fails.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage: %s", what, err, b.describe())
	}
}

// describe returns the page's URL and visible text, for failure messages.
func (b *browser) describe() string {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	url, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 3000) : ""`))
	return url + "\n" + text
}

// eval evaluates a JavaScript expression in the page, awaiting a promise,
// and decodes its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v\npage: %s", expr, err, b.describe())
	}
	return v
}

// waitJS waits until a JavaScript expression is truthy.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(stepTimeout-time.Second), chromedp.WithPollingInterval(25*time.Millisecond)))
	if err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\npage: %s", what, expr, err, b.describe())
	}
}

// text returns the trimmed visible text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%q)?.innerText ?? "").trim()`, sel))
}

// activeID returns the id of the focused element.
func (b *browser) activeID() string {
	b.t.Helper()
	return eval[string](b, `document.activeElement ? document.activeElement.id : ""`)
}

// click clicks the first element matching the CSS selector sel, once it
// is visible.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run("clicking "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// key sends one key press to the focused element.
func (b *browser) key(k string, opts ...chromedp.KeyOption) {
	b.t.Helper()
	b.run("pressing a key", chromedp.KeyEvent(k, opts...))
}

// fill replaces the value of an input or textarea by typing into it.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	css := chromedp.CSS(sel)
	b.run("filling "+sel, chromedp.WaitVisible(css),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ""`, sel)),
		chromedp.SendKeys(css, value))
}

// screenshot writes docs/screenshots/<name>.png of the viewport when
// $ACCESSGATE_SCREENSHOTS is 1.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if os.Getenv(screenshotsEnv) != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("taking screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
