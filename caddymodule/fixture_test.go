package caddymodule_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// fixture is a real redis-server, a real upstream and a real Caddy running
// the access_keys handler in front of it.
type fixture struct {
	redis    *redistest.Server
	upstream *httptest.Server
	gw       *gatewaytest.Gateway
	store    *keystore.Store
	prefix   string
	// base is the strict site: unmapped deny, credentials removed,
	// preflight answered. relaxed is the site with unmapped allow,
	// pass_credentials and preflight pass.
	base, relaxed string
	secrets       []string
}

type fixtureOptions struct {
	cacheTTL string
}

const gatewayCaddyfile = `{
	admin 127.0.0.1:%[1]d
	log {
		level DEBUG
	}
	access_keys {
		redis %[2]s
		key_prefix %[3]s
		cache_ttl %[4]s
	}
}

http://127.0.0.1:%[5]d {
	log
	access_keys {
		realm "Test API"
		scope viewCollectors GET /api/v1/collectors /api/v1/collectors/*
		scope manageCollectors POST PUT DELETE /api/v1/collectors/*
		scope runLogSearch * /api/v1/search/*
	}
	reverse_proxy %[7]s {
		header_up X-Ph-Owner {http.auth.user.id}
		header_up X-Ph-Access-Id {http.auth.user.access_id}
		header_up X-Ph-Scopes {http.auth.user.scopes}
	}
}

http://127.0.0.1:%[6]d {
	log
	access_keys {
		realm "Test API"
		scope manageCollectors POST /api/v1/collectors/*
		unmapped allow
		pass_credentials
		preflight pass
	}
	reverse_proxy %[7]s
}
`

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	if o.cacheTTL == "" {
		o.cacheTTL = "15m"
	}
	f := &fixture{prefix: "ag" + strings.ToLower(t.Name()[4:min(len(t.Name()), 12)])}
	f.prefix = regexp.MustCompile(`[^a-z0-9]`).ReplaceAllString(f.prefix, "")
	f.redis = redistest.Start(t)
	f.upstream = gatewaytest.Upstream(t)
	admin, p1, p2 := gatewaytest.FreePort(t), gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	f.gw = gatewaytest.Start(t, fmt.Sprintf(gatewayCaddyfile, admin, f.redis.URL(), f.prefix, o.cacheTTL, p1, p2, strings.TrimPrefix(f.upstream.URL, "http://")))
	f.base = fmt.Sprintf("http://127.0.0.1:%d", p1)
	f.relaxed = fmt.Sprintf("http://127.0.0.1:%d", p2)
	f.store = keystore.New(f.redis.Client(t), keystore.Options{Prefix: f.prefix})
	ctx := context.Background()
	if _, err := f.store.PutRole(ctx, keystore.Role{ID: "viewer", Capabilities: []string{"viewCollectors", "runLogSearch", "createAccessKeys"}}, "test"); err != nil {
		t.Fatal(err)
	}
	f.user(t, "u1")
	return f
}

var testOp = keystore.Operator{ID: "test", Interface: keystore.InterfaceCLI}

// user creates an active user with the viewer role.
func (f *fixture) user(t *testing.T, id string) {
	t.Helper()
	if _, err := f.store.PutOwner(context.Background(), keystore.Owner{ID: id, Kind: keystore.OwnerUser, Email: id + "@example.com", RoleIDs: []string{"viewer"}, IsActive: true}, "test"); err != nil {
		t.Fatal(err)
	}
}

// cred is a created key and its secret.
type cred struct {
	id, secret string
}

func (f *fixture) key(t *testing.T, spec keystore.KeySpec) cred {
	t.Helper()
	if spec.OwnerID == "" {
		spec.OwnerID = "u1"
	}
	if spec.Label == "" {
		spec.Label = "test key"
	}
	k, secret, err := f.store.CreateKey(context.Background(), spec, testOp)
	if err != nil {
		t.Fatal(err)
	}
	f.secrets = append(f.secrets, secret)
	return cred{k.ID, secret}
}

// request sends method url with the credential (if any) and extra headers.
func request(t *testing.T, method, url string, c *cred, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		req.SetBasicAuth(c.id, c.secret)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// status sends a request and returns its status, closing the body.
func status(t *testing.T, method, url string, c *cred) int {
	t.Helper()
	resp := request(t, method, url, c, nil)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

var errorIDPattern = regexp.MustCompile(`^[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}$`)

// assertBodyA checks an error response: status, JSON content type, exactly
// the four fields of body A, a well-formed error id, code and message.
func assertBodyA(t *testing.T, resp *http.Response, status int, code, message string) {
	t.Helper()
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("body is not JSON: %s", raw)
	}
	if len(body) != 4 {
		t.Errorf("body has fields %v, want exactly status, id, code, message", body)
	}
	if body["status"] != float64(status) {
		t.Errorf("body status = %v, want %d", body["status"], status)
	}
	if id, _ := body["id"].(string); !errorIDPattern.MatchString(id) {
		t.Errorf("body id = %q, want a 5-5-5 upper-case alphanumeric id", id)
	}
	if body["code"] != code {
		t.Errorf("body code = %v, want %q", body["code"], code)
	}
	if message != "" && body["message"] != message {
		t.Errorf("body message = %q, want %q", body["message"], message)
	}
}

// assert401 checks the answer to a credential that could not be verified.
func assert401(t *testing.T, resp *http.Response) {
	t.Helper()
	if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="Test API"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	assertBodyA(t, resp, http.StatusUnauthorized, "unauthorized", "Credential could not be verified.")
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s did not happen within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}
