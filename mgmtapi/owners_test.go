package mgmtapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/keystore"
)

var (
	userFields           = []string{"id", "email", "firstName", "lastName", "roleIds", "isActive", "createdAt", "createdBy", "modifiedAt", "modifiedBy", "rateLimit"}
	serviceAccountFields = []string{"id", "name", "email", "roleIds", "isActive", "createdAt", "createdBy", "modifiedAt", "modifiedBy", "rateLimit"}
	roleFields           = []string{"id", "name", "description", "capabilities", "createdAt", "createdBy", "modifiedAt", "modifiedBy"}
)

// TestAPIUsers: create, read, list, update, deactivate and delete users;
// a deactivated or deleted user's keys stop working at once.
func TestAPIUsers(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)

	u := f.do(t, http.MethodPost, "/users", &f.admin, map[string]any{
		"firstName": "Dana", "lastName": "Lee", "email": "dana@example.com", "roleIds": []string{"member"},
	}).ok(t, http.StatusOK)
	fieldsExactly(t, u, userFields...)
	id, _ := u["id"].(string)
	if len(id) != 16 || u["email"] != "dana@example.com" || u["firstName"] != "Dana" || u["lastName"] != "Lee" ||
		u["isActive"] != true || !slices.Equal(strList(t, u["roleIds"]), []string{"member"}) {
		t.Errorf("created %v", u)
	}
	if u["createdBy"] != "ADMIN1" || u["modifiedBy"] != "ADMIN1" || parseAPITime(t, u["createdAt"]).IsZero() || parseAPITime(t, u["modifiedAt"]).IsZero() {
		t.Errorf("created %v", u)
	}
	given := f.do(t, http.MethodPost, "/users", &f.admin, map[string]any{"id": "erin", "email": "erin@example.com", "isActive": false}).ok(t, http.StatusOK)
	if given["id"] != "erin" || given["isActive"] != false || len(strList(t, given["roleIds"])) != 0 {
		t.Errorf("created %v", given)
	}

	got := f.do(t, http.MethodGet, "/users/"+id, &f.admin, nil).ok(t, http.StatusOK)
	fieldsExactly(t, got, userFields...)
	if got["email"] != "dana@example.com" {
		t.Errorf("read %v", got)
	}
	list := f.do(t, http.MethodGet, "/users?limit=3", &f.admin, nil).ok(t, http.StatusOK)
	fieldsExactly(t, list, "data", "next")
	if len(list["data"].([]any)) != 3 || list["next"] == nil {
		t.Errorf("first page %v", list)
	}
	var ids []string
	for token := ""; ; {
		var page struct {
			Data []struct{ ID string } `json:"data"`
			Next *string               `json:"next"`
		}
		f.do(t, http.MethodGet, "/users?limit=3&token="+token, &f.admin, nil).into(t, &page)
		for _, x := range page.Data {
			ids = append(ids, x.ID)
		}
		if page.Next == nil {
			break
		}
		token = *page.Next
	}
	if want := []string{"ADMIN1", "ADMIN2", id, "alice", "bob", "carol", "erin"}; !slices.Equal(ids, sorted(want)) {
		t.Errorf("users %q", ids)
	}

	// A partial update keeps the other fields.
	up := f.do(t, http.MethodPut, "/users/"+id, &f.admin, map[string]any{"lastName": "Lee-Smith"}).ok(t, http.StatusOK)
	if up["lastName"] != "Lee-Smith" || up["firstName"] != "Dana" || up["isActive"] != true {
		t.Errorf("updated %v", up)
	}

	// Deactivating alice stops her key at once, reactivating restores it.
	if st := f.gateStatus(t, f.alice); st != http.StatusOK {
		t.Fatalf("alice's key gets %d", st)
	}
	f.do(t, http.MethodPut, "/users/alice", &f.admin, map[string]any{"isActive": false}).ok(t, http.StatusOK)
	if st := f.gateStatus(t, f.alice); st != http.StatusUnauthorized {
		t.Errorf("key of a deactivated user gets %d", st)
	}
	f.do(t, http.MethodPut, "/users/alice", &f.admin, map[string]any{"isActive": true}).ok(t, http.StatusOK)
	if st := f.gateStatus(t, f.alice); st != http.StatusOK {
		t.Errorf("key of a reactivated user gets %d", st)
	}

	// A user with keys is deleted only with deleteKeys=true.
	f.unchanged(t, func() {
		f.do(t, http.MethodDelete, "/users/alice", &f.admin, nil).fails(t, http.StatusConflict, "user:has_access_keys")
		f.do(t, http.MethodDelete, "/users/alice?deleteKeys=maybe", &f.admin, nil).fails(t, http.StatusBadRequest, "user:invalid_deleteKeys")
		f.do(t, http.MethodPost, "/users", &f.admin, map[string]any{"id": "alice", "email": "a2@example.com"}).fails(t, http.StatusConflict, "user:exists")
		f.do(t, http.MethodPost, "/users", &f.admin, map[string]any{"email": "not an email", "roleIds": []string{"ghost"}}).fails(t, http.StatusBadRequest, "user:invalid_email")
		f.do(t, http.MethodPut, "/users/alice", &f.admin, map[string]any{"roleIds": []string{"ghost"}}).fails(t, http.StatusBadRequest, "role:not_found")
		f.do(t, http.MethodPut, "/users/alice", &f.admin, map[string]any{"isActive": "no"}).fails(t, http.StatusBadRequest, "user:invalid_type")
		f.do(t, http.MethodGet, "/users/nobody", &f.admin, nil).fails(t, http.StatusNotFound, "user:not_found")
		f.do(t, http.MethodPut, "/users/nobody", &f.admin, map[string]any{"isActive": false}).fails(t, http.StatusNotFound, "user:not_found")
		f.do(t, http.MethodDelete, "/users/nobody", &f.admin, nil).fails(t, http.StatusNotFound, "user:not_found")
		f.do(t, http.MethodGet, "/users", &f.alice, nil).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodDelete, "/users/bob", &f.alice, nil).fails(t, http.StatusForbidden, "forbidden")
	})
	resp := f.do(t, http.MethodDelete, "/users/alice?deleteKeys=true", &f.admin, nil)
	if resp.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.status, resp.body)
	}
	if st := f.gateStatus(t, f.alice); st != http.StatusUnauthorized {
		t.Errorf("key of a deleted user gets %d", st)
	}
	if k, err := f.store.KeysOfOwner(context.Background(), "alice"); err != nil || len(k) != 0 {
		t.Errorf("keys left: %v %v", k, err)
	}
	f.do(t, http.MethodGet, "/users/alice", &f.admin, nil).fails(t, http.StatusNotFound, "user:not_found")
	if r := f.do(t, http.MethodDelete, "/users/erin", &f.admin, nil); r.status != http.StatusNoContent {
		t.Errorf("deleting a user without keys: %d %s", r.status, r.body)
	}

	names := f.changeEvents(t)
	for _, want := range []string{keystore.EventUserCreated, keystore.EventUserUpdated, keystore.EventUserDeleted, keystore.EventKeyDeleted} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s event in %q", want, names)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestAPIServiceAccounts: service accounts and their keys, which only
// manageAccessKeys may handle; deleting one deletes its keys.
func TestAPIServiceAccounts(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	start := time.Now().UTC().Truncate(time.Millisecond)
	sa := f.do(t, http.MethodPost, "/serviceAccounts", &f.admin, map[string]any{
		"name": "ci", "email": "ci@example.com", "roleIds": []string{"reader"},
	}).ok(t, http.StatusOK)
	fieldsExactly(t, sa, serviceAccountFields...)
	sid, _ := sa["id"].(string)
	if sa["name"] != "ci" || sa["isActive"] != true || sa["createdBy"] != "ADMIN1" || sa["modifiedBy"] != "ADMIN1" ||
		parseAPITime(t, sa["createdAt"]).Before(start) || sa["modifiedAt"] != sa["createdAt"] {
		t.Errorf("created %v", sa)
	}
	f.unchanged(t, func() {
		f.do(t, http.MethodPost, "/serviceAccounts", &f.admin, map[string]any{"email": "ci@example.com"}).fails(t, http.StatusBadRequest, "serviceAccount:name_required")
		f.do(t, http.MethodGet, "/serviceAccounts/alice", &f.admin, nil).fails(t, http.StatusNotFound, "serviceAccount:not_found")
		f.do(t, http.MethodGet, "/users/"+sid, &f.admin, nil).fails(t, http.StatusNotFound, "user:not_found")
		f.do(t, http.MethodPost, "/serviceAccounts/"+sid+"/accessKeys", &f.alice, map[string]any{"label": "x"}).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPost, "/serviceAccounts/nobody/accessKeys", &f.admin, map[string]any{"label": "x"}).fails(t, http.StatusNotFound, "serviceAccount:not_found")
		f.do(t, http.MethodGet, "/serviceAccounts/"+sid+"/accessKeys/"+f.alice.id, &f.admin, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
	})

	k := f.do(t, http.MethodPost, "/serviceAccounts/"+sid+"/accessKeys", &f.admin, map[string]any{"label": "deploy"}).ok(t, http.StatusOK)
	fieldsExactly(t, k, append(accessKeyFields, "serviceAccountId")...)
	if k["serviceAccountId"] != sid || k["ownerId"] != sid || k["createdBy"] != "ADMIN1" || !slices.Equal(strList(t, k["effectiveScopes"]), []string{"viewWidgets"}) {
		t.Errorf("service account key %v", k)
	}
	saKey := cred{k["id"].(string), k["key"].(string)}
	if st := f.gateStatus(t, saKey); st != http.StatusOK {
		t.Errorf("service account key gets %d", st)
	}
	list := f.do(t, http.MethodGet, "/serviceAccounts/"+sid+"/accessKeys", &f.admin, nil).ok(t, http.StatusOK)
	if data := list["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != saKey.id {
		t.Errorf("service account keys %v", list)
	}
	got := f.do(t, http.MethodGet, "/serviceAccounts/"+sid+"/accessKeys/"+saKey.id, &f.admin, nil).ok(t, http.StatusOK)
	if got["key"] != "" || got["serviceAccountId"] != sid {
		t.Errorf("read %v", got)
	}
	got = f.do(t, http.MethodPut, "/serviceAccounts/"+sid+"/accessKeys/"+saKey.id, &f.admin, map[string]any{"disabled": true}).ok(t, http.StatusOK)
	if got["disabled"] != true {
		t.Errorf("disabled %v", got)
	}
	if st := f.gateStatus(t, saKey); st != http.StatusUnauthorized {
		t.Errorf("disabled service account key gets %d", st)
	}
	f.do(t, http.MethodPut, "/serviceAccounts/"+sid+"/accessKeys/"+saKey.id, &f.admin, map[string]any{"disabled": false}).ok(t, http.StatusOK)
	rot := f.do(t, http.MethodPut, "/serviceAccounts/"+sid+"/accessKeys/"+saKey.id+"/rotate", &f.admin, nil).ok(t, http.StatusOK)
	saKey = cred{rot["id"].(string), rot["key"].(string)}
	// Users' key endpoints reach service account keys only with
	// manageAccessKeys.
	f.do(t, http.MethodGet, "/accessKeys/"+saKey.id, &f.admin, nil).ok(t, http.StatusOK)
	f.do(t, http.MethodGet, "/accessKeys/"+saKey.id, &f.alice, nil).fails(t, http.StatusNotFound, "accessKey:not_found")

	up := f.do(t, http.MethodPut, "/serviceAccounts/"+sid, &f.admin2, map[string]any{"name": "ci-2", "isActive": false}).ok(t, http.StatusOK)
	if up["name"] != "ci-2" || up["isActive"] != false || up["modifiedBy"] != "ADMIN2" || up["createdBy"] != "ADMIN1" {
		t.Errorf("updated %v", up)
	}
	if st := f.gateStatus(t, saKey); st != http.StatusUnauthorized {
		t.Errorf("key of a deactivated service account gets %d", st)
	}
	list = f.do(t, http.MethodGet, "/serviceAccounts", &f.admin, nil).ok(t, http.StatusOK)
	if data := list["data"].([]any); len(data) != 1 || list["next"] != nil {
		t.Errorf("service accounts %v", list)
	}

	if r := f.do(t, http.MethodDelete, "/serviceAccounts/"+sid, &f.admin, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if keys, _ := f.store.KeysOfOwner(context.Background(), sid); len(keys) != 0 {
		t.Errorf("%d keys survived their service account", len(keys))
	}
	f.do(t, http.MethodGet, "/accessKeys/"+saKey.id, &f.admin, nil).fails(t, http.StatusNotFound, "accessKey:not_found")
	names := f.changeEvents(t)
	for _, want := range []string{keystore.EventServiceAccountCreated, keystore.EventServiceAccountUpdated, keystore.EventServiceAccountDeleted} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s event in %q", want, names)
		}
	}
}

// TestAPIRoles: roles, with conflicts on ids, names and use; a change of
// capabilities reaches keys at once.
func TestAPIRoles(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	r := f.do(t, http.MethodPost, "/roles", &f.admin, map[string]any{
		"name": "Auditors", "description": "read-only", "capabilities": []string{"viewWidgets", "viewUsersAndRoles"},
	}).ok(t, http.StatusOK)
	fieldsExactly(t, r, roleFields...)
	rid, _ := r["id"].(string)
	if r["name"] != "Auditors" || r["description"] != "read-only" || !slices.Equal(strList(t, r["capabilities"]), []string{"viewUsersAndRoles", "viewWidgets"}) {
		t.Errorf("created %v", r)
	}
	got := f.do(t, http.MethodGet, "/roles/"+rid, &f.admin, nil).ok(t, http.StatusOK)
	fieldsExactly(t, got, roleFields...)
	if r["createdBy"] != "ADMIN1" || r["modifiedBy"] != "ADMIN1" || parseAPITime(t, r["createdAt"]).IsZero() || parseAPITime(t, r["modifiedAt"]).IsZero() {
		t.Errorf("created %v", r)
	}
	list := f.do(t, http.MethodGet, "/roles", &f.admin, nil).ok(t, http.StatusOK)
	fieldsExactly(t, list, "data", "next")
	if len(list["data"].([]any)) != 4 || list["next"] != nil {
		t.Errorf("roles %v", list)
	}
	// Roles page as keys do: limit, token and {data, next}.
	var roleIDs []string
	for token := ""; ; {
		var page struct {
			Data []struct{ ID string } `json:"data"`
			Next *string               `json:"next"`
		}
		f.do(t, http.MethodGet, "/roles?limit=3&token="+token, &f.admin, nil).into(t, &page)
		if len(page.Data) > 3 {
			t.Fatalf("page of %d roles with limit 3", len(page.Data))
		}
		for _, x := range page.Data {
			roleIDs = append(roleIDs, x.ID)
		}
		if page.Next == nil {
			break
		}
		token = *page.Next
	}
	if len(roleIDs) != 4 || !slices.IsSorted(roleIDs) || len(slices.Compact(slices.Clone(roleIDs))) != 4 {
		t.Errorf("paged roles %q", roleIDs)
	}
	f.do(t, http.MethodGet, "/roles?limit=0", &f.admin, nil).fails(t, http.StatusBadRequest, "role:invalid_limit")
	f.unchanged(t, func() {
		f.do(t, http.MethodPost, "/roles", &f.admin, map[string]any{"id": "member", "name": "X"}).fails(t, http.StatusConflict, "role:exists")
		f.do(t, http.MethodPost, "/roles", &f.admin, map[string]any{"name": "auditors"}).fails(t, http.StatusConflict, "role:name_exists")
		f.do(t, http.MethodPost, "/roles", &f.admin, map[string]any{"capabilities": []string{"bad scope"}}).fails(t, http.StatusBadRequest, "role:invalid_capability")
		f.do(t, http.MethodDelete, "/roles/member", &f.admin, nil).fails(t, http.StatusConflict, "role:in_use")
		f.do(t, http.MethodGet, "/roles/ghost", &f.admin, nil).fails(t, http.StatusNotFound, "role:not_found")
		f.do(t, http.MethodPut, "/roles/ghost", &f.admin, map[string]any{"name": "x"}).fails(t, http.StatusNotFound, "role:not_found")
		f.do(t, http.MethodPost, "/roles", &f.alice, map[string]any{"name": "x"}).fails(t, http.StatusForbidden, "forbidden")
	})
	// viewUsersAndRoles reads but does not write.
	f.putUser(t, "auditor", rid)
	aud := f.key(t, "auditor", nil)
	f.do(t, http.MethodGet, "/roles", &aud, nil).ok(t, http.StatusOK)
	f.do(t, http.MethodGet, "/users/alice", &aud, nil).ok(t, http.StatusOK)
	f.do(t, http.MethodPut, "/roles/"+rid, &aud, map[string]any{"name": "x"}).fails(t, http.StatusForbidden, "forbidden")

	// Taking createAccessKeys from members stops alice's key creating keys.
	f.do(t, http.MethodPost, "/accessKeys", &f.alice, map[string]any{"label": "before"}).ok(t, http.StatusOK)
	up := f.do(t, http.MethodPut, "/roles/member", &f.admin, map[string]any{"capabilities": []string{"viewWidgets"}}).ok(t, http.StatusOK)
	if !slices.Equal(strList(t, up["capabilities"]), []string{"viewWidgets"}) || up["name"] != "member" {
		t.Errorf("updated %v", up)
	}
	f.do(t, http.MethodPost, "/accessKeys", &f.alice, map[string]any{"label": "after"}).fails(t, http.StatusForbidden, "forbidden")

	f.do(t, http.MethodPut, "/users/auditor", &f.admin, map[string]any{"roleIds": []string{}}).ok(t, http.StatusOK)
	if r := f.do(t, http.MethodDelete, "/roles/"+rid, &f.admin, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	f.do(t, http.MethodGet, "/roles/"+rid, &f.admin, nil).fails(t, http.StatusNotFound, "role:not_found")
	names := f.changeEvents(t)
	for _, want := range []string{keystore.EventRoleCreated, keystore.EventRoleUpdated, keystore.EventRoleDeleted} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s event in %q", want, names)
		}
	}
}

// TestAPIPolicies: anyone may read the policies; manageOrgSettings sets
// them, as numbers or numeric strings, and every key's expiry follows.
func TestAPIPolicies(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	get := func(path string) map[string]any {
		return f.do(t, http.MethodGet, "/policies/"+path, &f.carol, nil).ok(t, http.StatusOK)
	}
	lt := get("accessKeysLifetime")
	fieldsExactly(t, lt, "accessKeysLifetimeInDays")
	if lt["accessKeysLifetimeInDays"] != float64(180) {
		t.Errorf("default lifetime %v", lt)
	}
	un := get("disableUnusedAccessKeys")
	fieldsExactly(t, un, "unusedAccessKeysDisableAfterInDays")
	if un["unusedAccessKeysDisableAfterInDays"] != float64(30) {
		t.Errorf("default unused %v", un)
	}

	f.unchanged(t, func() {
		f.do(t, http.MethodPut, "/policies/accessKeysLifetime", &f.carol, map[string]any{"accessKeysLifetimeInDays": 60}).fails(t, http.StatusForbidden, "forbidden")
		f.do(t, http.MethodPut, "/policies/accessKeysLifetime", &f.admin, map[string]any{"accessKeysLifetimeInDays": 366}).fails(t, http.StatusBadRequest, "policy:invalid_days")
		f.do(t, http.MethodPut, "/policies/accessKeysLifetime", &f.admin, map[string]any{"accessKeysLifetimeInDays": -1}).fails(t, http.StatusBadRequest, "policy:invalid_days")
		f.do(t, http.MethodPut, "/policies/accessKeysLifetime", &f.admin, map[string]any{"accessKeysLifetimeInDays": "sixty"}).fails(t, http.StatusBadRequest, "policy:invalid_type")
		f.do(t, http.MethodPut, "/policies/accessKeysLifetime", &f.admin, map[string]any{"accessKeysLifetimeInDays": 1.5}).fails(t, http.StatusBadRequest, "policy:invalid_type")
		f.do(t, http.MethodPut, "/policies/accessKeysLifetime", &f.admin, map[string]any{"other": 1}).fails(t, http.StatusBadRequest, "policy:accessKeysLifetimeInDays_required")
		f.do(t, http.MethodPut, "/policies/disableUnusedAccessKeys", &f.admin, map[string]any{"unusedAccessKeysDisableAfterInDays": true}).fails(t, http.StatusBadRequest, "policy:invalid_type")
		f.do(t, http.MethodPost, "/policies/accessKeysLifetime", &f.admin, map[string]any{"accessKeysLifetimeInDays": 1}).fails(t, http.StatusMethodNotAllowed, "method.unsupported")
	})

	before := time.Now().UTC().Truncate(time.Millisecond)
	got := f.do(t, http.MethodPut, "/policies/accessKeysLifetime", &f.admin, map[string]any{"accessKeysLifetimeInDays": "60"}).ok(t, http.StatusOK)
	if got["accessKeysLifetimeInDays"] != float64(60) {
		t.Errorf("set lifetime %v", got)
	}
	k := f.do(t, http.MethodGet, "/accessKeys/"+f.bob.id, &f.admin, nil).ok(t, http.StatusOK)
	if exp := parseAPITime(t, k["expiresAt"]); exp.Before(before.Add(60*24*time.Hour)) || exp.After(time.Now().Add(60*24*time.Hour)) {
		t.Errorf("expiresAt %v, want 60 days from the policy change", exp)
	}
	f.do(t, http.MethodPut, "/policies/accessKeysLifetime", &f.admin, map[string]any{"accessKeysLifetimeInDays": 0}).ok(t, http.StatusOK)
	if k := f.do(t, http.MethodGet, "/accessKeys/"+f.bob.id, &f.admin, nil).ok(t, http.StatusOK); k["expiresAt"] != nil {
		t.Errorf("expiresAt %v with lifetime 0", k["expiresAt"])
	}
	got = f.do(t, http.MethodPut, "/policies/disableUnusedAccessKeys", &f.admin, map[string]any{"unusedAccessKeysDisableAfterInDays": 45}).ok(t, http.StatusOK)
	if got["unusedAccessKeysDisableAfterInDays"] != float64(45) || get("disableUnusedAccessKeys")["unusedAccessKeysDisableAfterInDays"] != float64(45) {
		t.Errorf("set unused %v", got)
	}
	evs, err := f.store.Events(context.Background(), keystore.EventFilter{Name: keystore.EventPolicyUpdated, Limit: 100})
	if err != nil || len(evs) != 3 || evs[0].Operator.ID != "ADMIN1" || evs[0].Operator.Interface != keystore.InterfaceAPI {
		t.Errorf("policy events %+v, %v", evs, err)
	}
}

// scopesByID reads GET /accessKeys/scopes at base, checking Sumo Logic's
// fields, and returns the entries by id and the ids in order.
func scopesByID(t *testing.T, base string, c *cred) (map[string]map[string]any, []string) {
	t.Helper()
	body := apiDo(t, http.MethodGet, base+"/accessKeys/scopes", c, nil).ok(t, http.StatusOK)
	fieldsExactly(t, body, "data")
	byID := map[string]map[string]any{}
	var ids []string
	for _, x := range body["data"].([]any) {
		d := x.(map[string]any)
		fieldsExactly(t, d, "id", "label", "type", "dependsOn", "group")
		fieldsExactly(t, d["group"].(map[string]any), "id", "label")
		id := d["id"].(string)
		if byID[id] != nil {
			t.Errorf("%s listed twice", id)
		}
		byID[id] = d
		ids = append(ids, id)
	}
	return byID, ids
}

// TestAPIScopes: the default catalogue is the scopes the gateway's own
// route rules map and the key-management capabilities of the API, with
// Sumo Logic's fields; scope_catalog sumo lists Sumo Logic's catalogue
// plus the mapped scopes.
func TestAPIScopes(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	checkMapped := func(t *testing.T, byID map[string]map[string]any) {
		t.Helper()
		mw := byID["manageWidgets"]
		if mw == nil || mw["type"] != "Manage" || mw["group"].(map[string]any)["id"] != "gateway" || !slices.Equal(strList(t, mw["dependsOn"]), []string{"viewWidgets"}) {
			t.Errorf("manageWidgets, mapped by the gateway: %v", mw)
		}
		if vw := byID["viewWidgets"]; vw == nil || !strings.Contains(strings.ToLower(vw["label"].(string)), "widgets") {
			t.Errorf("viewWidgets %v", vw)
		}
	}

	t.Run("gateway", func(t *testing.T) {
		byID, ids := scopesByID(t, f.base, &f.carol)
		want := []string{"createAccessKeys", "manageAccessKeys", "viewPersonalAccessKeys", "managePersonalAccessKeys",
			"viewUsersAndRoles", "manageUsersAndRoles", "manageOrgSettings", "manageWidgets", "viewWidgets"}
		if !slices.Equal(ids, want) {
			t.Errorf("scopes %q, want %q", ids, want)
		}
		if mk := byID["manageAccessKeys"]; mk == nil || mk["group"].(map[string]any)["id"] != "security" {
			t.Errorf("manageAccessKeys %v, want the security group", mk)
		}
		if mu := byID["manageUsersAndRoles"]; mu == nil || mu["type"] != "Manage" || !slices.Equal(strList(t, mu["dependsOn"]), []string{"viewUsersAndRoles"}) {
			t.Errorf("manageUsersAndRoles %v", mu)
		}
		checkMapped(t, byID)
	})

	t.Run("sumo", func(t *testing.T) {
		byID, _ := scopesByID(t, f.stripped, &f.carol)
		mp := byID["managePartitions"]
		if mp == nil || mp["type"] != "Manage" || !slices.Equal(strList(t, mp["dependsOn"]), []string{"viewPartitions"}) ||
			mp["group"].(map[string]any)["label"] != "Data Management" {
			t.Errorf("managePartitions %v", mp)
		}
		for _, id := range []string{"runLogSearch", "manageAccessKeys", "viewUsersAndRoles", "adminMonitorsV2", "createAccessKeys"} {
			if byID[id] == nil {
				t.Errorf("%s missing", id)
			}
		}
		checkMapped(t, byID)
	})
}

// TestAPIScopeCatalogRefuses: a key may be given only scopes of the
// catalogue; a Sumo Logic scope that no route maps is refused under the
// default catalogue and accepted under scope_catalog sumo.
func TestAPIScopeCatalogRefuses(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	create := map[string]any{"label": "partitions", "scopes": []string{"viewPartitions"}}
	msgs := apiDo(t, http.MethodPost, f.base+"/accessKeys", &f.admin, create).fails(t, http.StatusBadRequest, "accessKey:invalid_scope")
	if len(msgs) != 1 || !strings.Contains(msgs[0], "viewPartitions") {
		t.Errorf("messages %q", msgs)
	}
	msgs = apiDo(t, http.MethodPut, f.base+"/accessKeys/"+f.admin.id, &f.admin, map[string]any{"disabled": false, "scopes": []string{"viewWidgets", "viewPartitions"}}).fails(t, http.StatusBadRequest, "accessKey:invalid_scope")
	if len(msgs) != 1 || !strings.Contains(msgs[0], "viewPartitions") {
		t.Errorf("messages %q", msgs)
	}
	// Mapped scopes and management capabilities are in the default
	// catalogue.
	apiDo(t, http.MethodPost, f.base+"/accessKeys", &f.admin, map[string]any{"label": "ok", "scopes": []string{"manageWidgets", "manageOrgSettings"}}).ok(t, http.StatusOK)

	// The admin's role does not hold viewPartitions; a key of it would
	// give nothing, which the API allows for a listed scope.
	got := apiDo(t, http.MethodPost, f.stripped+"/accessKeys", &f.admin, create).ok(t, http.StatusOK)
	if s := strList(t, got["scopes"]); !slices.Equal(s, []string{"viewPartitions"}) {
		t.Errorf("scopes %q", s)
	}
}
