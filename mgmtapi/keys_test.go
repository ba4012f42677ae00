package mgmtapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessgate/accessgate/keystore"
)

// TestAPIKeyLifecycle creates, reads, lists, updates, rotates and deletes a
// key through the API, checking every field of every answer and that the
// gateway follows each change at once.
func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Millisecond)

	created := f.do(t, http.MethodPost, "/accessKeys", &f.alice, map[string]any{
		"label":        "ci key",
		"corsHeaders":  []string{"https://App.Example.com:443"},
		"scopes":       []string{"viewWidgets", "createAccessKeys"},
		"unknownField": map[string]any{"ignored": true},
	}).ok(t, http.StatusOK)
	fieldsExactly(t, created, accessKeyFields...)
	id, _ := created["id"].(string)
	secret, _ := created["key"].(string)
	if !keystore.ValidAccessID(id) || !keystore.ValidAccessKey(secret) {
		t.Fatalf("id %q key %q", id, secret)
	}
	if created["label"] != "ci key" || created["disabled"] != false || created["ownerId"] != "alice" ||
		created["createdBy"] != "alice" || created["modifiedBy"] != "alice" || created["lastUsed"] != nil {
		t.Errorf("created %v", created)
	}
	if got := strList(t, created["corsHeaders"]); !slices.Equal(got, []string{"https://app.example.com"}) {
		t.Errorf("corsHeaders %q", got)
	}
	if got := strList(t, created["scopes"]); !slices.Equal(got, []string{"viewWidgets", "createAccessKeys"}) {
		t.Errorf("scopes %q", got)
	}
	if got := strList(t, created["effectiveScopes"]); !slices.Equal(got, []string{"createAccessKeys", "viewWidgets"}) {
		t.Errorf("effectiveScopes %q", got)
	}
	createdAt := parseAPITime(t, created["createdAt"])
	if createdAt.Before(start) || createdAt.After(time.Now().Add(time.Second)) || created["modifiedAt"] != created["createdAt"] {
		t.Errorf("createdAt %v modifiedAt %v (test started %v)", created["createdAt"], created["modifiedAt"], start)
	}
	if exp := parseAPITime(t, created["expiresAt"]); !exp.Equal(createdAt.Add(180 * 24 * time.Hour)) {
		t.Errorf("expiresAt %v, want creation + 180 days", exp)
	}
	newKey := cred{id, secret}
	if st := f.gateStatus(t, newKey); st != http.StatusOK {
		t.Fatalf("the new key gets %d through the gateway", st)
	}

	evs, err := f.store.Events(ctx, keystore.EventFilter{Name: keystore.EventKeyCreated, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	wantOp := keystore.Operator{ID: "alice", Email: "alice@example.com", AccessID: f.alice.id, Interface: keystore.InterfaceAPI, SourceIP: "127.0.0.1"}
	if last.Operator != wantOp || last.AccessKey == nil || last.AccessKey.AccessID != id {
		t.Errorf("audit event %+v, want operator %+v", last, wantOp)
	}

	t.Run("read", func(t *testing.T) {
		got := f.do(t, http.MethodGet, "/accessKeys/"+id, &f.alice, nil).ok(t, http.StatusOK)
		fieldsExactly(t, got, accessKeyFields...)
		if got["key"] != "" || got["id"] != id || got["createdAt"] != created["createdAt"] {
			t.Errorf("read %v", got)
		}
		// Uses are timed with a coarse clock: allow it a second.
		if lu := parseAPITime(t, got["lastUsed"]); lu.Before(createdAt.Add(-time.Second)) {
			t.Errorf("lastUsed %v before creation %v", lu, createdAt)
		}
	})

	t.Run("personal", func(t *testing.T) {
		body := f.do(t, http.MethodGet, "/accessKeys/personal", &f.alice, nil).ok(t, http.StatusOK)
		fieldsExactly(t, body, "data")
		var ids []string
		for _, k := range body["data"].([]any) {
			km := k.(map[string]any)
			fieldsExactly(t, km, accessKeyFields...)
			if km["key"] != "" || km["ownerId"] != "alice" {
				t.Errorf("personal key %v", km)
			}
			ids = append(ids, km["id"].(string))
		}
		want := []string{f.alice.id, id}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("personal keys %q, want %q", ids, want)
		}
	})

	t.Run("list", func(t *testing.T) {
		body := f.do(t, http.MethodGet, "/accessKeys?limit=1000", &f.admin, nil).ok(t, http.StatusOK)
		fieldsExactly(t, body, "data", "next")
		if body["next"] != nil || len(body["data"].([]any)) != 6 {
			t.Errorf("list: next %v, %d keys", body["next"], len(body["data"].([]any)))
		}
	})

	t.Run("prefix stripped", func(t *testing.T) {
		for _, p := range []string{"/accessKeys/" + id, "/api/v1/accessKeys/" + id} {
			got := apiDo(t, http.MethodGet, f.stripped+p, &f.alice, nil).ok(t, http.StatusOK)
			if got["id"] != id {
				t.Errorf("%s: %v", p, got)
			}
		}
		resp := apiDo(t, http.MethodGet, f.stripped+"/accessKeys/personal", nil, nil)
		if resp.status != http.StatusUnauthorized || resp.header.Get("WWW-Authenticate") != `Basic realm="Management"` {
			t.Errorf("no credentials: %d %q", resp.status, resp.header.Get("WWW-Authenticate"))
		}
	})

	t.Run("update", func(t *testing.T) {
		got := f.do(t, http.MethodPut, "/accessKeys/"+id, &f.alice, map[string]any{"disabled": true, "label": "ignored"}).ok(t, http.StatusOK)
		fieldsExactly(t, got, accessKeyFields...)
		if got["disabled"] != true || got["label"] != "ci key" || got["key"] != "" || got["modifiedBy"] != "alice" {
			t.Errorf("disabled: %v", got)
		}
		if parseAPITime(t, got["modifiedAt"]).Before(createdAt) {
			t.Errorf("modifiedAt %v", got["modifiedAt"])
		}
		if st := f.gateStatus(t, newKey); st != http.StatusUnauthorized {
			t.Errorf("deactivated key gets %d", st)
		}
		got = f.do(t, http.MethodPut, "/accessKeys/"+id, &f.alice, map[string]any{"disabled": false, "corsHeaders": []string{}}).ok(t, http.StatusOK)
		if got["disabled"] != false || len(strList(t, got["corsHeaders"])) != 0 || len(strList(t, got["scopes"])) != 2 {
			t.Errorf("enabled: %v", got)
		}
		if st := f.gateStatus(t, newKey); st != http.StatusOK {
			t.Errorf("reactivated key gets %d", st)
		}
		got = f.do(t, http.MethodPut, "/accessKeys/"+id, &f.alice, map[string]any{"disabled": false, "scopes": []string{"viewWidgets"}}).ok(t, http.StatusOK)
		if s := strList(t, got["scopes"]); !slices.Equal(s, []string{"viewWidgets"}) {
			t.Errorf("scopes %q", s)
		}
	})

	var rotated cred
	t.Run("rotate", func(t *testing.T) {
		got := f.do(t, http.MethodPut, "/accessKeys/"+id+"/rotate", &f.alice, nil).ok(t, http.StatusOK)
		fieldsExactly(t, got, accessKeyFields...)
		rotated = cred{got["id"].(string), got["key"].(string)}
		if rotated.id == id || !keystore.ValidAccessID(rotated.id) || !keystore.ValidAccessKey(rotated.secret) {
			t.Fatalf("rotated %v", got)
		}
		if got["label"] != "ci key" || got["ownerId"] != "alice" || !slices.Equal(strList(t, got["scopes"]), []string{"viewWidgets"}) || got["lastUsed"] != nil {
			t.Errorf("rotated %v", got)
		}
		if st := f.gateStatus(t, rotated); st != http.StatusOK {
			t.Errorf("rotated key gets %d", st)
		}
		if st := f.gateStatus(t, newKey); st != http.StatusOK {
			t.Errorf("old key within its grace gets %d", st)
		}
		f.do(t, http.MethodGet, "/accessKeys/"+id, &f.alice, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
	})

	t.Run("delete", func(t *testing.T) {
		resp := f.do(t, http.MethodDelete, "/accessKeys/"+rotated.id, &f.alice, nil)
		if resp.status != http.StatusNoContent || len(resp.body) != 0 {
			t.Fatalf("delete: %d %s", resp.status, resp.body)
		}
		if st := f.gateStatus(t, rotated); st != http.StatusUnauthorized {
			t.Errorf("deleted key gets %d", st)
		}
		f.do(t, http.MethodGet, "/accessKeys/"+rotated.id, &f.alice, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
		f.do(t, http.MethodDelete, "/accessKeys/"+rotated.id, &f.alice, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
	})

	names := f.changeEvents(t)
	for _, want := range []string{keystore.EventKeyCreated, keystore.EventKeyDeactivated, keystore.EventKeyActivated,
		keystore.EventKeyUpdated, keystore.EventKeyRotated, keystore.EventKeyDeleted} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s event in %q", want, names)
		}
	}
}

// TestAPIPersonalKeyCannotTouchOthers: a key with createAccessKeys but not
// manageAccessKeys sees and changes only its owner's keys; other keys are
// answered 404, as if they did not exist.
func TestAPIPersonalKeyCannotTouchOthers(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	unknown := keystore.NewAccessID()
	f.unchanged(t, func() {
		for _, id := range []string{f.bob.id, f.admin.id, unknown} {
			f.do(t, http.MethodGet, "/accessKeys/"+id, &f.alice, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
			f.do(t, http.MethodPut, "/accessKeys/"+id, &f.alice, map[string]any{"disabled": true}).fails(t, http.StatusNotFound, "accessKey:not_found")
			f.do(t, http.MethodPut, "/accessKeys/"+id+"/rotate", &f.alice, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
			f.do(t, http.MethodDelete, "/accessKeys/"+id, &f.alice, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
		}
		msgs := f.do(t, http.MethodGet, "/accessKeys", &f.alice, nil).fails(t, http.StatusForbidden, "forbidden")
		if !strings.Contains(msgs[0], "manageAccessKeys") {
			t.Errorf("403 message %q does not name manageAccessKeys", msgs[0])
		}
		f.do(t, http.MethodGet, "/serviceAccounts/SA1/accessKeys", &f.alice, nil).fails(t, http.StatusForbidden, "forbidden")
		// Without any key capability even one's own keys are out of reach.
		msgs = f.do(t, http.MethodGet, "/accessKeys/personal", &f.carol, nil).fails(t, http.StatusForbidden, "forbidden")
		if !strings.Contains(msgs[0], "createAccessKeys") {
			t.Errorf("403 message %q does not name createAccessKeys", msgs[0])
		}
		f.do(t, http.MethodDelete, "/accessKeys/"+f.carol.id, &f.carol, nil).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPost, "/accessKeys", &f.carol, map[string]any{"label": "x"}).fails(t, http.StatusForbidden, "forbidden")
	})
	body := f.do(t, http.MethodGet, "/accessKeys/personal", &f.alice, nil).ok(t, http.StatusOK)
	if data := body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != f.alice.id {
		t.Errorf("alice's personal keys: %v", data)
	}
	if got := f.do(t, http.MethodGet, "/accessKeys/"+f.bob.id, &f.admin, nil).ok(t, http.StatusOK); got["ownerId"] != "bob" {
		t.Errorf("admin reads bob's key: %v", got)
	}
	if st := f.gateStatus(t, f.bob); st != http.StatusOK {
		t.Errorf("bob's key gets %d", st)
	}
	evs, err := f.store.Events(context.Background(), keystore.EventFilter{Name: keystore.EventScopeRejected, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// The audit queue writes asynchronously; at least one refusal is there
	// once it has flushed.
	if len(evs) == 0 {
		eventually(t, 5*time.Second, "a capability refusal in the audit stream", func() bool {
			evs, _ = f.store.Events(context.Background(), keystore.EventFilter{Name: keystore.EventScopeRejected, Limit: 1000})
			return len(evs) > 0
		})
	}
	if evs[0].Operator.AccessID == "" || evs[0].Details["scope"] == nil {
		t.Errorf("refusal event %+v", evs[0])
	}
}

// TestAPICustomScopedKeyStaysWithinItsScopes: a key restricted to
// createAccessKeys cannot use its owner's other capabilities, nor make or
// rotate into a broader key; a scope the owner lacks gives nothing.
func TestAPICustomScopedKeyStaysWithinItsScopes(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	narrow := f.key(t, "ADMIN1", []string{"createAccessKeys"})
	f.unchanged(t, func() {
		f.do(t, http.MethodGet, "/accessKeys", &narrow, nil).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodGet, "/accessKeys/"+f.bob.id, &narrow, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
		f.do(t, http.MethodPost, "/users", &narrow, map[string]any{"email": "x@example.com"}).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPut, "/policies/accessKeysLifetime", &narrow, map[string]any{"accessKeysLifetimeInDays": 30}).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPost, "/accessKeys", &narrow, map[string]any{"label": "wider", "scopes": []string{"manageAccessKeys"}}).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPost, "/accessKeys", &narrow, map[string]any{"label": "default"}).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPut, "/accessKeys/"+f.admin.id+"/rotate", &narrow, nil).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPut, "/accessKeys/"+narrow.id, &narrow, map[string]any{"disabled": false, "scopes": []string{"manageUsersAndRoles"}}).fails(t, http.StatusForbidden, "forbidden")
	})
	got := f.do(t, http.MethodPost, "/accessKeys", &narrow, map[string]any{"label": "same", "scopes": []string{"createAccessKeys"}}).ok(t, http.StatusOK)
	if s := strList(t, got["effectiveScopes"]); !slices.Equal(s, []string{"createAccessKeys"}) {
		t.Errorf("effectiveScopes %q", s)
	}
	// The owner's Default key can still do all of it.
	f.do(t, http.MethodGet, "/accessKeys", &f.admin, nil).ok(t, http.StatusOK)

	// A listed scope the owner lacks gives nothing.
	wide := f.key(t, "alice", []string{"manageAccessKeys", "createAccessKeys"})
	f.do(t, http.MethodGet, "/accessKeys", &wide, nil).fails(t, http.StatusForbidden, "forbidden")
	got = f.do(t, http.MethodGet, "/accessKeys/"+wide.id, &wide, nil).ok(t, http.StatusOK)
	if s := strList(t, got["effectiveScopes"]); !slices.Equal(s, []string{"createAccessKeys"}) {
		t.Errorf("effectiveScopes %q, want only createAccessKeys", s)
	}
}

// TestAPIConcurrentAdminUpdatesLoseNothing: two admins update different
// fields of one key at the same time, 25 times each; every update lands.
func TestAPIConcurrentAdminUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	target := f.key(t, "alice", nil)
	const n = 25
	catalogue := keystore.ScopeCatalogue()
	var wg sync.WaitGroup
	begin := make(chan struct{})
	run := func(c cred, body func(i int) map[string]any) {
		defer wg.Done()
		<-begin
		for i := range n {
			// The stripped site lists Sumo Logic's catalogue, which has
			// more than n scopes.
			if r := apiDo(t, http.MethodPut, f.stripped+"/accessKeys/"+target.id, &c, body(i)); r.status != http.StatusOK {
				t.Errorf("PUT %d: %d %s", i, r.status, r.body)
				return
			}
		}
	}
	wg.Add(2)
	go run(f.admin, func(i int) map[string]any {
		return map[string]any{"disabled": false, "corsHeaders": []string{fmt.Sprintf("https://a%d.example.com", i)}}
	})
	go run(f.admin2, func(i int) map[string]any {
		return map[string]any{"disabled": false, "scopes": []string{catalogue[i].ID}}
	})
	close(begin)
	wg.Wait()

	got := f.do(t, http.MethodGet, "/accessKeys/"+target.id, &f.admin, nil).ok(t, http.StatusOK)
	if c := strList(t, got["corsHeaders"]); !slices.Equal(c, []string{fmt.Sprintf("https://a%d.example.com", n-1)}) {
		t.Errorf("corsHeaders %q: an update was lost", c)
	}
	if s := strList(t, got["scopes"]); !slices.Equal(s, []string{catalogue[n-1].ID}) {
		t.Errorf("scopes %q: an update was lost", s)
	}
	k, err := f.store.Key(context.Background(), target.id)
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != 1+2*n {
		t.Errorf("version %d after %d updates, want %d", k.Version, 2*n, 1+2*n)
	}
	evs, err := f.store.Events(context.Background(), keystore.EventFilter{Name: keystore.EventKeyUpdated, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, e := range evs {
		if e.AccessKey != nil && e.AccessKey.AccessID == target.id {
			count++
		}
	}
	if count != 2*n {
		t.Errorf("%d AccessKeyUpdated events, want %d", count, 2*n)
	}
}

// TestAPIRotateRacingDelete rotates and deletes the same keys at the same
// time: one of the two wins each race (or the rotation finishes first and
// the deletion then removes the rotated-out key, as a change may during
// its grace), and no key is left that nobody holds or lists but that
// still authenticates.
func TestAPIRotateRacingDelete(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	const n = 20
	keys := make([]cred, n)
	for i := range keys {
		keys[i] = f.key(t, "alice", nil)
	}
	rot := make([]apiResp, n)
	del := make([]apiResp, n)
	var wg sync.WaitGroup
	for i := range keys {
		begin := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-begin
			rot[i] = f.do(t, http.MethodPut, "/accessKeys/"+keys[i].id+"/rotate", &f.alice, nil)
		}()
		go func() {
			defer wg.Done()
			<-begin
			del[i] = f.do(t, http.MethodDelete, "/accessKeys/"+keys[i].id, &f.admin2, nil)
		}()
		close(begin)
	}
	wg.Wait()

	var successors []string
	for i := range keys {
		switch {
		case rot[i].status == http.StatusOK && (del[i].status == http.StatusNotFound || del[i].status == http.StatusNoContent):
			var k struct{ ID, Key string }
			rot[i].into(t, &k)
			if st := f.gateStatus(t, cred{k.ID, k.Key}); st != http.StatusOK {
				t.Errorf("race %d: the rotated key gets %d", i, st)
			}
			if st := f.gateStatus(t, keys[i]); del[i].status == http.StatusNoContent && st != http.StatusUnauthorized {
				t.Errorf("race %d: the rotated-out key, deleted after the rotation, gets %d", i, st)
			}
			successors = append(successors, k.ID)
		case rot[i].status == http.StatusNotFound && del[i].status == http.StatusNoContent:
			if st := f.gateStatus(t, keys[i]); st != http.StatusUnauthorized {
				t.Errorf("race %d: the deleted key gets %d", i, st)
			}
		default:
			t.Errorf("race %d: rotate %d %s, delete %d %s", i, rot[i].status, rot[i].body, del[i].status, del[i].body)
		}
	}
	t.Logf("%d rotations and %d deletions won", len(successors), n-len(successors))

	var list struct {
		Data []struct{ ID string } `json:"data"`
	}
	f.do(t, http.MethodGet, "/accessKeys?limit=1000", &f.admin, nil).into(t, &list)
	listed := map[string]bool{}
	for _, k := range list.Data {
		listed[k.ID] = true
	}
	for _, id := range successors {
		if !listed[id] {
			t.Errorf("rotated key %s is not listed", id)
		}
	}
	if want := 5 + len(successors); len(listed) != want {
		t.Errorf("%d keys listed, want %d", len(listed), want)
	}
	// Every record in Redis is a listed key, or a rotated-out key whose
	// successor is listed; none is pending.
	ctx := context.Background()
	iter := f.rdb.Scan(ctx, 0, f.prefix+":key:*", 1000).Iterator()
	for iter.Next(ctx) {
		var k keystore.Key
		if err := keystore.DecodeKey([]byte(f.rdb.Get(ctx, iter.Val()).Val()), &k); err != nil {
			t.Fatalf("%s: %v", iter.Val(), err)
		}
		switch {
		case k.Pending:
			t.Errorf("pending record %s left behind", k.ID)
		case k.ReplacedBy != "" && !listed[k.ReplacedBy]:
			t.Errorf("record %s was replaced by %s, which is not listed", k.ID, k.ReplacedBy)
		case k.ReplacedBy == "" && !listed[k.ID]:
			t.Errorf("record %s is live but not listed", k.ID)
		}
	}
}

// TestAPIListTenThousandKeys pages through 10,000 keys 1,000 at a time:
// every key comes exactly once and the last page says next: null.
func TestAPIListTenThousandKeys(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	const n = 10000
	began := time.Now()
	want := make(chan string, n)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				k, _, err := f.store.CreateKey(context.Background(), keystore.KeySpec{Label: fmt.Sprint("bulk ", i), OwnerID: "bob"}, testOp)
				if err != nil {
					t.Errorf("CreateKey: %v", err)
					return
				}
				want <- k.ID
			}
		}()
	}
	wg.Wait()
	close(want)
	t.Logf("created %d keys in %v", n, time.Since(began))

	seen := map[string]int{}
	token, pages := "", 0
	began = time.Now()
	for {
		pages++
		if pages > 20 {
			t.Fatal("too many pages")
		}
		path := "/accessKeys?limit=1000"
		if token != "" {
			path += "&token=" + token
		}
		var page struct {
			Data []struct{ ID, Key string } `json:"data"`
			Next *string                    `json:"next"`
		}
		f.do(t, http.MethodGet, path, &f.admin, nil).into(t, &page)
		if len(page.Data) > 1000 {
			t.Fatalf("page of %d keys", len(page.Data))
		}
		for _, k := range page.Data {
			seen[k.ID]++
			if k.Key != "" {
				t.Fatalf("listing shows a secret")
			}
		}
		if page.Next == nil {
			break
		}
		token = *page.Next
	}
	t.Logf("listed %d keys in %d pages in %v", len(seen), pages, time.Since(began))
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("key %s listed %d times", id, seen[id])
		}
	}
	if len(seen) != n+5 || pages != 11 {
		t.Errorf("%d keys in %d pages, want %d in 11", len(seen), pages, n+5)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("key %s listed %d times", id, c)
		}
	}
}

// TestAPIKeyScopesFromTheCatalogue: scopes must name scopes of the
// catalogue (one error per unknown scope); scopes and corsHeaders come
// back in the order given, without duplicates.
func TestAPIKeyScopesFromTheCatalogue(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	k := f.do(t, http.MethodPost, "/accessKeys", &f.admin, map[string]any{
		"label": "ordered", "scopes": []string{"viewWidgets", "manageAccessKeys", "viewWidgets", "createAccessKeys"},
		"corsHeaders": []string{"https://b.example.com", "https://a.example.com", "https://b.example.com"},
	}).ok(t, http.StatusOK)
	if got := strList(t, k["scopes"]); !slices.Equal(got, []string{"viewWidgets", "manageAccessKeys", "createAccessKeys"}) {
		t.Errorf("scopes %q", got)
	}
	if got := strList(t, k["corsHeaders"]); !slices.Equal(got, []string{"https://b.example.com", "https://a.example.com"}) {
		t.Errorf("corsHeaders %q", got)
	}
	id := k["id"].(string)
	got := f.do(t, http.MethodGet, "/accessKeys/"+id, &f.admin, nil).ok(t, http.StatusOK)
	if s := strList(t, got["scopes"]); !slices.Equal(s, []string{"viewWidgets", "manageAccessKeys", "createAccessKeys"}) {
		t.Errorf("read scopes %q", s)
	}
	up := f.do(t, http.MethodPut, "/accessKeys/"+id, &f.admin, map[string]any{"disabled": false, "scopes": []string{"manageWidgets", "viewWidgets"}}).ok(t, http.StatusOK)
	if s := strList(t, up["scopes"]); !slices.Equal(s, []string{"manageWidgets", "viewWidgets"}) {
		t.Errorf("updated scopes %q", s)
	}

	f.unchanged(t, func() {
		for _, tc := range []struct{ method, path string }{
			{http.MethodPost, "/accessKeys"},
			{http.MethodPut, "/accessKeys/" + id},
		} {
			r := f.do(t, tc.method, tc.path, &f.admin, map[string]any{
				"label": "x", "disabled": false, "scopes": []string{"noSuchScope", "viewWidgets", "alsoUnknown"},
			})
			r.fails(t, http.StatusBadRequest, "accessKey:invalid_scope")
			var b struct {
				Errors []struct{ Code, Message string } `json:"errors"`
			}
			r.into(t, &b)
			if len(b.Errors) != 2 || !strings.Contains(b.Errors[0].Message, "noSuchScope") || !strings.Contains(b.Errors[1].Message, "alsoUnknown") {
				t.Errorf("%s %s: errors %+v, want one per unknown scope", tc.method, tc.path, b.Errors)
			}
		}
	})
}
