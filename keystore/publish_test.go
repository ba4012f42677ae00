package keystore

import (
	"context"
	"testing"
	"time"
)

// TestChangeStoredOnlyWithItsAnnouncement: a change whose invalidation
// message Redis refuses is not stored, and the caller gets an error;
// otherwise every instance would keep serving what it cached for up to
// its cache TTL while the caller believes the change made. Once Redis
// takes the message again, each change is stored and announced.
func TestChangeStoredOnlyWithItsAnnouncement(t *testing.T) {
	f := newFixture(t)
	k, _ := f.createKey(t, KeySpec{})
	f.setPolicies(t, 1, 0)
	f.clock.Advance(2 * day) // k is due for the sweep
	tests := []struct {
		name   string
		change func() error
		msg    string
	}{
		{"role", func() error {
			_, err := f.store.PutRole(f.ctx, Role{ID: testRole, Capabilities: []string{"runLogSearch"}}, "admin")
			return err
		}, invalidateAll},
		{"owner", func() error {
			_, err := f.store.PutOwner(f.ctx, Owner{ID: testUser, Kind: OwnerUser, Email: testEmail, RoleIDs: []string{testRole}}, "admin")
			return err
		}, invalidateOwnerPfx + testUser},
		{"policy", func() error {
			_, err := f.store.SetUnusedDays(f.ctx, 7, testOp)
			return err
		}, invalidateAll},
		{"sweep", func() error {
			res, err := f.store.Sweep(f.ctx)
			if err == nil && res.Expired != 1 {
				t.Errorf("sweep deactivated %+v, want the expired key", res)
			}
			return err
		}, invalidateKeyPrefix + k.ID},
	}

	acl := func(rule string) {
		t.Helper()
		if err := f.rdb.Do(f.ctx, "ACL", "SETUSER", "default", rule).Err(); err != nil {
			t.Fatalf("ACL SETUSER default %s: %v", rule, err)
		}
	}
	acl("-publish")
	for _, tt := range tests {
		f.unchanged(t, tt.name+" change without its announcement", func() {
			if err := tt.change(); err == nil {
				t.Errorf("%s: no error, although the change could not be announced", tt.name)
			}
		})
	}

	acl("+publish")
	sub := f.rdb.Subscribe(f.ctx, f.store.InvalidationChannel())
	defer sub.Close()
	if _, err := sub.Receive(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if err := tt.change(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		msg, err := sub.ReceiveMessage(ctx)
		cancel()
		if err != nil || msg.Payload != tt.msg {
			t.Errorf("%s: announced %v, %v; want %s", tt.name, msg, err, tt.msg)
		}
	}
}
