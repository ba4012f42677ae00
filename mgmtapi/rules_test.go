package mgmtapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/keystore"
)

// putRole saves a role directly in the store.
func (f *apiFixture) putRole(t *testing.T, id string, caps ...string) {
	t.Helper()
	if _, err := f.store.PutRole(context.Background(), keystore.Role{ID: id, Capabilities: caps}, "test"); err != nil {
		t.Fatal(err)
	}
}

// putServiceAccount saves an active service account directly in the store.
func (f *apiFixture) putServiceAccount(t *testing.T, id string, roles ...string) {
	t.Helper()
	o := keystore.Owner{ID: id, Kind: keystore.OwnerServiceAccount, Name: id, Email: strings.ToLower(id) + "@example.com", RoleIDs: roles, IsActive: true}
	if _, err := f.store.PutOwner(context.Background(), o, "test"); err != nil {
		t.Fatal(err)
	}
}

// newCred reads the Access ID and Access Key of a create or rotate answer.
func newCred(t *testing.T, m map[string]any) cred {
	t.Helper()
	id, _ := m["id"].(string)
	secret, _ := m["key"].(string)
	if !keystore.ValidAccessID(id) || !keystore.ValidAccessKey(secret) {
		t.Fatalf("no new credential in %v", m)
	}
	return cred{id, secret}
}

// TestAPIKeyManagerCannotTakeOverAnAdmin: a key whose only capability is
// manageAccessKeys edits, deactivates, activates and deletes any key, but
// never receives a secret that holds more than it does: it cannot rotate
// another user's key, nor create, rotate or widen a key (of a service
// account or anyone) beyond its own effective scopes.
func TestAPIKeyManagerCannotTakeOverAnAdmin(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	f.putRole(t, "keys", "manageAccessKeys")
	f.putRole(t, "widgets", "viewWidgets")
	f.putUser(t, "KEYMGR", "keys")
	mgr := f.key(t, "KEYMGR", nil)
	f.putServiceAccount(t, "SA-ADMIN", "admin")
	f.putServiceAccount(t, "SA-WIDGETS", "widgets")
	f.putServiceAccount(t, "SA-KEYS", "keys")
	saAdmin := f.key(t, "SA-ADMIN", nil)
	narrowAdmin := f.key(t, "ADMIN2", []string{"manageAccessKeys"})

	f.unchanged(t, func() {
		msgs := f.do(t, http.MethodPut, "/accessKeys/"+f.admin.id+"/rotate", &mgr, nil).fails(t, http.StatusForbidden, "forbidden")
		if !strings.Contains(msgs[0], "owner") {
			t.Errorf("message %q does not say that only the owner rotates", msgs[0])
		}
		f.do(t, http.MethodPost, "/serviceAccounts/SA-ADMIN/accessKeys", &mgr, map[string]any{"label": "mine now"}).fails(t, http.StatusForbidden, "forbidden")
		msgs = f.do(t, http.MethodPost, "/serviceAccounts/SA-WIDGETS/accessKeys", &mgr, map[string]any{"label": "x", "scopes": []string{"viewWidgets"}}).fails(t, http.StatusForbidden, "forbidden")
		if !strings.Contains(msgs[0], "viewWidgets") {
			t.Errorf("message %q does not name the scope the caller lacks", msgs[0])
		}
		f.do(t, http.MethodPut, "/serviceAccounts/SA-ADMIN/accessKeys/"+saAdmin.id+"/rotate", &mgr, nil).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPut, "/accessKeys/"+saAdmin.id+"/rotate", &mgr, nil).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPut, "/accessKeys/"+narrowAdmin.id, &mgr, map[string]any{"disabled": false, "scopes": []string{}}).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPut, "/accessKeys/"+narrowAdmin.id, &mgr, map[string]any{"disabled": false, "scopes": []string{"manageUsersAndRoles"}}).fails(t, http.StatusForbidden, "forbidden")
		// Not even the owner's administrators rotate a user's key.
		f.do(t, http.MethodPut, "/accessKeys/"+f.bob.id+"/rotate", &f.admin, nil).fails(t, http.StatusForbidden, "forbidden")
	})
	if st := f.gateStatus(t, f.admin); st != http.StatusOK {
		t.Errorf("the admin's key gets %d", st)
	}

	// What manageAccessKeys may do to any key.
	if got := f.do(t, http.MethodPut, "/accessKeys/"+f.admin2.id, &mgr, map[string]any{"disabled": true}).ok(t, http.StatusOK); got["disabled"] != true {
		t.Errorf("deactivated: %v", got)
	}
	if st := f.gateStatus(t, f.admin2); st != http.StatusUnauthorized {
		t.Errorf("deactivated key gets %d", st)
	}
	f.do(t, http.MethodPut, "/accessKeys/"+f.admin2.id, &mgr, map[string]any{"disabled": false, "corsHeaders": []string{"https://a.example.com"}}).ok(t, http.StatusOK)
	if st := f.gateStatus(t, f.admin2); st != http.StatusOK {
		t.Errorf("reactivated key gets %d", st)
	}
	f.do(t, http.MethodPut, "/accessKeys/"+narrowAdmin.id, &mgr, map[string]any{"disabled": false, "scopes": []string{"manageAccessKeys", "viewWidgets"}}).fails(t, http.StatusForbidden, "forbidden")
	if r := f.do(t, http.MethodDelete, "/accessKeys/"+narrowAdmin.id, &mgr, nil); r.status != http.StatusNoContent {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	// Its own keys and service-account keys within its own scopes.
	own := f.do(t, http.MethodPost, "/accessKeys", &mgr, map[string]any{"label": "own", "scopes": []string{"manageAccessKeys", "viewWidgets"}}).ok(t, http.StatusOK)
	if s := strList(t, own["effectiveScopes"]); !slices.Equal(s, []string{"manageAccessKeys"}) {
		t.Errorf("effectiveScopes %q", s)
	}
	sa := newCred(t, f.do(t, http.MethodPost, "/serviceAccounts/SA-KEYS/accessKeys", &mgr, map[string]any{"label": "sa"}).ok(t, http.StatusOK))
	rotated := newCred(t, f.do(t, http.MethodPut, "/accessKeys/"+sa.id+"/rotate", &mgr, nil).ok(t, http.StatusOK))
	f.do(t, http.MethodGet, "/accessKeys?limit=1", &rotated, nil).ok(t, http.StatusOK)

	// An administrator holding every capability of a service account
	// creates and rotates its keys; the owner rotates its own key.
	saKey := newCred(t, f.do(t, http.MethodPost, "/serviceAccounts/SA-ADMIN/accessKeys", &f.admin, map[string]any{"label": "deploy"}).ok(t, http.StatusOK))
	saKey = newCred(t, f.do(t, http.MethodPut, "/serviceAccounts/SA-ADMIN/accessKeys/"+saKey.id+"/rotate", &f.admin, nil).ok(t, http.StatusOK))
	if st := f.gateStatus(t, saKey); st != http.StatusOK {
		t.Errorf("rotated service account key gets %d", st)
	}
	bob := newCred(t, f.do(t, http.MethodPut, "/accessKeys/"+f.bob.id+"/rotate", &f.bob, nil).ok(t, http.StatusOK))
	if st := f.gateStatus(t, bob); st != http.StatusOK {
		t.Errorf("bob's rotated key gets %d", st)
	}
	// A narrower key of the same owner cannot rotate a broader one.
	narrow := f.key(t, "bob", []string{"createAccessKeys"})
	f.do(t, http.MethodPut, "/accessKeys/"+bob.id+"/rotate", &narrow, nil).fails(t, http.StatusForbidden, "forbidden")
}

// TestAPIUserManagerCannotGrantWhatItLacks: manageUsersAndRoles manages
// users, service accounts and roles, but cannot give anyone (itself
// included) a capability its own key does not hold, since every key of
// that owner would gain it.
func TestAPIUserManagerCannotGrantWhatItLacks(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	f.putRole(t, "users", "manageUsersAndRoles")
	f.putUser(t, "USERMGR", "users")
	um := f.key(t, "USERMGR", nil)

	f.unchanged(t, func() {
		f.do(t, http.MethodPut, "/users/USERMGR", &um, map[string]any{"roleIds": []string{"users", "admin"}}).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPut, "/users/carol", &um, map[string]any{"roleIds": []string{"reader", "member"}}).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPost, "/users", &um, map[string]any{"email": "new@example.com", "roleIds": []string{"member"}}).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPost, "/serviceAccounts", &um, map[string]any{"name": "x", "email": "x@example.com", "roleIds": []string{"admin"}}).fails(t, http.StatusForbidden, "forbidden")
		msgs := f.do(t, http.MethodPost, "/roles", &um, map[string]any{"name": "Keys", "capabilities": []string{"manageAccessKeys"}}).fails(t, http.StatusForbidden, "forbidden")
		if !strings.Contains(msgs[0], "manageAccessKeys") {
			t.Errorf("message %q does not name the capability", msgs[0])
		}
		f.do(t, http.MethodPut, "/roles/users", &um, map[string]any{"capabilities": []string{"manageUsersAndRoles", "manageOrgSettings"}}).fails(t, http.StatusForbidden, "forbidden")
	})
	if st := f.gateStatus(t, um); st != http.StatusForbidden {
		t.Errorf("the user manager's key reaches the widgets: %d", st)
	}

	// Changes that give nobody more than the caller holds.
	f.do(t, http.MethodPost, "/roles", &um, map[string]any{"name": "Helpers", "capabilities": []string{"manageUsersAndRoles"}}).ok(t, http.StatusOK)
	f.do(t, http.MethodPost, "/users", &um, map[string]any{"email": "new@example.com", "roleIds": []string{"users"}}).ok(t, http.StatusOK)
	f.do(t, http.MethodPut, "/users/bob", &um, map[string]any{"firstName": "Bob", "isActive": true}).ok(t, http.StatusOK)
	f.do(t, http.MethodPut, "/roles/member", &um, map[string]any{"description": "members"}).ok(t, http.StatusOK)
	f.do(t, http.MethodPut, "/roles/member", &um, map[string]any{"capabilities": []string{"viewWidgets"}}).ok(t, http.StatusOK)
	f.do(t, http.MethodPut, "/users/bob", &um, map[string]any{"roleIds": []string{}}).ok(t, http.StatusOK)
	// An administrator holding the capabilities grants them.
	f.do(t, http.MethodPut, "/users/carol", &f.admin, map[string]any{"roleIds": []string{"reader", "member"}}).ok(t, http.StatusOK)
}

// TestAPIRotatedKeyCanBeCutOffDuringGrace: after a rotation the old Access
// ID still answers to deactivation and deletion during its grace, by its
// owner or by manageAccessKeys, and stops working at once; the new key
// keeps working. It cannot be reactivated or edited.
func TestAPIRotatedKeyCanBeCutOffDuringGrace(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	old := f.key(t, "alice", nil)
	next := newCred(t, f.do(t, http.MethodPut, "/accessKeys/"+old.id+"/rotate", &f.alice, nil).ok(t, http.StatusOK))
	if st := f.gateStatus(t, old); st != http.StatusOK {
		t.Fatalf("the old key gets %d in its grace", st)
	}
	f.unchanged(t, func() {
		f.do(t, http.MethodPut, "/accessKeys/"+old.id, &f.alice, map[string]any{"disabled": false}).fails(t, http.StatusConflict, "accessKey:rotated")
		f.do(t, http.MethodPut, "/accessKeys/"+old.id, &f.alice, map[string]any{"disabled": true, "scopes": []string{"viewWidgets"}}).fails(t, http.StatusConflict, "accessKey:rotated")
		msgs := f.do(t, http.MethodPut, "/accessKeys/"+old.id+"/rotate", &f.alice, nil).fails(t, http.StatusConflict, "accessKey:rotated")
		if !strings.Contains(msgs[0], next.id) {
			t.Errorf("message %q does not name the successor %s", msgs[0], next.id)
		}
		// Someone else's old key stays out of reach without manageAccessKeys.
		f.do(t, http.MethodPut, "/accessKeys/"+old.id, &f.bob, map[string]any{"disabled": true}).fails(t, http.StatusNotFound, "accessKey:not_found")
		f.do(t, http.MethodDelete, "/accessKeys/"+old.id, &f.bob, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
	})
	// The console sends the allowlist it shows along.
	got := f.do(t, http.MethodPut, "/accessKeys/"+old.id, &f.alice, map[string]any{"disabled": true, "corsHeaders": []string{}}).ok(t, http.StatusOK)
	if got["id"] != old.id || got["disabled"] != true {
		t.Errorf("deactivated old key: %v", got)
	}
	if st := f.gateStatus(t, old); st != http.StatusUnauthorized {
		t.Errorf("the deactivated old key gets %d", st)
	}
	if st := f.gateStatus(t, next); st != http.StatusOK {
		t.Errorf("the new key gets %d", st)
	}
	f.do(t, http.MethodPut, "/accessKeys/"+old.id, &f.alice, map[string]any{"disabled": true}).fails(t, http.StatusNotFound, "accessKey:not_found")

	// Deleting, by an administrator, through either path.
	for _, path := range []string{"/accessKeys/", "/serviceAccounts/SA1/accessKeys/"} {
		owner, caller := "bob", &f.bob
		if strings.HasPrefix(path, "/service") {
			f.putServiceAccount(t, "SA1", "member")
			owner, caller = "SA1", &f.admin
		}
		old := f.key(t, owner, nil)
		next := newCred(t, f.do(t, http.MethodPut, path+old.id+"/rotate", caller, nil).ok(t, http.StatusOK))
		if st := f.gateStatus(t, old); st != http.StatusOK {
			t.Fatalf("%s: the old key gets %d in its grace", path, st)
		}
		if r := f.do(t, http.MethodDelete, path+old.id, &f.admin2, nil); r.status != http.StatusNoContent {
			t.Fatalf("%s: deleting the old key: %d %s", path, r.status, r.body)
		}
		if st := f.gateStatus(t, old); st != http.StatusUnauthorized {
			t.Errorf("%s: the deleted old key gets %d", path, st)
		}
		if st := f.gateStatus(t, next); st != http.StatusOK {
			t.Errorf("%s: the new key gets %d", path, st)
		}
		f.do(t, http.MethodDelete, path+old.id, &f.admin2, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
	}
}

// retireFailHook fails, once, the first command after a rotation has
// retired the old key, as a Redis blip at that moment would.
type retireFailHook struct {
	mu      sync.Mutex
	retired bool
	failed  bool
}

var errBlip = errors.New("injected: connection reset by peer")

func (h *retireFailHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *retireFailHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		fail := h.retired && !h.failed
		h.failed = h.failed || fail
		h.mu.Unlock()
		if fail {
			return errBlip
		}
		return next(ctx, cmd)
	}
}

func (h *retireFailHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		fail := h.retired && !h.failed
		h.failed = h.failed || fail
		h.mu.Unlock()
		if fail {
			return errBlip
		}
		err := next(ctx, cmds)
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Name() == "pexpire" }) {
			h.mu.Lock()
			h.retired = true
			h.mu.Unlock()
		}
		return err
	}
}

// TestAPIRotationRetryAfterAnInterruptedRotation: a rotation interrupted
// after the old key was retired (here by a failure of Redis on another
// instance) is finished by retrying it through the API, which hands out a
// working key for the successor instead of answering 404.
func TestAPIRotationRetryAfterAnInterruptedRotation(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	old := f.key(t, "alice", nil)
	rdb := f.redis.Client(t)
	rdb.AddHook(&retireFailHook{})
	other := keystore.New(rdb, keystore.Options{Prefix: f.prefix})
	if _, _, err := other.RotateKey(context.Background(), old.id, testOp); !errors.Is(err, errBlip) {
		t.Fatalf("interrupted rotation: %v", err)
	}
	got := f.do(t, http.MethodPut, "/accessKeys/"+old.id+"/rotate", &f.alice, nil).ok(t, http.StatusOK)
	next := newCred(t, got)
	if next.id == old.id || got["ownerId"] != "alice" {
		t.Errorf("retry answered %v", got)
	}
	if st := f.gateStatus(t, next); st != http.StatusOK {
		t.Errorf("the successor gets %d", st)
	}
	if st := f.gateStatus(t, old); st != http.StatusOK {
		t.Errorf("the old key gets %d in its grace", st)
	}
	body := f.do(t, http.MethodGet, "/accessKeys/personal", &next, nil).ok(t, http.StatusOK)
	var ids []string
	for _, k := range body["data"].([]any) {
		ids = append(ids, k.(map[string]any)["id"].(string))
	}
	if !slices.Contains(ids, next.id) || slices.Contains(ids, old.id) {
		t.Errorf("personal keys %q: want %s listed and not %s", ids, next.id, old.id)
	}
}

// apiOnlyCaddyfile routes every request to access_keys_api and, after
// it in the same route, to an upstream: whatever access_keys_api lets
// through reaches the upstream unauthenticated.
const apiOnlyCaddyfile = `{
	admin 127.0.0.1:%[1]d
	access_keys {
		redis %[2]s
		key_prefix %[3]s
		max_failures_per_client -1
		max_failures_per_key -1
	}
}

http://127.0.0.1:%[4]d {
	route {
		access_keys_api
		reverse_proxy %[5]s
	}
}
`

// TestAPINeverPassesRequestsOn: access_keys_api answers every request
// routed to it: a path it does not serve gets 401 body A without valid
// credentials and 404 body B with them, and nothing reaches the handler
// after it; the console keeps working.
func TestAPINeverPassesRequestsOn(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	var seen atomic.Int64
	var mu sync.Mutex
	var paths []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
	}))
	defer up.Close()
	admin, port := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	gatewaytest.Start(t, fmt.Sprintf(apiOnlyCaddyfile, admin, f.redis.URL(), f.prefix, port, strings.TrimPrefix(up.URL, "http://")))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/api/v1/accesskeys"},
		{http.MethodGet, "/api//v1/accessKeys"},
		{http.MethodPost, "/api/v1//accessKeys"},
		{http.MethodGet, "/api/v1"},
		{http.MethodGet, "/api/v1/"},
		{http.MethodGet, "/"},
		{http.MethodGet, "/data/x"},
		{http.MethodDelete, "/api/v1/nothing/here"},
		{http.MethodGet, "/api/v1/accessKeys/personal/more"},
		{http.MethodGet, "/api/v2/accessKeys"},
		{"PATCH", "/API/V1/ACCESSKEYS"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := apiDo(t, tc.method, base+tc.path, nil, nil)
			var a map[string]any
			if r.status != http.StatusUnauthorized || json.Unmarshal(r.body, &a) != nil || a["code"] != "unauthorized" ||
				r.header.Get("WWW-Authenticate") != `Basic realm="API"` {
				t.Errorf("without credentials: %d %q %s, want 401 body A", r.status, r.header.Get("WWW-Authenticate"), r.body)
			}
			wrong := cred{f.alice.id, keystore.NewAccessKey()}
			if r := apiDo(t, tc.method, base+tc.path, &wrong, nil); r.status != http.StatusUnauthorized {
				t.Errorf("with a wrong key: %d %s", r.status, r.body)
			}
			apiDo(t, tc.method, base+tc.path, &f.alice, nil).fails(t, http.StatusNotFound, "notfound")
		})
	}
	apiDo(t, http.MethodGet, base+"/api/v1/accessKeys/personal", &f.alice, nil).ok(t, http.StatusOK)
	pre := apiDo(t, http.MethodOptions, base+"/somewhere/else", nil, nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if pre.status != http.StatusNoContent {
		t.Errorf("preflight: %d %s", pre.status, pre.body)
	}
	console := apiDo(t, http.MethodGet, base+"/console/", nil, nil)
	if console.status != http.StatusOK || !strings.HasPrefix(console.header.Get("Content-Type"), "text/html") {
		t.Errorf("console: %d %q", console.status, console.header.Get("Content-Type"))
	}
	if n := seen.Load(); n != 0 {
		mu.Lock()
		defer mu.Unlock()
		t.Errorf("the upstream saw %d requests: %q", n, paths)
	}
}

// TestAPIRefusesDisguisingText: labels and names with control or
// bidirectional formatting characters are refused with 400 and the
// field's code, and nothing changes.
func TestAPIRefusesDisguisingText(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	f.unchanged(t, func() {
		for _, bad := range []string{"invoice\u202Efdp.exe", "a\u2066b\u2069", "x\u200Fy", "x\u061Cy", "bell\u0007", "c1\u0085", "tab\there"} {
			f.do(t, http.MethodPost, "/accessKeys", &f.alice, map[string]any{"label": bad}).fails(t, http.StatusBadRequest, "accessKey:label_invalid")
			f.do(t, http.MethodPost, "/users", &f.admin, map[string]any{"email": "n@example.com", "firstName": bad}).fails(t, http.StatusBadRequest, "user:invalid_firstName")
			f.do(t, http.MethodPut, "/users/alice", &f.admin, map[string]any{"lastName": bad}).fails(t, http.StatusBadRequest, "user:invalid_lastName")
			f.do(t, http.MethodPost, "/serviceAccounts", &f.admin, map[string]any{"name": bad, "email": "s@example.com"}).fails(t, http.StatusBadRequest, "serviceAccount:invalid_name")
			f.do(t, http.MethodPost, "/roles", &f.admin, map[string]any{"name": bad}).fails(t, http.StatusBadRequest, "role:invalid_name")
			f.do(t, http.MethodPut, "/roles/member", &f.admin, map[string]any{"description": bad}).fails(t, http.StatusBadRequest, "role:invalid_description")
		}
		f.do(t, http.MethodPost, "/users", &f.admin, map[string]any{"email": "ev\u202Eil@example.com"}).fails(t, http.StatusBadRequest, "user:invalid_email")
	})
}
