package mgmtapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// cred is an Access ID and its Access Key.
type cred struct {
	id, secret string
}

// testOp is the operator of the changes a test makes in the store.
var testOp = keystore.Operator{ID: "test", Interface: keystore.InterfaceCLI}

// apiFixture is a real redis-server and a real Caddy serving the
// management API on two sites: base (handle /api/v1/*, next to a
// protected route /data/*, with the default scope catalogue) and stripped
// (handle_path /mgmt/*, which removes the prefix before the API sees the
// path, with Sumo Logic's scope catalogue).
type apiFixture struct {
	redis    *redistest.Server
	rdb      *redis.Client
	gw       *gatewaytest.Gateway
	store    *keystore.Store
	prefix   string
	base     string
	stripped string
	// admin, admin2, alice, bob and carol are keys with the Default scope
	// of the users of the same names: admins hold every capability the
	// API checks, alice and bob only createAccessKeys, carol none.
	admin, admin2, alice, bob, carol cred
}

const apiCaddyfile = `{
	admin 127.0.0.1:%[1]d
	log {
		level INFO
	}
	access_keys {
		redis %[2]s
		key_prefix %[3]s
		cache_ttl 15m
		max_failures_per_client -1
		max_failures_per_key -1
	}
}

http://127.0.0.1:%[4]d {
	handle /api/v1/* {
		access_keys_api
	}
	handle {
		access_keys {
			scope viewWidgets GET /data/*
			scope manageWidgets POST PUT DELETE /data/*
		}
		respond "ok"
	}
}

http://127.0.0.1:%[5]d {
	handle_path /mgmt/* {
		access_keys_api {
			realm "Management"
			scope_catalog sumo
		}
	}
}
`

// Capabilities of the fixture's roles.
var (
	apiAdminCaps  = []string{"createAccessKeys", "manageAccessKeys", "manageOrgSettings", "manageUsersAndRoles", "viewUsersAndRoles", "viewWidgets", "manageWidgets"}
	apiMemberCaps = []string{"createAccessKeys", "viewWidgets"}
	apiReaderCaps = []string{"viewWidgets"}
)

var apiPrefixClean = regexp.MustCompile(`[^a-z0-9]`)

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	name := strings.ToLower(strings.TrimPrefix(t.Name(), "TestAPI"))
	f := &apiFixture{prefix: "api" + apiPrefixClean.ReplaceAllString(name, "")}
	if len(f.prefix) > 30 {
		f.prefix = f.prefix[:30]
	}
	f.redis = redistest.Start(t)
	f.rdb = f.redis.Client(t)
	admin, p1, p2 := gatewaytest.FreePort(t), gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	f.gw = gatewaytest.Start(t, fmt.Sprintf(apiCaddyfile, admin, f.redis.URL(), f.prefix, p1, p2))
	f.base = fmt.Sprintf("http://127.0.0.1:%d/api/v1", p1)
	f.stripped = fmt.Sprintf("http://127.0.0.1:%d/mgmt", p2)
	f.store = keystore.New(f.rdb, keystore.Options{Prefix: f.prefix})
	ctx := context.Background()
	for id, caps := range map[string][]string{"admin": apiAdminCaps, "member": apiMemberCaps, "reader": apiReaderCaps} {
		if _, err := f.store.PutRole(ctx, keystore.Role{ID: id, Capabilities: caps}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	f.putUser(t, "ADMIN1", "admin")
	f.putUser(t, "ADMIN2", "admin")
	f.putUser(t, "alice", "member")
	f.putUser(t, "bob", "member")
	f.putUser(t, "carol", "reader")
	f.admin = f.key(t, "ADMIN1", nil)
	f.admin2 = f.key(t, "ADMIN2", nil)
	f.alice = f.key(t, "alice", nil)
	f.bob = f.key(t, "bob", nil)
	f.carol = f.key(t, "carol", nil)
	return f
}

func (f *apiFixture) putUser(t *testing.T, id, role string) {
	t.Helper()
	o := keystore.Owner{ID: id, Kind: keystore.OwnerUser, Email: id + "@example.com", RoleIDs: []string{role}, IsActive: true}
	if _, err := f.store.PutOwner(context.Background(), o, "test"); err != nil {
		t.Fatal(err)
	}
}

// key creates a key directly in the store.
func (f *apiFixture) key(t testing.TB, owner string, scopes []string) cred {
	t.Helper()
	k, secret, err := f.store.CreateKey(context.Background(), keystore.KeySpec{Label: "key of " + owner, OwnerID: owner, Scopes: scopes}, testOp)
	if err != nil {
		t.Fatal(err)
	}
	return cred{k.ID, secret}
}

// apiResp is an answer of the gateway, read in full.
type apiResp struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request to the base site. body is sent as it is when it is
// a string or []byte, as JSON otherwise; a body gets Content-Type
// application/json unless hdr says otherwise.
func (f *apiFixture) do(t testing.TB, method, path string, c *cred, body any, hdr ...string) apiResp {
	t.Helper()
	return apiDo(t, method, f.base+path, c, body, hdr...)
}

func apiDo(t testing.TB, method, url string, c *cred, body any, hdr ...string) apiResp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c != nil {
		req.SetBasicAuth(c.id, c.secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	checkOpenAPI(t, req, resp.StatusCode, resp.Header, raw)
	return apiResp{status: resp.StatusCode, header: resp.Header, body: raw}
}

// ok fails unless the answer has the given status; it returns the body
// decoded into a generic JSON object (nil for an empty body).
func (r apiResp) ok(t testing.TB, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %s", r.body)
	}
	return m
}

// fails checks an answer with body B: the status, exactly the fields id
// and errors, a 5-5-5 error id, and that one of the errors has the code.
// It returns the messages.
func (r apiResp) fails(t testing.TB, status int, code string) []string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s); body %s", r.status, status, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var b struct {
		ID     string            `json:"id"`
		Errors []json.RawMessage `json:"errors"`
	}
	var all map[string]any
	if err := json.Unmarshal(r.body, &all); err != nil || json.Unmarshal(r.body, &b) != nil {
		t.Fatalf("body is not JSON: %s", r.body)
	}
	if len(all) != 2 || !errorIDPattern.MatchString(b.ID) || len(b.Errors) == 0 {
		t.Fatalf("not body B: %s", r.body)
	}
	var msgs []string
	found := false
	for _, raw := range b.Errors {
		var e map[string]string
		if err := json.Unmarshal(raw, &e); err != nil || len(e) != 2 || e["message"] == "" {
			t.Fatalf("error entry %s is not {code, message}", raw)
		}
		found = found || e["code"] == code
		msgs = append(msgs, e["message"])
	}
	if !found {
		t.Fatalf("no error with code %s in %s", code, r.body)
	}
	return msgs
}

// errorIDPattern is the shape of an error id: 5-5-5 upper-case
// alphanumerics.
var errorIDPattern = regexp.MustCompile(`^[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}$`)

// bodyA checks an answer with body A: the status, exactly the fields
// status, id, code and message, a 5-5-5 error id, the code and, unless
// empty, the message.
func (r apiResp) bodyA(t testing.TB, status int, code, message string) {
	t.Helper()
	m := r.ok(t, status)
	fieldsExactly(t, m, "status", "id", "code", "message")
	id, _ := m["id"].(string)
	if m["status"] != float64(status) || !errorIDPattern.MatchString(id) || m["code"] != code || message != "" && m["message"] != message {
		t.Errorf("body A %s, want status %d, code %q, message %q", r.body, status, code, message)
	}
}

// into decodes the body into v.
func (r apiResp) into(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// state renders the access-key data in Redis: every key of the prefix
// but the audit stream with its event markers, the last-used hash and
// locks, which requests may touch without changing anything.
func (f *apiFixture) state(t testing.TB) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := f.rdb.Scan(ctx, 0, f.prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if strings.HasSuffix(key, ":audit") || strings.Contains(key, ":auditid:") || strings.HasSuffix(key, ":lastused") || strings.Contains(key, ":lock:") {
			continue
		}
		typ := f.rdb.Type(ctx, key).Val()
		var val string
		switch typ {
		case "string":
			val = f.rdb.Get(ctx, key).Val()
		case "hash":
			h := f.rdb.HGetAll(ctx, key).Val()
			keys := slices.Sorted(maps.Keys(h))
			for _, k := range keys {
				val += k + "=" + h[k] + ";"
			}
		case "set":
			m := f.rdb.SMembers(ctx, key).Val()
			sort.Strings(m)
			val = strings.Join(m, ",")
		case "zset":
			val = strings.Join(f.rdb.ZRange(ctx, key, 0, -1).Val(), ",")
		default:
			val = "?"
		}
		out[key] = typ + ":" + val
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// changeEvents returns the names of the audit events that record changes,
// leaving out those of rejected requests.
func (f *apiFixture) changeEvents(t testing.TB) []string {
	t.Helper()
	evs, err := f.store.Events(context.Background(), keystore.EventFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		switch e.EventName {
		case keystore.EventAuthFailed, keystore.EventOriginRejected, keystore.EventScopeRejected:
		default:
			out = append(out, e.EventName)
		}
	}
	return out
}

// unchanged runs fn and fails if it changed the access-key data in Redis
// or wrote a change event.
func (f *apiFixture) unchanged(t *testing.T, fn func()) {
	t.Helper()
	before, events := f.state(t), len(f.changeEvents(t))
	fn()
	after := f.state(t)
	for k, v := range after {
		if before[k] != v {
			t.Errorf("%s changed:\n before %s\n after  %s", k, before[k], v)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			t.Errorf("%s removed", k)
		}
	}
	if got := f.changeEvents(t); len(got) != events {
		t.Errorf("change events written: %q", got[events:])
	}
}

// gateStatus is the status of a request through the protected route with
// the credential, which needs viewWidgets.
func (f *apiFixture) gateStatus(t testing.TB, c cred) int {
	t.Helper()
	u := strings.TrimSuffix(f.base, "/api/v1") + "/data/x"
	return apiDo(t, http.MethodGet, u, &c, nil).status
}

// timePattern is the API's time format: RFC 3339, UTC, milliseconds.
var timePattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func parseAPITime(t testing.TB, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	if !timePattern.MatchString(s) {
		t.Fatalf("time %v is not RFC 3339 UTC with milliseconds", v)
	}
	tm, err := time.Parse(keystore.TimeFormat, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// fieldsExactly fails unless m has exactly the given fields.
func fieldsExactly(t testing.TB, m map[string]any, fields ...string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(m))
	want := slices.Sorted(slices.Values(fields))
	if !slices.Equal(got, want) {
		t.Errorf("fields %q, want %q", got, want)
	}
}

// accessKeyFields are the fields of an AccessKey not owned by a service
// account.
var accessKeyFields = []string{"id", "label", "key", "corsHeaders", "disabled", "scopes", "effectiveScopes",
	"createdAt", "createdBy", "modifiedAt", "modifiedBy", "lastUsed", "expiresAt", "ownerId",
	"rateLimit", "concurrencyLimit", "quota", "quotaUsed", "quotaResetsAt"}

// strList converts a decoded JSON array of strings.
func strList(t testing.TB, v any) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is not an array", v)
	}
	out := make([]string, len(arr))
	for i, x := range arr {
		out[i], ok = x.(string)
		if !ok {
			t.Fatalf("%v is not an array of strings", v)
		}
	}
	return out
}

// eventually polls cond until it holds, failing the test when timeout
// passes first.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > timeout {
			t.Fatalf("%s did not happen within %v", what, timeout)
		}
	}
}
