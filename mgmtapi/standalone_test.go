package mgmtapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/errbody"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
	"github.com/accessgate/accessgate/mgmtapi"
	"github.com/accessgate/accessgate/usage"
)

// gateway stands in for the gateway that serves the API: it
// authenticates with the store alone and records what the API asks of
// it. It is the Authenticator and, held, the Instance.
type gateway struct {
	store    *keystore.Store
	usage    *usage.Store
	lastUsed time.Time // the unflushed last use of every key

	authenticated atomic.Int64
	holds, held   atomic.Int64 // taken in all, and not released yet

	quotaUsed int64 // the quota use of every key with a quota

	mu         sync.Mutex
	quotaReads []string // limit IDs and quotas asked for
	forgot     []string
	audited    []keystore.Event
	errorIDs   []string
}

func (g *gateway) Preflight(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

func (g *gateway) Authenticate(w http.ResponseWriter, r *http.Request) (*keystore.Identity, bool) {
	g.authenticated.Add(1)
	id, secret, _ := r.BasicAuth()
	ident, err := g.store.Verify(r.Context(), id, secret, keystore.VerifyOptions{})
	if err != nil {
		// As Authenticator asks: body A.
		errbody.WriteA(w, http.StatusUnauthorized, errbody.NewID(), "unauthorized", "Credential could not be verified.")
		return nil, false
	}
	return ident, true
}

func (g *gateway) hold(ctx context.Context) mgmtapi.Instance {
	g.holds.Add(1)
	g.held.Add(1)
	context.AfterFunc(ctx, func() { g.held.Add(-1) })
	return g
}

func (g *gateway) Store() *keystore.Store                { return g.store }
func (g *gateway) Usage() *usage.Store                   { return g.usage }
func (g *gateway) LastUsed(string) time.Time             { return g.lastUsed }
func (g *gateway) ForgetKey(accessID string)             { g.record(&g.forgot, "key "+accessID) }
func (g *gateway) ForgetOwner(ownerID string)            { g.record(&g.forgot, "owner "+ownerID) }
func (g *gateway) ForgetAll()                            { g.record(&g.forgot, "all") }
func (g *gateway) logErrorID(_ *http.Request, id string) { g.record(&g.errorIDs, id) }

// quotaResetsAt is when the fake gateway says every quota period ends.
var quotaResetsAt = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func (g *gateway) QuotaUsages(_ context.Context, subs []limits.QuotaSubject) ([]limits.QuotaUse, error) {
	out := make([]limits.QuotaUse, len(subs))
	for i, s := range subs {
		g.record(&g.quotaReads, s.ID+" "+s.Quota.String())
		out[i] = limits.QuotaUse{Used: g.quotaUsed, ResetsAt: quotaResetsAt}
	}
	return out, nil
}

func (g *gateway) AuditRefusal(e keystore.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.audited = append(g.audited, e)
}

func (g *gateway) record(list *[]string, s string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	*list = append(*list, s)
}

// TestHandlerWithoutCaddy serves the API from httptest over a real Redis,
// with a gateway of its own: requests authenticate through the
// Authenticator (the console and preflights without it), every call holds
// the instance only while it runs, changes make the instance forget what
// they touch, refusals are audited with the client address and error id
// the API was given, and the scopes and last uses come from the gateway.
func TestHandlerWithoutCaddy(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	store := keystore.New(rdb, keystore.Options{Prefix: "standalone"})
	ctx := context.Background()
	for id, caps := range map[string][]string{"admin": apiAdminCaps, "reader": apiReaderCaps} {
		if _, err := store.PutRole(ctx, keystore.Role{ID: id, Capabilities: caps}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	newKey := func(owner, role string) cred {
		t.Helper()
		o := keystore.Owner{ID: owner, Kind: keystore.OwnerUser, Email: owner + "@example.com", RoleIDs: []string{role}, IsActive: true}
		if _, err := store.PutOwner(ctx, o, "test"); err != nil {
			t.Fatal(err)
		}
		k, secret, err := store.CreateKey(ctx, keystore.KeySpec{Label: "key of " + owner, OwnerID: owner}, testOp)
		if err != nil {
			t.Fatal(err)
		}
		return cred{k.ID, secret}
	}
	admin, carol := newKey("ADMIN1", "admin"), newKey("carol", "reader")

	g := &gateway{store: store, usage: usage.NewStore(rdb, "standalone"), lastUsed: time.Date(2026, 11, 27, 12, 0, 0, 123e6, time.UTC)}
	srv := httptest.NewServer(&mgmtapi.Handler{
		Auth:         g,
		Hold:         g.hold,
		ClientIP:     func(*http.Request) string { return "192.0.2.7" },
		MappedScopes: func() []string { return []string{"createAccessKeys", "viewWidgets"} },
		LogErrorID:   g.logErrorID,
	})
	t.Cleanup(srv.Close)
	base := srv.URL + "/api/v1"

	if r := apiDo(t, http.MethodGet, srv.URL+"/console/", nil, nil); r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("console: %d %q", r.status, r.header.Get("Content-Type"))
	}
	if r := apiDo(t, http.MethodOptions, base+"/accessKeys", nil, nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST"); r.status != http.StatusNoContent {
		t.Errorf("preflight: %d", r.status)
	}
	if n := g.authenticated.Load(); n != 0 {
		t.Errorf("the console or a preflight was authenticated (%d calls)", n)
	}
	apiDo(t, http.MethodGet, base+"/accessKeys/personal", nil, nil).bodyA(t, http.StatusUnauthorized, "unauthorized", "Credential could not be verified.")
	if g.authenticated.Load() != 1 || g.holds.Load() != 0 {
		t.Errorf("a refused credential: %d authentications, %d holds; want 1 and 0", g.authenticated.Load(), g.holds.Load())
	}

	var scopes struct{ Data []struct{ ID string } }
	apiDo(t, http.MethodGet, base+"/accessKeys/scopes", &carol, nil).into(t, &scopes)
	var ids []string
	for _, d := range scopes.Data {
		ids = append(ids, d.ID)
	}
	if len(ids) < 2 || ids[len(ids)-1] != "viewWidgets" || strings.Count(strings.Join(ids, " ")+" ", "createAccessKeys ") != 1 {
		t.Errorf("scopes %q: want the catalogue once, then viewWidgets", ids)
	}
	got := apiDo(t, http.MethodGet, base+"/accessKeys/"+carol.id, &admin, nil).ok(t, http.StatusOK)
	if got["lastUsed"] != "2026-11-27T12:00:00.123Z" {
		t.Errorf("lastUsed %v, want the gateway's unflushed use", got["lastUsed"])
	}

	refused := apiDo(t, http.MethodPost, base+"/users", &carol, map[string]any{"email": "x@example.com"})
	refused.fails(t, http.StatusForbidden, "forbidden")
	var body struct{ ID string }
	refused.into(t, &body)
	g.mu.Lock()
	if len(g.audited) != 1 || len(g.errorIDs) != 1 {
		t.Fatalf("audited %+v, error ids %q; want one each", g.audited, g.errorIDs)
	}
	ev := g.audited[0]
	if ev.EventName != keystore.EventScopeRejected || ev.Operator.SourceIP != "192.0.2.7" || ev.Operator.AccessID != carol.id ||
		ev.Details["errorId"] != body.ID || g.errorIDs[0] != body.ID || ev.Details["scope"] != "manageUsersAndRoles" {
		t.Errorf("audited %+v, error ids %q; answer id %s", ev, g.errorIDs, body.ID)
	}
	g.mu.Unlock()
	apiDo(t, http.MethodGet, base+"/nothing", &admin, nil).fails(t, http.StatusNotFound, "notfound")

	apiDo(t, http.MethodPut, base+"/accessKeys/"+carol.id, &admin, map[string]any{"disabled": true}).ok(t, http.StatusOK)
	apiDo(t, http.MethodPut, base+"/users/carol", &admin, map[string]any{"firstName": "Carol"}).ok(t, http.StatusOK)
	apiDo(t, http.MethodPut, base+"/policies/accessKeysLifetime", &admin, map[string]any{"accessKeysLifetimeInDays": 90}).ok(t, http.StatusOK)
	apiDo(t, http.MethodPut, base+"/roles/reader", &admin, map[string]any{"description": "reads"}).ok(t, http.StatusOK)
	g.mu.Lock()
	want := []string{"key " + carol.id, "owner carol", "all", "all"}
	if !slices.Equal(g.forgot, want) || len(g.errorIDs) != 2 {
		t.Errorf("forgot %q, want %q; error ids %q, want two", g.forgot, want, g.errorIDs)
	}
	g.mu.Unlock()

	// Quota usage comes from the gateway, asked under the key's limit
	// ID, for keys with a quota only.
	g.quotaUsed = 17
	if _, err := store.UpdateKey(ctx, carol.id, keystore.KeyUpdate{Quota: keystore.Set(limits.Quota{Requests: 10, Period: limits.PeriodDay})}, testOp); err != nil {
		t.Fatal(err)
	}
	got = apiDo(t, http.MethodGet, base+"/accessKeys?limit=1000", &admin, nil).ok(t, http.StatusOK)
	for _, x := range got["data"].([]any) {
		m := x.(map[string]any)
		want, wantReset := 0.0, any(nil)
		if m["id"] == carol.id {
			want, wantReset = 17, "2026-12-01T00:00:00.000Z"
		}
		if m["quotaUsed"] != want || m["quotaResetsAt"] != wantReset {
			t.Errorf("key %v: quotaUsed %v, quotaResetsAt %v; want %v, %v", m["id"], m["quotaUsed"], m["quotaResetsAt"], want, wantReset)
		}
	}
	g.mu.Lock()
	if want := []string{carol.id + " 10/day"}; !slices.Equal(g.quotaReads, want) {
		t.Errorf("quota reads %q, want %q", g.quotaReads, want)
	}
	g.mu.Unlock()

	eventually(t, 10*time.Second, "every hold released", func() bool { return g.held.Load() == 0 })
	if n := g.holds.Load(); n != 9 {
		t.Errorf("%d holds, want one per authenticated request (9)", n)
	}
}
