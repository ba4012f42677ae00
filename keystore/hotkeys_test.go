package keystore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestPrincipalReadsOnlyItsRoles: resolving an owner reads the roles it
// has, never the whole roles hash, which grows with the organisation and
// which every instance reads.
func TestPrincipalReadsOnlyItsRoles(t *testing.T) {
	f := newFixture(t)
	for i := range 50 {
		if _, err := f.store.PutRole(f.ctx, Role{ID: fmt.Sprint("other", i), Capabilities: []string{"manageUsersAndRoles"}}, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.PutRole(f.ctx, Role{ID: "searcher", Capabilities: []string{"runLogSearch", "viewDashboards"}}, "admin"); err != nil {
		t.Fatal(err)
	}
	put := func(id string, roles ...string) {
		t.Helper()
		if _, err := f.store.PutOwner(f.ctx, Owner{ID: id, Kind: OwnerUser, Email: testEmail, RoleIDs: roles, IsActive: true}, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	put("two", testRole, "other7")
	put("none")
	put("gone", "searcher")
	// A role deleted under its owners grants nothing.
	if _, err := f.rdb.HDel(f.ctx, f.store.rolesKey(), "searcher").Result(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		owner  string
		active bool
		caps   []string
	}{
		{"two", true, []string{"manageCollectors", "manageUsersAndRoles", "runLogSearch", "viewCollectors"}},
		{"none", true, nil},
		{"gone", true, nil},
		{"missing", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.owner, func(t *testing.T) {
			before := f.srv.CommandCount(t, "hgetall")
			p, err := f.store.Principal(f.ctx, tt.owner)
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != tt.owner || p.Active != tt.active || !slices.Equal(p.Capabilities, tt.caps) {
				t.Errorf("Principal(%s) = %+v, want active %v with %q", tt.owner, p, tt.active, tt.caps)
			}
			if n := f.srv.CommandCount(t, "hgetall") - before; n != 0 {
				t.Errorf("Principal(%s) read a whole hash %d times", tt.owner, n)
			}
		})
	}
}

// TestVerifyWithGivenPolicies: with VerifyOptions.Policies, Verify takes
// the policies from there, never from Redis, and its deadline ends no
// later than the copy of the policies it was given.
func TestVerifyWithGivenPolicies(t *testing.T) {
	f := newFixture(t)
	k, secret := f.createKey(t, KeySpec{})
	f.clock.Advance(2 * day)
	until := f.clock.Now().Add(time.Minute)
	given := func(pol Policies) VerifyOptions {
		return VerifyOptions{Policies: func(context.Context) (Policies, time.Time, error) { return pol, until, nil }}
	}
	before := f.srv.CommandCount(t, "hgetall")
	id, err := f.store.Verify(f.ctx, k.ID, secret, given(Policies{LifetimeDays: 180, UnusedDays: 30}))
	if err != nil {
		t.Fatal(err)
	}
	if !id.Deadline.Equal(until) {
		t.Errorf("Deadline = %v, want the end of the policies' copy %v", id.Deadline, until)
	}
	_, err = f.store.Verify(f.ctx, k.ID, secret, given(Policies{LifetimeDays: 1}))
	if reasonOf(t, err) != ReasonExpired {
		t.Errorf("under a one-day lifetime given by the option: %v, want expired", err)
	}
	if n := f.srv.CommandCount(t, "hgetall") - before; n != 0 {
		t.Errorf("Verify read the policies from Redis %d times", n)
	}
}
