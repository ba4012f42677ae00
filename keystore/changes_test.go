package keystore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/redistest"
)

// TestPlanReplay: the decision whether the changes after a position can
// be replayed from the stream, and from where, for every way the stream
// can have moved on.
func TestPlanReplay(t *testing.T) {
	id := func(ms, seq uint64) ChangeID { return ChangeID{MS: ms, Seq: seq} }
	pos := ChangePosition{ID: id(100_000, 3), Added: 50, Read: 100_600}
	old := pos
	old.Read = 200_000
	// info is a healthy stream that received missed more entries after
	// pos and never trimmed any.
	info := func(missed int64) ChangesInfo {
		last := pos.ID
		if missed > 0 {
			last = id(100_500, 0)
		}
		return ChangesInfo{Exists: true, Last: last, Added: pos.Added + missed, Length: pos.Added + missed, First: id(1_000, 0)}
	}
	with := func(i ChangesInfo, f func(*ChangesInfo)) ChangesInfo { f(&i); return i }
	const margin = 30 * time.Second
	tests := []struct {
		name   string
		pos    ChangePosition
		info   ChangesInfo
		margin time.Duration
		from   string // "" and gap false: nothing to read
		gap    string // a word of the reason, when the stream cannot tell
	}{
		{"nothing missed", pos, info(0), 0, "", ""},
		{"changes missed", pos, info(7), 0, "(100000-3", ""},
		{"no position", ChangePosition{}, info(7), 0, "", "no position"},
		{"position of a Redis without entries-added", ChangePosition{ID: pos.ID}, info(7), 0, "", "no position"},
		{"stream gone", pos, ChangesInfo{}, 0, "", "gone"},
		{"fewer entries added", pos, with(info(0), func(i *ChangesInfo) { i.Added = 40; i.Length = 40 }), 0, "", "lost history"},
		{"as many lost as added since", pos, with(info(0), func(i *ChangesInfo) { i.Last = id(105_000, 0) }), 0, "", "lost history"},
		{"cluster: position older than the margin, as many lost as added", old, with(info(0), func(i *ChangesInfo) { i.Last = id(105_000, 0) }), margin, "", "lost history"},
		{"last ID before the position", pos, with(info(0), func(i *ChangesInfo) { i.Last = id(99_000, 0) }), 0, "", "lost history"},
		{"more missed than replayed", pos, info(101), 0, "", "more than"},
		{"missed ones trimmed", pos, with(info(20), func(i *ChangesInfo) { i.Length = 10; i.First = id(100_400, 0) }), 0, "", "trimmed"},
		{"older ones trimmed", pos, with(info(20), func(i *ChangesInfo) { i.Length = 25; i.First = id(99_000, 0) }), 0, "(100000-3", ""},
		{"missed ones deleted", pos, with(info(5), func(i *ChangesInfo) { i.MaxDeleted = id(100_200, 0) }), 0, "", "deleted"},
		{"older ones deleted", pos, with(info(5), func(i *ChangesInfo) { i.MaxDeleted = id(90_000, 0) }), 0, "(100000-3", ""},
		{"cluster: margin before the position", pos, info(7), margin, "70600-0", ""},
		{"cluster: nothing missed still reads the margin", pos, info(0), margin, "70600-0", ""},
		{"cluster: position older than the margin", old, info(7), margin, "(100000-3", ""},
		{"cluster: position older than the margin, nothing missed", old, info(0), margin, "", ""},
		{"cluster: margin before the first millisecond", ChangePosition{ID: id(10_000, 0), Added: 3, Read: 10_000}, ChangesInfo{Exists: true, Last: id(10_000, 5), Added: 5, Length: 5, First: id(9_000, 0)}, margin, "0-0", ""},
		{"cluster: margin trimmed", pos, with(info(7), func(i *ChangesInfo) { i.Length = 40; i.First = id(80_000, 0) }), margin, "", "trimmed"},
		{"cluster: trimmed before the margin", pos, with(info(7), func(i *ChangesInfo) { i.Length = 40; i.First = id(60_000, 0) }), margin, "70600-0", ""},
		{"cluster: fresh stream, nothing trimmed", pos, with(info(7), func(i *ChangesInfo) { i.First = id(90_000, 0) }), margin, "70600-0", ""},
		{"cluster: margin deleted", pos, with(info(7), func(i *ChangesInfo) { i.MaxDeleted = id(75_000, 0) }), margin, "", "trimmed"},
		{"cluster: missed ones deleted", pos, with(info(7), func(i *ChangesInfo) { i.MaxDeleted = id(100_200, 0) }), margin, "", "deleted"},
		{"cluster: history lost", pos, with(info(0), func(i *ChangesInfo) { i.Added = 1; i.Length = 1 }), margin, "", "lost history"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, err := planReplay(tt.pos, tt.info, tt.margin, 100)
			if tt.gap != "" {
				if !errors.Is(err, ErrChangesGap) || !strings.Contains(err.Error(), tt.gap) {
					t.Fatalf("planReplay = %q, %v; want a gap naming %q", from, err, tt.gap)
				}
				return
			}
			if err != nil || from != tt.from {
				t.Fatalf("planReplay = %q, %v; want %q", from, err, tt.from)
			}
		})
	}
}

// TestChangeIDOrder: IDs parse, print and order as Redis orders them.
func TestChangeIDOrder(t *testing.T) {
	ids := []string{"0-0", "0-1", "9-0", "10-0", "10-2", "1795801101304-39"}
	for i, s := range ids {
		id, err := ParseChangeID(s)
		if err != nil || id.String() != s {
			t.Fatalf("ParseChangeID(%q) = %v, %v", s, id, err)
		}
		if i > 0 {
			prev, _ := ParseChangeID(ids[i-1])
			if prev.Compare(id) != -1 || id.Compare(prev) != 1 || id.Compare(id) != 0 {
				t.Errorf("%s and %s compare wrongly", ids[i-1], s)
			}
		}
	}
	for _, bad := range []string{"", "12", "a-1", "1-b", "-1-2"} {
		if _, err := ParseChangeID(bad); err == nil {
			t.Errorf("ParseChangeID(%q) succeeded", bad)
		}
	}
}

// changeMakers sets up a role and a user, and returns functions that
// make a change of each kind that announces, each returning the messages
// it announced.
func changeMakers(t *testing.T, st *Store) []func() []string {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := st.PutRole(ctx, Role{ID: testRole, Capabilities: testCaps}, "admin")
	must(err)
	_, err = st.PutOwner(ctx, Owner{ID: testUser, Kind: OwnerUser, Email: testEmail, RoleIDs: []string{testRole}, IsActive: true}, "admin")
	must(err)
	n := 0
	return []func() []string{
		func() []string {
			k, _, err := st.CreateKey(ctx, KeySpec{Label: "k", OwnerID: testUser}, testOp)
			must(err)
			_, err = st.UpdateKey(ctx, k.ID, KeyUpdate{Disabled: ptr(true)}, testOp)
			must(err)
			return []string{invalidateKeyPrefix + k.ID}
		},
		func() []string {
			_, err := st.UpdateOwner(ctx, testUser, OwnerUser, func(o *Owner) { n++; o.FirstName = fmt.Sprint("Ada ", n) }, testOp)
			must(err)
			return []string{invalidateOwnerPfx + testUser}
		},
		func() []string {
			_, err := st.UpdateRole(ctx, testRole, func(r *Role) { n++; r.Description = fmt.Sprint("changed ", n) }, testOp)
			must(err)
			return []string{invalidateAll}
		},
	}
}

// replayAll replays from pos and returns the messages and the error.
func replayAll(t *testing.T, st *Store, pos ChangePosition) ([]string, ChangePosition, error) {
	t.Helper()
	var got []string
	next, n, err := st.ReplayChanges(context.Background(), pos, func(msg string) { got = append(got, msg) })
	if n != len(got) {
		t.Errorf("ReplayChanges reported %d messages, applied %d", n, len(got))
	}
	return got, next, err
}

// samePlace reports whether two positions name the same entry of the
// same history, whenever they were read.
func samePlace(a, b ChangePosition) bool { return a.ID == b.ID && a.Added == b.Added }

// changesPosition reads the stream's current position.
func changesPosition(t *testing.T, st *Store) ChangePosition {
	t.Helper()
	info, err := st.ChangesInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.Position()
}

// TestReplayChanges: on one Redis server, the changes made after a
// position replay exactly, in the order they were published, with the
// messages published; whenever the stream cannot tell them all (trimmed,
// lost in a restart, restarted and written anew), the replay says so.
func TestReplayChanges(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	st := New(rdb, Options{Prefix: "ag", ChangesMaxLen: 5})
	makers := changeMakers(t, st)

	sub := rdb.Subscribe(ctx, st.InvalidationChannel())
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	pos := changesPosition(t, st)
	if !pos.Known() {
		t.Fatalf("no position after the set-up's changes: %+v", pos)
	}
	var want []string
	for _, m := range makers {
		want = append(want, m()...)
	}
	got, next, err := replayAll(t, st, pos)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("replay = %q, %v; want %q", got, err, want)
	}
	for i, w := range want {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		msg, err := sub.ReceiveMessage(ctx)
		cancel()
		if err != nil || msg.Payload != w {
			t.Fatalf("published message %d: %v, %v; want %s (the replay's)", i, msg, err, w)
		}
	}
	if !samePlace(next, changesPosition(t, st)) {
		t.Errorf("replay returned position %+v, want the stream's %+v", next, changesPosition(t, st))
	}
	if got, again, err := replayAll(t, st, next); err != nil || len(got) != 0 || !samePlace(again, next) {
		t.Errorf("replay from the newest position = %q, %+v, %v; want nothing", got, again, err)
	}

	// Trimmed: approximate trimming drops whole stream nodes of 100
	// entries, so make well over that.
	pos = next
	for range 150 {
		makers[1]()
	}
	if _, _, err := replayAll(t, st, pos); !errors.Is(err, ErrChangesGap) {
		t.Errorf("replay across a trimmed gap: %v, want a gap", err)
	}

	// Lost with everything else.
	pos = changesPosition(t, st)
	srv.Restart(t)
	if _, next, err := replayAll(t, st, pos); !errors.Is(err, ErrChangesGap) || next.Known() {
		t.Errorf("replay after a restart that lost the data: %+v, %v; want a gap and no position", next, err)
	}
	// Lost, then written anew, beyond the old count.
	makers = changeMakers(t, st)
	for range int(pos.Added) + 3 {
		makers[1]()
	}
	if _, _, err := replayAll(t, st, pos); !errors.Is(err, ErrChangesGap) {
		t.Errorf("replay over a stream written anew after a restart: %v, want a gap", err)
	}
}

// TestReplayChangesCluster: on a Redis Cluster, where the stream lives on
// another node than most changes, every change made after a position
// replays, with those of the margin before it.
func TestReplayChangesCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	st := New(cl.Client(t), Options{Prefix: "ag"})
	makers := changeMakers(t, st)
	makers[0]()
	before := changesPosition(t, st)
	var want []string
	for range 3 {
		for _, m := range makers {
			want = append(want, m()...)
		}
	}
	got, next, err := replayAll(t, st, before)
	if err != nil {
		t.Fatal(err)
	}
	// The margin brings the set-up's changes too, before the others.
	if len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
		t.Errorf("replay = %q; want it to end with %q", got, want)
	}
	if !samePlace(next, changesPosition(t, st)) {
		t.Errorf("replay returned position %+v, want the stream's %+v", next, changesPosition(t, st))
	}
}

// TestChangeStoredOnlyWithItsStreamEntry: a change whose entry in the
// changes stream Redis refuses is not stored, on one server (the XADD is
// in the change's MULTI) and on a Cluster (the XADD runs before it), so
// that a replay never misses a stored change.
func TestChangeStoredOnlyWithItsStreamEntry(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartCluster(t, 3)
	single := redistest.Start(t)
	setups := []struct {
		name  string
		rdb   redis.UniversalClient
		nodes []*redistest.Server
	}{
		{"single", single.Client(t), []*redistest.Server{single}},
		{"cluster", cl.Client(t), cl.Nodes()},
	}
	for _, su := range setups {
		t.Run(su.name, func(t *testing.T) {
			st := New(su.rdb, Options{Prefix: "ag"})
			_ = changeMakers(t, st)
			k, _, err := st.CreateKey(ctx, KeySpec{Label: "k", OwnerID: testUser}, testOp)
			if err != nil {
				t.Fatal(err)
			}
			acl := func(rule string) {
				t.Helper()
				for _, n := range su.nodes {
					if err := n.Client(t).Do(ctx, "ACL", "SETUSER", "default", rule).Err(); err != nil {
						t.Fatalf("ACL SETUSER default %s: %v", rule, err)
					}
				}
			}
			acl("-xadd")
			_, err = st.UpdateKey(ctx, k.ID, KeyUpdate{Disabled: ptr(true)}, testOp)
			_, roleErr := st.UpdateRole(ctx, testRole, func(r *Role) { r.Description = "changed" }, testOp)
			acl("+xadd")
			if err == nil || roleErr == nil {
				t.Fatalf("changes without their stream entry: key %v, role %v; want errors", err, roleErr)
			}
			got, err := st.Key(ctx, k.ID)
			if err != nil || got.Disabled {
				t.Errorf("key after a refused entry: %+v, %v; want it enabled", got, err)
			}
			roles, err := st.Roles(ctx)
			if err != nil || roles[testRole].Description == "changed" {
				t.Errorf("role after a refused entry: %+v, %v; want it unchanged", roles[testRole], err)
			}
		})
	}
}
