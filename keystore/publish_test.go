package keystore

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/redistest"
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

	// Keys, owners and roles the other changes work on, made after the
	// clock moved, so that the sweep leaves them alone.
	const (
		owner   = "U0002"
		doomed  = "U0003"
		created = "U0004"
		spare   = "spare"
	)
	f.putUser(t, owner, true)
	f.putUser(t, doomed, true)
	if _, err := f.store.PutRole(f.ctx, Role{ID: spare, Capabilities: []string{"viewCollectors"}}, "admin"); err != nil {
		t.Fatal(err)
	}
	newKey := func(owner string) *Key {
		t.Helper()
		k, _ := f.createKey(t, KeySpec{OwnerID: owner})
		return k
	}
	updated, disabled, deleted, rotated := newKey(owner), newKey(owner), newKey(owner), newKey(owner)
	doomedKey := newKey(doomed)
	// A successor: deleting it ends its predecessor's grace too.
	successor, _, err := f.store.RotateKey(f.ctx, newKey(owner).ID, testOp)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		change func() error
		msgs   []string
	}{
		{"role", func() error {
			_, err := f.store.PutRole(f.ctx, Role{ID: testRole, Capabilities: []string{"runLogSearch"}}, "admin")
			return err
		}, []string{invalidateAll}},
		{"owner", func() error {
			_, err := f.store.PutOwner(f.ctx, Owner{ID: testUser, Kind: OwnerUser, Email: testEmail, RoleIDs: []string{testRole}}, "admin")
			return err
		}, []string{invalidateOwnerPfx + testUser}},
		{"policy", func() error {
			_, err := f.store.SetUnusedDays(f.ctx, 7, testOp)
			return err
		}, []string{invalidateAll}},
		{"sweep", func() error {
			res, err := f.store.Sweep(f.ctx)
			if err == nil && res.Expired != 1 {
				t.Errorf("sweep deactivated %+v, want the expired key", res)
			}
			return err
		}, []string{invalidateKeyPrefix + k.ID}},
		{"key update", func() error {
			_, err := f.store.UpdateKey(f.ctx, updated.ID, KeyUpdate{Scopes: ptr([]string{"viewCollectors"})}, testOp)
			return err
		}, []string{invalidateKeyPrefix + updated.ID}},
		{"key deactivation", func() error {
			_, err := f.store.UpdateKey(f.ctx, disabled.ID, KeyUpdate{Disabled: ptr(true)}, testOp)
			return err
		}, []string{invalidateKeyPrefix + disabled.ID}},
		{"key deletion", func() error {
			return f.store.DeleteKey(f.ctx, deleted.ID, testOp)
		}, []string{invalidateKeyPrefix + deleted.ID}},
		{"successor deletion", func() error {
			return f.store.DeleteKey(f.ctx, successor.ID, testOp)
		}, []string{invalidateKeyPrefix + successor.ID, invalidateKeyPrefix + successor.RotatedFrom}},
		{"rotation", func() error {
			_, _, err := f.store.RotateKey(f.ctx, rotated.ID, testOp)
			return err
		}, []string{invalidateKeyPrefix + rotated.ID}},
		{"owner creation", func() error {
			_, err := f.store.CreateOwner(f.ctx, Owner{ID: created, Kind: OwnerUser, Email: testEmail, IsActive: true}, testOp)
			return err
		}, []string{invalidateOwnerPfx + created}},
		{"owner update", func() error {
			_, err := f.store.UpdateOwner(f.ctx, owner, OwnerUser, func(o *Owner) { o.IsActive = false }, testOp)
			return err
		}, []string{invalidateOwnerPfx + owner}},
		{"owner deletion", func() error {
			n, err := f.store.DeleteOwner(f.ctx, doomed, OwnerUser, true, testOp)
			if err == nil && n != 1 {
				t.Errorf("owner deletion deleted %d keys, want 1", n)
			}
			return err
		}, []string{invalidateOwnerPfx + doomed, invalidateKeyPrefix + doomedKey.ID}},
		{"role update", func() error {
			_, err := f.store.UpdateRole(f.ctx, spare, func(r *Role) { r.Capabilities = []string{"runLogSearch"} }, testOp)
			return err
		}, []string{invalidateAll}},
		{"role deletion", func() error {
			return f.store.DeleteRole(f.ctx, spare, testOp)
		}, []string{invalidateAll}},
	}

	acl := func(rule string) {
		t.Helper()
		if err := f.rdb.Do(f.ctx, "ACL", "SETUSER", "default", rule).Err(); err != nil {
			t.Fatalf("ACL SETUSER default %s: %v", rule, err)
		}
	}
	acl("-publish")
	for _, tt := range tests {
		f.unchanged(t, tt.name+" without its announcement", func() {
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
		for _, want := range tt.msgs {
			ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
			msg, err := sub.ReceiveMessage(ctx)
			cancel()
			if err != nil {
				t.Fatalf("%s: waiting for %s: %v", tt.name, want, err)
			}
			if msg.Payload != want {
				t.Errorf("%s: announced %s, want %s", tt.name, msg.Payload, want)
			}
		}
	}
}

// TestAnnouncementsReachEveryClusterNode: in a Redis Cluster, a change
// announces itself in the transaction on the node of its record (PUBLISH
// names no key), and the Cluster passes the message on: subscribers on
// every node get the announcement of every change, whichever node stored
// it. The changes cover both kinds of transaction: WATCH on a record, and
// MULTI blocks sent through the cluster client.
func TestAnnouncementsReachEveryClusterNode(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	cc := cl.Client(t)
	ctx := context.Background()
	st := New(cc, Options{Prefix: "ag"})
	if _, err := st.PutRole(ctx, Role{ID: testRole, Capabilities: testCaps}, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutOwner(ctx, Owner{ID: testUser, Kind: OwnerUser, Email: testEmail, RoleIDs: []string{testRole}, IsActive: true}, "admin"); err != nil {
		t.Fatal(err)
	}
	nodeOf := func(key string) string {
		t.Helper()
		c, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return c.Options().Addr
	}
	// A key whose record is on each node, and one more to rotate.
	byNode := map[string]*Key{}
	for tries := 0; len(byNode) < len(cl.Nodes()); tries++ {
		if tries == 1000 {
			t.Fatalf("no key record on some node after %d keys", tries)
		}
		k, _, err := st.CreateKey(ctx, KeySpec{Label: "k", OwnerID: testUser}, testOp)
		if err != nil {
			t.Fatal(err)
		}
		byNode[nodeOf(st.keyKey(k.ID))] = k
	}
	toRotate, _, err := st.CreateKey(ctx, KeySpec{Label: "rotated", OwnerID: testUser}, testOp)
	if err != nil {
		t.Fatal(err)
	}

	subs := map[string]<-chan *redis.Message{}
	for _, n := range cl.Nodes() {
		sub := n.Client(t).Subscribe(ctx, st.InvalidationChannel())
		t.Cleanup(func() { _ = sub.Close() })
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		subs[n.Addr] = sub.Channel()
	}

	want := map[string]int{}
	change := func(what, msg string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		want[msg]++
	}
	for _, k := range byNode {
		_, err := st.UpdateKey(ctx, k.ID, KeyUpdate{Disabled: ptr(true)}, testOp)
		change("key deactivation", invalidateKeyPrefix+k.ID, err)
		change("key deletion", invalidateKeyPrefix+k.ID, st.DeleteKey(ctx, k.ID, testOp))
	}
	_, _, err = st.RotateKey(ctx, toRotate.ID, testOp)
	change("rotation", invalidateKeyPrefix+toRotate.ID, err)
	_, err = st.UpdateOwner(ctx, testUser, OwnerUser, func(o *Owner) { o.FirstName = "Ada" }, testOp)
	change("owner update", invalidateOwnerPfx+testUser, err)
	_, err = st.UpdateRole(ctx, testRole, func(r *Role) { r.Capabilities = []string{"runLogSearch"} }, testOp)
	change("role update", invalidateAll, err)
	_, err = st.SetLifetimeDays(ctx, 30, testOp)
	change("policy", invalidateAll, err)
	_, err = st.PutOwner(ctx, Owner{ID: "U0002", Kind: OwnerUser, Email: testEmail, IsActive: true}, "admin")
	change("owner", invalidateOwnerPfx+"U0002", err)

	total := 0
	for _, n := range want {
		total += n
	}
	timeout := time.After(30 * time.Second)
	for addr, ch := range subs {
		got := map[string]int{}
		for i := 0; i < total; i++ {
			select {
			case m := <-ch:
				got[m.Payload]++
			case <-timeout:
				t.Fatalf("subscriber on %s got %v, want %v", addr, got, want)
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("subscriber on %s got %v, want %v", addr, got, want)
		}
	}
	for _, n := range cl.Nodes() {
		if c := n.CommandCount(t, "publish"); c == 0 {
			t.Errorf("no change was announced on node %s", n.Addr)
		}
	}
}
