package keystore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// wantProblem fails unless err is a *ValidationError with a problem of
// the given code.
func wantProblem(t *testing.T, err error, code string) {
	t.Helper()
	var v *ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("want *ValidationError with %s, got %T %v", code, err, err)
	}
	for _, p := range v.Problems {
		if p.Code == code {
			return
		}
	}
	t.Fatalf("problems %+v lack %s", v.Problems, code)
}

// wantConflict fails unless err is a *ConflictError with the given code.
func wantConflict(t *testing.T, err error, code string) {
	t.Helper()
	var c *ConflictError
	if !errors.As(err, &c) || c.Code != code {
		t.Fatalf("want *ConflictError %s, got %T %v", code, err, err)
	}
}

// unchanged runs fn and fails if it changed anything in Redis.
func (f *fixture) unchanged(t *testing.T, what string, fn func()) {
	t.Helper()
	before := dumpDB(t, f.rdb)
	fn()
	after := dumpDB(t, f.rdb)
	if !maps.Equal(before, after) {
		for k, v := range after {
			if before[k] != v {
				t.Errorf("%s changed %s", what, k)
			}
		}
		for k := range before {
			if _, ok := after[k]; !ok {
				t.Errorf("%s removed %s", what, k)
			}
		}
	}
}

func TestAdminCreateOwner(t *testing.T) {
	f := newFixture(t)
	u, err := f.store.CreateOwner(f.ctx, Owner{Kind: OwnerUser, Email: "b@example.com", FirstName: "Bea", RoleIDs: []string{testRole, testRole}, IsActive: true}, testOp)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.ID) != 16 || !ValidID(u.ID) {
		t.Errorf("generated id %q", u.ID)
	}
	if !slices.Equal(u.RoleIDs, []string{testRole}) || u.CreatedBy != testOp.ID || u.CreatedAt.IsZero() || !u.ModifiedAt.Equal(u.CreatedAt) {
		t.Errorf("created %+v", u)
	}
	got, err := f.store.OwnerOfKind(f.ctx, u.ID, OwnerUser)
	if err != nil || got.FirstName != "Bea" {
		t.Fatalf("OwnerOfKind = %+v, %v", got, err)
	}
	if _, err := f.store.OwnerOfKind(f.ctx, u.ID, OwnerServiceAccount); !errors.Is(err, ErrNotFound) {
		t.Errorf("user read as a service account: %v", err)
	}
	if ev := f.log.all(); ev[len(ev)-1].EventName != EventUserCreated || ev[len(ev)-1].Operator != testOp {
		t.Errorf("last event %+v", ev[len(ev)-1])
	}

	f.unchanged(t, "refused creations", func() {
		_, err := f.store.CreateOwner(f.ctx, Owner{ID: testUser, Kind: OwnerServiceAccount, Name: "x", Email: "x@example.com"}, testOp)
		wantConflict(t, err, "serviceAccount:exists")
		_, err = f.store.CreateOwner(f.ctx, Owner{Kind: OwnerServiceAccount, Email: "x@example.com"}, testOp)
		wantProblem(t, err, "serviceAccount:name_required")
		_, err = f.store.CreateOwner(f.ctx, Owner{Kind: OwnerUser, Email: "nope", RoleIDs: []string{"ghost"}}, testOp)
		wantProblem(t, err, "owner:invalid_email")
		wantProblem(t, err, "role:not_found")
		_, err = f.store.CreateOwner(f.ctx, Owner{Kind: OwnerUser, Email: "a@example.com", FirstName: "bad\x00name"}, testOp)
		wantProblem(t, err, "owner:invalid_firstName")
		_, err = f.store.CreateOwner(f.ctx, Owner{ID: "bad id", Kind: OwnerUser, Email: "a@example.com"}, testOp)
		wantProblem(t, err, "owner:invalid_id")
	})
}

func TestAdminUpdateOwnerConcurrent(t *testing.T) {
	f := newFixture(t)
	const rounds = 25
	var wg sync.WaitGroup
	for _, field := range []string{"first", "last"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				_, err := f.store.UpdateOwner(f.ctx, testUser, OwnerUser, func(o *Owner) {
					if field == "first" {
						o.FirstName = fmt.Sprint("F", i)
					} else {
						o.LastName = fmt.Sprint("L", i)
					}
				}, testOp)
				if err != nil {
					t.Errorf("UpdateOwner: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	o, err := f.store.Owner(f.ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	if o.FirstName != fmt.Sprint("F", rounds-1) || o.LastName != fmt.Sprint("L", rounds-1) {
		t.Errorf("final %q %q: an update was lost", o.FirstName, o.LastName)
	}
	evs, err := f.store.Events(f.ctx, EventFilter{Name: EventUserUpdated})
	if err != nil || len(evs) != 2*rounds {
		t.Errorf("%d UserUpdated events (%v), want %d", len(evs), err, 2*rounds)
	}
}

func TestAdminUpdateOwnerDeactivates(t *testing.T) {
	f := newFixture(t)
	k, secret := f.createKey(t, KeySpec{})
	sub := f.rdb.Subscribe(f.ctx, f.store.InvalidationChannel())
	defer sub.Close()
	if _, err := sub.Receive(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.UpdateOwner(f.ctx, testUser, OwnerUser, func(o *Owner) { o.IsActive = false }, testOp); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload != "owner:"+testUser {
		t.Errorf("invalidation %v, %v; want owner:%s", msg, err, testUser)
	}
	if _, err := f.verify(k.ID, secret); reasonOf(t, err) != ReasonOwnerInactive {
		t.Errorf("key of a deactivated owner: %v", err)
	}

	// No change: no write, no event.
	n := len(f.log.all())
	f.unchanged(t, "a no-op update", func() {
		if _, err := f.store.UpdateOwner(f.ctx, testUser, OwnerUser, func(o *Owner) { o.IsActive = false }, testOp); err != nil {
			t.Fatal(err)
		}
	})
	if len(f.log.all()) != n {
		t.Errorf("no-op update wrote events %q", f.log.names()[n:])
	}
	f.unchanged(t, "refused updates", func() {
		_, err := f.store.UpdateOwner(f.ctx, testUser, OwnerUser, func(o *Owner) { o.RoleIDs = []string{"ghost"} }, testOp)
		wantProblem(t, err, "role:not_found")
		_, err = f.store.UpdateOwner(f.ctx, testUser, OwnerServiceAccount, func(o *Owner) {}, testOp)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("update of the wrong kind: %v", err)
		}
	})
}

func TestAdminDeleteOwner(t *testing.T) {
	f := newFixture(t)
	k1, s1 := f.createKey(t, KeySpec{})
	k2, _ := f.createKey(t, KeySpec{})
	f.unchanged(t, "refused delete", func() {
		_, err := f.store.DeleteOwner(f.ctx, testUser, OwnerUser, false, testOp)
		wantConflict(t, err, "user:has_access_keys")
		if _, err := f.store.DeleteOwner(f.ctx, testUser, OwnerServiceAccount, true, testOp); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete of the wrong kind: %v", err)
		}
	})
	n, err := f.store.DeleteOwner(f.ctx, testUser, OwnerUser, true, testOp)
	if err != nil || n != 2 {
		t.Fatalf("DeleteOwner = %d, %v", n, err)
	}
	if _, err := f.verify(k1.ID, s1); err == nil {
		t.Error("key of a deleted owner still verifies")
	}
	for _, id := range []string{k1.ID, k2.ID} {
		if f.rawRecord(t, id) != "" {
			t.Errorf("key %s survived its owner", id)
		}
	}
	if n, _ := f.rdb.Exists(f.ctx, f.store.ownerKey(testUser), f.store.ownerKeysKey(testUser)).Result(); n != 0 {
		t.Errorf("%d owner keys left", n)
	}
	if ok, _ := f.rdb.ZScore(f.ctx, f.store.ownersIndex(OwnerUser), testUser).Result(); ok != 0 {
		t.Error("owner still indexed")
	}
	names := f.log.names()
	if got := names[len(names)-3:]; !slices.Equal(got, []string{EventKeyDeleted, EventKeyDeleted, EventUserDeleted}) {
		t.Errorf("events %q", got)
	}

	f.putUser(t, "U0002", true)
	if _, err := f.store.DeleteOwner(f.ctx, "U0002", OwnerUser, false, testOp); err != nil {
		t.Errorf("deleting a user without keys: %v", err)
	}
}

func TestAdminListOwners(t *testing.T) {
	f := newFixture(t)
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("S%03d", i)
		if _, err := f.store.CreateOwner(f.ctx, Owner{ID: id, Kind: OwnerServiceAccount, Name: id, Email: "sa@example.com"}, testOp); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		page, err := f.store.ListOwners(f.ctx, OwnerServiceAccount, 10, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Owners {
			got = append(got, o.ID)
		}
		if page.Next == "" {
			break
		}
		token = page.Next
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %q", got)
	}
	users, err := f.store.ListOwners(f.ctx, OwnerUser, 100, "")
	if err != nil || len(users.Owners) != 1 || users.Owners[0].ID != testUser || users.Next != "" {
		t.Errorf("users %+v, %v", users, err)
	}
	_, err = f.store.ListOwners(f.ctx, OwnerUser, 10, "bad token")
	wantProblem(t, err, "user:invalid_token")
}

func TestAdminRoles(t *testing.T) {
	f := newFixture(t)
	r, err := f.store.CreateRole(f.ctx, Role{Name: "Viewers", Capabilities: []string{"viewCollectors", "viewCollectors"}}, testOp)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidID(r.ID) || !slices.Equal(r.Capabilities, []string{"viewCollectors"}) {
		t.Errorf("created %+v", r)
	}
	f.unchanged(t, "refused role changes", func() {
		_, err := f.store.CreateRole(f.ctx, Role{ID: r.ID, Name: "Other"}, testOp)
		wantConflict(t, err, "role:exists")
		_, err = f.store.CreateRole(f.ctx, Role{Name: " viewers "}, testOp)
		wantConflict(t, err, "role:name_exists")
		_, err = f.store.CreateRole(f.ctx, Role{Capabilities: []string{"bad cap"}}, testOp)
		wantProblem(t, err, "role:name_required")
		wantProblem(t, err, "role:invalid_capability")
		_, err = f.store.UpdateRole(f.ctx, r.ID, func(x *Role) { x.Name = testRole }, testOp)
		wantConflict(t, err, "role:name_exists")
		err = f.store.DeleteRole(f.ctx, testRole, testOp)
		wantConflict(t, err, "role:in_use")
		if _, err := f.store.Role(f.ctx, "ghost"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Role(ghost): %v", err)
		}
	})

	// A capability change reaches the holders' principals.
	if _, err := f.store.UpdateOwner(f.ctx, testUser, OwnerUser, func(o *Owner) { o.RoleIDs = append(o.RoleIDs, r.ID) }, testOp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.UpdateRole(f.ctx, r.ID, func(x *Role) { x.Capabilities = []string{"manageAccessKeys"} }, testOp); err != nil {
		t.Fatal(err)
	}
	ps, err := f.store.Principals(f.ctx, []string{testUser, "ghost", testUser})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || !ps[testUser].Can("manageAccessKeys") || !ps[testUser].Active || ps["ghost"].Active {
		t.Errorf("principals %+v %+v", ps[testUser], ps["ghost"])
	}

	if _, err := f.store.UpdateOwner(f.ctx, testUser, OwnerUser, func(o *Owner) { o.RoleIDs = []string{testRole} }, testOp); err != nil {
		t.Fatal(err)
	}
	if err := f.store.DeleteRole(f.ctx, r.ID, testOp); err != nil {
		t.Fatalf("deleting an unused role: %v", err)
	}
	if _, err := f.store.Role(f.ctx, r.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted role still read: %v", err)
	}
	names := f.log.names()
	for _, want := range []string{EventRoleCreated, EventRoleUpdated, EventRoleDeleted} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s event in %q", want, names)
		}
	}
}

func TestAdminKeyScopes(t *testing.T) {
	f := newFixture(t)
	k, _ := f.createKey(t, KeySpec{Scopes: []string{"viewCollectors"}})
	if _, _, err := f.store.RotateKey(f.ctx, k.ID, testOp); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.KeyScopes(f.ctx, k.ID)
	if err != nil || !slices.Equal(got, []string{"viewCollectors"}) {
		t.Errorf("KeyScopes of a rotated-out key = %q, %v", got, err)
	}
	d, _ := f.createKey(t, KeySpec{})
	if got, err := f.store.KeyScopes(f.ctx, d.ID); err != nil || got == nil || len(got) != 0 {
		t.Errorf("KeyScopes of a Default key = %#v, %v", got, err)
	}
	if _, err := f.store.KeyScopes(f.ctx, NewAccessID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("KeyScopes of an unknown key: %v", err)
	}
}

func TestScopeCatalogue(t *testing.T) {
	cat := ScopeCatalogue()
	ids := map[string]bool{}
	for _, d := range cat {
		if ids[d.ID] {
			t.Errorf("%s listed twice", d.ID)
		}
		ids[d.ID] = true
		if !ValidID(d.ID) || d.Label == "" || d.Type == "" || d.Group.ID == "" || d.Group.Label == "" || d.DependsOn == nil {
			t.Errorf("incomplete %+v", d)
		}
	}
	for _, d := range cat {
		for _, dep := range d.DependsOn {
			if !ids[dep] {
				t.Errorf("%s depends on unknown %s", d.ID, dep)
			}
		}
	}
	for _, id := range []string{"adminMonitorsV2", "manageS3DataForwarding", "runLogSearch", "runMetricsQuery", "manageSlos",
		"manageAccessKeys", "viewPersonalAccessKeys", "manageUsersAndRoles", "createAccessKeys", "manageOrgSettings"} {
		if !ids[id] {
			t.Errorf("%s missing", id)
		}
	}
	mp, ok := LookupScope("managePartitions")
	if !ok || mp.Type != ScopeTypeManage || !slices.Equal(mp.DependsOn, []string{"viewPartitions"}) || mp.Group.Label != "Data Management" {
		t.Errorf("managePartitions = %+v", mp)
	}
	cat[0].DependsOn = append(cat[0].DependsOn, "x")
	cat[0].ID = "changed"
	if ScopeCatalogue()[0].ID == "changed" {
		t.Error("ScopeCatalogue shares its storage")
	}
}

func TestDescribeScope(t *testing.T) {
	tests := []struct {
		id, label, typ string
		deps           []string
	}{
		{"manageWidgets", "Manage widgets", ScopeTypeManage, []string{"viewWidgets"}},
		{"viewWidgets", "View widgets", ScopeTypeView, []string{}},
		{"runSQLQuery", "Run sql query", ScopeTypeRun, []string{}},
		{"billing", "Billing", ScopeTypeCustom, []string{}},
		{"admin.tools-2", "Admin tools 2", ScopeTypeAdmin, []string{}},
		{"manage", "Manage", ScopeTypeManage, []string{}},
	}
	for _, tt := range tests {
		d := DescribeScope(tt.id)
		if d.ID != tt.id || d.Label != tt.label || d.Type != tt.typ || !slices.Equal(d.DependsOn, tt.deps) || d.Group != GatewayScopeGroup {
			t.Errorf("DescribeScope(%q) = %+v", tt.id, d)
		}
	}
}

// TestAdminDeleteRoleRacesAssignment deletes roles while another writer
// gives them to users. Either may win, but a deleted role must never
// stay on a user: a role created again under its ID would grant its new
// capabilities to users who were never given it.
func TestAdminDeleteRoleRacesAssignment(t *testing.T) {
	f := newFixture(t)
	const rounds, users = 100, 4
	for u := range users {
		if _, err := f.store.CreateOwner(f.ctx, Owner{ID: fmt.Sprintf("racer%d", u), Kind: OwnerUser, Email: testEmail, IsActive: true}, testOp); err != nil {
			t.Fatal(err)
		}
	}
	stale := 0
	for i := range rounds {
		role := fmt.Sprintf("racing%d", i)
		if _, err := f.store.CreateRole(f.ctx, Role{ID: role, Name: role, Capabilities: []string{"viewCollectors"}}, testOp); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(users + 1)
		go func() {
			defer wg.Done()
			if err := f.store.DeleteRole(f.ctx, role, testOp); err != nil && !errors.Is(err, ErrConflict) {
				t.Error(err)
			}
		}()
		for u := range users {
			go func() {
				defer wg.Done()
				_, err := f.store.UpdateOwner(f.ctx, fmt.Sprintf("racer%d", u), OwnerUser, func(o *Owner) {
					o.RoleIDs = append(o.RoleIDs, role)
				}, testOp)
				var v *ValidationError
				if err != nil && !errors.As(err, &v) && !errors.Is(err, ErrConflict) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if _, err := f.store.Role(f.ctx, role); !errors.Is(err, ErrNotFound) {
			continue
		}
		for u := range users {
			o, err := f.store.Owner(f.ctx, fmt.Sprintf("racer%d", u))
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(o.RoleIDs, role) {
				stale++
				t.Errorf("round %d: role %s is deleted but user %s still holds it", i, role, o.ID)
			}
		}
	}
	t.Logf("%d deleted roles left on users in %d rounds", stale, rounds)
}

// TestAdminCreateRoleGrantsNothingStale creates a role under the ID of a
// deleted one that a user still refers to (left by an earlier version or
// an interrupted change): the new role must not reach that user.
func TestAdminCreateRoleGrantsNothingStale(t *testing.T) {
	f := newFixture(t)
	if _, err := f.store.CreateRole(f.ctx, Role{ID: "auditors", Name: "Auditors", Capabilities: []string{"viewCollectors"}}, testOp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateOwner(f.ctx, Owner{ID: "olduser", Kind: OwnerUser, Email: testEmail, RoleIDs: []string{"auditors"}, IsActive: true}, testOp); err != nil {
		t.Fatal(err)
	}
	// The role removed behind the user's back, as a delete racing an
	// assignment could.
	if err := f.rdb.HDel(f.ctx, f.store.rolesKey(), "auditors").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateRole(f.ctx, Role{ID: "auditors", Name: "Auditors again", Capabilities: []string{"manageAccessKeys"}}, testOp); err != nil {
		t.Fatal(err)
	}
	p, err := f.store.Principal(f.ctx, "olduser")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(p.Capabilities, "manageAccessKeys") {
		t.Errorf("the role created again granted its capabilities to a user of the deleted one: %v", p.Capabilities)
	}
	if o, err := f.store.Owner(f.ctx, "olduser"); err != nil || slices.Contains(o.RoleIDs, "auditors") {
		t.Errorf("user of the deleted role still refers to it: %+v, %v", o, err)
	}
}
