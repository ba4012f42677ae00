package keystore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCreateKeyStoresOnlyAHash(t *testing.T) {
	f := newFixture(t)
	k, secret := f.createKey(t, KeySpec{Label: "ci", Scopes: []string{"viewCollectors", "runLogSearch", "viewCollectors"}, CORSHeaders: []string{"https://B.example.com:443", "https://b.example.com/"}})
	if !ValidAccessID(k.ID) || !ValidAccessKey(secret) {
		t.Fatalf("CreateKey gave %q, %q", k.ID, secret)
	}
	got, err := f.store.Key(f.ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SecretHash != HashSecret(secret) || got.Version != 1 || got.Label != "ci" || got.OwnerKind != OwnerUser {
		t.Errorf("stored key = %+v", got)
	}
	if !slices.Equal(got.Scopes, []string{"viewCollectors", "runLogSearch"}) || !slices.Equal(got.CORSHeaders, []string{"https://b.example.com"}) {
		t.Errorf("scopes %q, corsHeaders %q not normalised", got.Scopes, got.CORSHeaders)
	}
	if !got.CreatedAt.Equal(f.clock.Now()) || !got.IssuedAt.Equal(f.clock.Now()) || !got.ActivatedAt.Equal(f.clock.Now()) {
		t.Errorf("times not from the clock: %+v", got)
	}
	if raw := f.rawRecord(t, k.ID); strings.Contains(raw, secret) {
		t.Errorf("record holds the secret: %s", raw)
	}
}

func TestCreateKeyOwnerChecks(t *testing.T) {
	f := newFixture(t)
	f.putUser(t, "U0002", false)
	tests := []struct {
		owner string
		want  error
	}{
		{"nobody", ErrNotFound},
		{"U0002", ErrConflict},
	}
	for _, tt := range tests {
		if _, _, err := f.store.CreateKey(f.ctx, KeySpec{Label: "x", OwnerID: tt.owner}, testOp); !errors.Is(err, tt.want) {
			t.Errorf("CreateKey for %s: %v, want %v", tt.owner, err, tt.want)
		}
	}
}

func TestRotateKey(t *testing.T) {
	f := newFixture(t)
	k, oldSecret := f.createKey(t, KeySpec{Label: "deploy", Scopes: []string{"viewCollectors"}, CORSHeaders: []string{"https://a.example.com"}})
	f.clock.Advance(10 * day)
	rotatedAt := f.clock.Now()
	nk, newSecret, err := f.store.RotateKey(f.ctx, k.ID, testOp)
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	if nk.ID == k.ID || newSecret == oldSecret || !ValidAccessKey(newSecret) {
		t.Fatalf("rotation kept the credential: %q %q", nk.ID, newSecret)
	}
	if nk.Label != k.Label || nk.OwnerID != k.OwnerID || !slices.Equal(nk.Scopes, k.Scopes) || !slices.Equal(nk.CORSHeaders, k.CORSHeaders) {
		t.Errorf("rotation changed settings: old %+v new %+v", k, nk)
	}
	if !nk.IssuedAt.Equal(rotatedAt) || nk.Pending {
		t.Errorf("new key IssuedAt %v pending %v", nk.IssuedAt, nk.Pending)
	}
	if _, err := f.store.Key(f.ctx, k.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Key(old) = %v, want not found", err)
	}
	if _, _, err := f.store.RotateKey(f.ctx, k.ID, testOp); !errors.Is(err, ErrConflict) {
		t.Errorf("rotating the rotated-out key: %v, want a conflict", err)
	}

	steps := []struct {
		advance time.Duration
		oldOK   bool
	}{
		{0, true},
		{4*time.Minute + 59*time.Second + 999*time.Millisecond, true},
		{time.Millisecond, false},
		{time.Hour, false},
	}
	for _, st := range steps {
		f.clock.Advance(st.advance)
		_, err := f.verify(k.ID, oldSecret)
		if st.oldOK && err != nil {
			t.Errorf("%v after rotation: old key rejected: %v", f.clock.Now().Sub(rotatedAt), err)
		}
		if !st.oldOK && (err == nil || reasonOf(t, err) != ReasonRotated) {
			t.Errorf("%v after rotation: old key gave %v, want %q", f.clock.Now().Sub(rotatedAt), err, ReasonRotated)
		}
		id, err := f.verify(nk.ID, newSecret)
		if err != nil {
			t.Fatalf("new key rejected: %v", err)
		}
		if id.Scopes[0] != "viewCollectors" || id.Allowlist[0] != "https://a.example.com" {
			t.Errorf("new identity %+v", id)
		}
	}
	// The new key's expiry restarted at the rotation.
	pol, _ := f.store.Policies(f.ctx)
	if got := pol.ExpiresAt(nk); !got.Equal(rotatedAt.Add(180 * day)) {
		t.Errorf("new key expires %v, want %v", got, rotatedAt.Add(180*day))
	}
	page, err := f.store.ListKeys(f.ctx, 100, "")
	if err != nil || len(page.Keys) != 1 || page.Keys[0].ID != nk.ID {
		t.Errorf("ListKeys after rotation = %+v, %v", page, err)
	}
	if owned, err := f.store.KeysOfOwner(f.ctx, testUser); err != nil || len(owned) != 1 || owned[0].ID != nk.ID {
		t.Errorf("KeysOfOwner after rotation = %v, %v", owned, err)
	}
}

// TestRotationGraceSurvivesClockSkew: the old key must keep working for the
// whole grace even when the gateway's clock is behind the Redis server's
// (here by ten minutes).
func TestRotationGraceSurvivesClockSkew(t *testing.T) {
	f := newFixture(t)
	f.clock.Set(time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond))
	k, secret := f.createKey(t, KeySpec{})
	if _, _, err := f.store.RotateKey(f.ctx, k.ID, testOp); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.verify(k.ID, secret); err != nil {
		t.Fatalf("old key rejected one minute into its grace: %v", err)
	}
}

func TestUpdateKey(t *testing.T) {
	f := newFixture(t)
	k, secret := f.createKey(t, KeySpec{Scopes: []string{"viewCollectors"}})
	steps := []struct {
		name    string
		u       KeyUpdate
		events  []string
		version int64
		check   func(t *testing.T, k *Key)
	}{
		{"no-op", KeyUpdate{Disabled: ptr(false), Scopes: &[]string{"viewCollectors"}}, nil, 1, nil},
		{"deactivate", KeyUpdate{Disabled: ptr(true)}, []string{EventKeyDeactivated}, 2, func(t *testing.T, k *Key) {
			if !k.Disabled || k.DisabledReason != DisabledManual {
				t.Errorf("disabled %v reason %q", k.Disabled, k.DisabledReason)
			}
		}},
		{"deactivate again is a no-op", KeyUpdate{Disabled: ptr(true)}, nil, 2, nil},
		{"activate", KeyUpdate{Disabled: ptr(false)}, []string{EventKeyActivated}, 3, func(t *testing.T, k *Key) {
			if k.Disabled || k.DisabledReason != "" || !k.ActivatedAt.Equal(k.ModifiedAt) {
				t.Errorf("after activation: %+v", k)
			}
		}},
		{"scopes", KeyUpdate{Scopes: &[]string{"runLogSearch", "viewCollectors"}}, []string{EventKeyUpdated}, 4, func(t *testing.T, k *Key) {
			if !slices.Equal(k.Scopes, []string{"runLogSearch", "viewCollectors"}) {
				t.Errorf("scopes %q", k.Scopes)
			}
		}},
		{"cors", KeyUpdate{CORSHeaders: &[]string{"https://X.example.com:443"}}, []string{EventKeyUpdated}, 5, func(t *testing.T, k *Key) {
			if !slices.Equal(k.CORSHeaders, []string{"https://x.example.com"}) {
				t.Errorf("corsHeaders %q", k.CORSHeaders)
			}
		}},
		{"clear cors and scopes", KeyUpdate{CORSHeaders: &[]string{}, Scopes: &[]string{}}, []string{EventKeyUpdated}, 6, func(t *testing.T, k *Key) {
			if len(k.CORSHeaders) != 0 || len(k.Scopes) != 0 {
				t.Errorf("after clearing: %+v", k)
			}
		}},
	}
	for _, st := range steps {
		f.clock.Advance(time.Hour)
		n := len(f.log.all())
		got, err := f.store.UpdateKey(f.ctx, k.ID, st.u, Operator{ID: "bob", Interface: InterfaceCLI})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got.Version != st.version {
			t.Errorf("%s: version %d, want %d", st.name, got.Version, st.version)
		}
		if names := f.log.names()[n:]; !slices.Equal(names, st.events) {
			t.Errorf("%s: events %q, want %q", st.name, names, st.events)
		}
		stored, err := f.store.Key(f.ctx, k.ID)
		if err != nil || stored.Version != st.version {
			t.Fatalf("%s: stored %+v, %v", st.name, stored, err)
		}
		if len(st.events) > 0 && (stored.ModifiedBy != "bob" || !stored.ModifiedAt.Equal(f.clock.Now())) {
			t.Errorf("%s: modified %v by %q", st.name, stored.ModifiedAt, stored.ModifiedBy)
		}
		if st.check != nil {
			st.check(t, stored)
		}
	}
	if _, err := f.verify(k.ID, secret); err != nil {
		t.Errorf("Verify after updates: %v", err)
	}
	if _, err := f.store.UpdateKey(f.ctx, NewAccessID(), KeyUpdate{Disabled: ptr(true)}, testOp); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateKey(unknown) = %v, want not found", err)
	}
}

func TestReactivationRestartsUnusedClock(t *testing.T) {
	f := newFixture(t)
	k, secret := f.createKey(t, KeySpec{})
	f.clock.Advance(29 * day)
	if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(true)}, testOp); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * day)
	if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(false)}, testOp); err != nil {
		t.Fatal(err)
	}
	activated := f.clock.Now()
	id, err := f.verify(k.ID, secret)
	if err != nil {
		t.Fatalf("Verify after reactivation: %v", err)
	}
	if want := activated.Add(30 * day); !id.Deadline.Equal(want) {
		t.Errorf("Deadline = %v, want %v", id.Deadline, want)
	}
}

func TestEnablingExpiredKeyIsConflict(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, f *fixture, id string)
	}{
		{"deactivated, then expired", func(t *testing.T, f *fixture, id string) {
			if _, err := f.store.UpdateKey(f.ctx, id, KeyUpdate{Disabled: ptr(true)}, testOp); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(181 * day)
		}},
		{"marked expired", func(t *testing.T, f *fixture, id string) {
			f.clock.Advance(181 * day)
			var k Key
			if _, err := f.store.getJSON(f.ctx, f.store.keyKey(id), &k); err != nil {
				t.Fatal(err)
			}
			k.Disabled, k.DisabledReason = true, DisabledExpired
			if err := f.rdb.Set(f.ctx, f.store.keyKey(id), mustJSON(t, &k), 0).Err(); err != nil {
				t.Fatal(err)
			}
		}},
		// Not yet marked by a sweep: the API shows it as disabled and
		// expired, so asking to enable it must not report success.
		{"expired by time only", func(t *testing.T, f *fixture, id string) {
			f.clock.Advance(181 * day)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			k, _ := f.createKey(t, KeySpec{})
			tt.prepare(t, f, k.ID)
			before := f.rawRecord(t, k.ID)
			n := len(f.log.all())
			got, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(false)}, testOp)
			var ce *ConflictError
			if !errors.As(err, &ce) || ce.Code != "accessKey:expired" {
				t.Fatalf("UpdateKey(enable) = %+v, %v; want conflict accessKey:expired", got, err)
			}
			if after := f.rawRecord(t, k.ID); after != before {
				t.Errorf("record changed:\n%s\n%s", before, after)
			}
			if len(f.log.all()) != n {
				t.Errorf("events written: %q", f.log.names()[n:])
			}
		})
	}
}

// TestConcurrentUpdatesLoseNothing: two writers change different fields of
// one key at the same time; no write is lost.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	f := newFixture(t)
	k, _ := f.createKey(t, KeySpec{})
	const rounds = 50
	scopeSets := [][]string{{"viewCollectors"}, {"runLogSearch"}}
	corsSets := [][]string{{"https://a.example.com"}, {"https://b.example.com"}}
	var effective atomic.Int64
	versions := sync.Map{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	run := func(mk func(i int) KeyUpdate) {
		defer wg.Done()
		<-start
		for i := range rounds {
			got, err := f.store.UpdateKey(f.ctx, k.ID, mk(i), testOp)
			if err != nil {
				t.Errorf("UpdateKey: %v", err)
				return
			}
			effective.Add(1)
			if _, dup := versions.LoadOrStore(got.Version, true); dup {
				t.Errorf("version %d returned twice", got.Version)
			}
		}
	}
	wg.Add(2)
	go run(func(i int) KeyUpdate { return KeyUpdate{Scopes: &scopeSets[i%2]} })
	go run(func(i int) KeyUpdate { return KeyUpdate{CORSHeaders: &corsSets[i%2]} })
	close(start)
	wg.Wait()

	final, err := f.store.Key(f.ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(final.Scopes, scopeSets[(rounds-1)%2]) || !slices.Equal(final.CORSHeaders, corsSets[(rounds-1)%2]) {
		t.Errorf("final scopes %q cors %q: a write was lost", final.Scopes, final.CORSHeaders)
	}
	if want := 1 + effective.Load(); final.Version != want || effective.Load() != 2*rounds {
		t.Errorf("version %d after %d effective writes, want %d", final.Version, effective.Load(), want)
	}
	updated, err := f.store.Events(f.ctx, EventFilter{Name: EventKeyUpdated})
	if err != nil || len(updated) != 2*rounds {
		t.Errorf("%d AccessKeyUpdated events, %v; want %d", len(updated), err, 2*rounds)
	}
}

func TestDeleteKey(t *testing.T) {
	f := newFixture(t)
	k, secret := f.createKey(t, KeySpec{})
	other, otherSecret := f.createKey(t, KeySpec{})
	if err := f.rdb.HSet(f.ctx, f.store.lastUsedKey(shardOf(k.ID)), k.ID, f.clock.Now().UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.store.DeleteKey(f.ctx, k.ID, testOp); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if _, err := f.verify(k.ID, secret); reasonOf(t, err) != ReasonUnknown {
		t.Errorf("Verify after delete: %v, want unknown", err)
	}
	if _, err := f.store.Key(f.ctx, k.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Key after delete: %v", err)
	}
	if err := f.store.DeleteKey(f.ctx, k.ID, testOp); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteKey: %v, want not found", err)
	}
	if f.rdb.ZScore(f.ctx, f.store.keysIndex(), k.ID).Err() == nil ||
		f.rdb.SIsMember(f.ctx, f.store.ownerKeysKey(testUser), k.ID).Val() ||
		f.rdb.HExists(f.ctx, f.store.lastUsedKey(shardOf(k.ID)), k.ID).Val() {
		t.Error("the deleted key is still indexed")
	}
	if _, err := f.verify(other.ID, otherSecret); err != nil {
		t.Errorf("the other key stopped working: %v", err)
	}
}

// TestFailedValidationChangesNothing: rejected input leaves every Redis
// value as it was and writes no event.
func TestFailedValidationChangesNothing(t *testing.T) {
	f := newFixture(t)
	k, _ := f.createKey(t, KeySpec{Label: "keep", Scopes: []string{"viewCollectors"}, CORSHeaders: []string{"https://a.example.com"}})
	var tooMany []string
	for i := range 21 {
		tooMany = append(tooMany, fmt.Sprintf("https://h%d.example.com", i))
	}
	label129 := strings.Repeat("é", 129)
	tests := []struct {
		name string
		op   func() error
	}{
		{"create: label too long", func() error {
			_, _, err := f.store.CreateKey(f.ctx, KeySpec{Label: label129, OwnerID: testUser}, testOp)
			return err
		}},
		{"create: label empty", func() error {
			_, _, err := f.store.CreateKey(f.ctx, KeySpec{Label: "  ", OwnerID: testUser}, testOp)
			return err
		}},
		{"create: bad origin", func() error {
			_, _, err := f.store.CreateKey(f.ctx, KeySpec{Label: "x", OwnerID: testUser, CORSHeaders: []string{"https://a.example.com/path"}}, testOp)
			return err
		}},
		{"create: 21 origins", func() error {
			_, _, err := f.store.CreateKey(f.ctx, KeySpec{Label: "x", OwnerID: testUser, CORSHeaders: tooMany}, testOp)
			return err
		}},
		{"create: bad scope", func() error {
			_, _, err := f.store.CreateKey(f.ctx, KeySpec{Label: "x", OwnerID: testUser, Scopes: []string{"has space"}}, testOp)
			return err
		}},
		{"update: bad origin", func() error {
			_, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(true), CORSHeaders: &[]string{"http://a.example.com"}}, testOp)
			return err
		}},
		{"update: 21 origins", func() error {
			_, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(true), CORSHeaders: &tooMany}, testOp)
			return err
		}},
		{"update: bad scope", func() error {
			_, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Scopes: &[]string{""}}, testOp)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dumpDB(t, f.rdb)
			size := f.rdb.DBSize(f.ctx).Val()
			record := f.rawRecord(t, k.ID)
			n := len(f.log.all())
			err := tt.op()
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("want *ValidationError, got %T %v", err, err)
			}
			if got := f.rdb.DBSize(f.ctx).Val(); got != size {
				t.Errorf("DBSIZE %d -> %d", size, got)
			}
			if got := f.rawRecord(t, k.ID); got != record {
				t.Errorf("key record changed:\n%s\n%s", record, got)
			}
			if after := dumpDB(t, f.rdb); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("Redis changed")
			}
			if len(f.log.all()) != n {
				t.Errorf("events written: %q", f.log.names()[n:])
			}
		})
	}
}

// TestListKeysPagingUnderChurn lists 2,500 keys 100 at a time while other
// keys are deleted and added: every key that exists throughout is listed
// exactly once, and no key twice.
func TestListKeysPagingUnderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 2,500 keys")
	}
	f := newFixture(t)
	const total, volatile = 2500, 500
	ids := make([]string, total)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				k, _, err := f.store.CreateKey(f.ctx, KeySpec{Label: fmt.Sprintf("k%d", i), OwnerID: testUser}, testOp)
				if err != nil {
					t.Errorf("CreateKey: %v", err)
					continue
				}
				ids[i] = k.ID
			}
		}()
	}
	for i := range total {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	stable := map[string]bool{}
	for _, id := range ids[volatile:] {
		stable[id] = true
	}

	stop := make(chan struct{})
	started := make(chan struct{})
	var added sync.Map
	var mutations atomic.Int64
	var churn sync.WaitGroup
	churn.Add(1)
	go func() {
		defer churn.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i < volatile {
				if err := f.store.DeleteKey(f.ctx, ids[i], testOp); err != nil {
					t.Errorf("DeleteKey: %v", err)
					return
				}
			}
			k, _, err := f.store.CreateKey(f.ctx, KeySpec{Label: "new", OwnerID: testUser}, testOp)
			if err != nil {
				t.Errorf("CreateKey: %v", err)
				return
			}
			added.Store(k.ID, true)
			if mutations.Add(1) == 1 {
				close(started)
			}
		}
	}()
	<-started

	seen := map[string]int{}
	token, pages, last := "", 0, ""
	for {
		page, err := f.store.ListKeys(f.ctx, 100, token)
		if err != nil {
			t.Fatalf("ListKeys(token %q): %v", token, err)
		}
		pages++
		if len(page.Keys) > 100 {
			t.Fatalf("page of %d keys", len(page.Keys))
		}
		if page.Next != "" && len(page.Keys) != 100 {
			t.Errorf("page %d: %d keys with a next token", pages, len(page.Keys))
		}
		for _, k := range page.Keys {
			if k.ID <= last {
				t.Errorf("page %d: %s listed after %s", pages, k.ID, last)
			}
			last = k.ID
			seen[k.ID]++
		}
		if page.Next == "" {
			break
		}
		token = page.Next
	}
	close(stop)
	churn.Wait()
	if mutations.Load() < 2 {
		t.Fatalf("only %d mutations happened while listing", mutations.Load())
	}

	for id := range stable {
		if seen[id] != 1 {
			t.Errorf("stable key %s listed %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", id, n)
		}
		_, isNew := added.Load(id)
		if !stable[id] && !isNew && !slices.Contains(ids[:volatile], id) {
			t.Errorf("listed %s, which never existed", id)
		}
	}
	t.Logf("%d pages, %d keys listed, %d mutations during the listing", pages, len(seen), mutations.Load())
}

func TestListKeysPages(t *testing.T) {
	f := newFixture(t)
	var want []string
	for range 7 {
		k, _ := f.createKey(t, KeySpec{})
		want = append(want, k.ID)
	}
	slices.Sort(want)
	tests := []struct {
		limit int
		pages []int
	}{
		{1, []int{1, 1, 1, 1, 1, 1, 1}},
		{3, []int{3, 3, 1}},
		{7, []int{7}},
		{100, []int{7}},
	}
	for _, tt := range tests {
		var got []string
		var sizes []int
		token := ""
		for {
			page, err := f.store.ListKeys(f.ctx, tt.limit, token)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page.Keys))
			for _, k := range page.Keys {
				got = append(got, k.ID)
			}
			if page.Next == "" {
				break
			}
			token = page.Next
		}
		if !slices.Equal(got, want) || !slices.Equal(sizes, tt.pages) {
			t.Errorf("limit %d: pages %v of %q, want %v of %q", tt.limit, sizes, got, tt.pages, want)
		}
	}
	var ve *ValidationError
	if _, err := f.store.ListKeys(f.ctx, 10, "bogus"); !errors.As(err, &ve) {
		t.Errorf("ListKeys(bad token) = %v, want a validation error", err)
	}
}
