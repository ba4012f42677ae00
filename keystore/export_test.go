package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/limits"
)

// seeded is a store filled by seedStore, with the secrets of its keys,
// which only the test knows.
type seeded struct {
	store   *Store
	secrets map[string]string // Access ID -> Access Key
	// rotatedOut is an Access ID rotated out, in its grace; disabled a
	// deactivated key; inactive a key whose owner is deactivated.
	rotatedOut, disabled, inactive string
	// lastUses is how many keys have a last use: every third key's, but
	// the rotated-out key's, which its rotation removed.
	lastUses int
}

// seedStore fills st with roles, users (one deactivated), service
// accounts, custom policies and n keys spread over the owners, some with
// scopes, allowlists and limits, and last-use times on every third key;
// then deactivates one key and rotates another, whose old Access ID stays
// in its grace.
func seedStore(t testing.TB, st *Store, n int) *seeded {
	t.Helper()
	ctx := context.Background()
	sd := &seeded{store: st, secrets: map[string]string{}}
	roles := []Role{
		{ID: "viewer", Name: "Viewer", Description: "reads collectors", Capabilities: []string{"viewCollectors"}},
		{ID: "admin", Name: "Administrator", Capabilities: []string{"createAccessKeys", "manageAccessKeys", "viewCollectors", "manageCollectors"}},
		{ID: "search", Name: "Search", Capabilities: []string{"runLogSearch"}},
	}
	for _, r := range roles {
		if _, err := st.CreateRole(ctx, r, testOp); err != nil {
			t.Fatalf("CreateRole %s: %v", r.ID, err)
		}
	}
	var owners []string
	for i := range 5 {
		o := Owner{ID: fmt.Sprintf("user%d", i), Kind: OwnerUser, Email: fmt.Sprintf("u%d@example.com", i), FirstName: "U", LastName: fmt.Sprint(i),
			RoleIDs: []string{"viewer", "search"}, IsActive: true}
		if i == 0 {
			o.RoleIDs = []string{"admin"}
			o.RateLimit = &limits.Rate{Requests: 10, PeriodSeconds: 1, Burst: 20}
		}
		if _, err := st.CreateOwner(ctx, o, testOp); err != nil {
			t.Fatalf("CreateOwner: %v", err)
		}
		owners = append(owners, o.ID)
	}
	for i := range 2 {
		o := Owner{ID: fmt.Sprintf("sa%d", i), Kind: OwnerServiceAccount, Email: fmt.Sprintf("sa%d@example.com", i), Name: fmt.Sprintf("Robot %d", i),
			RoleIDs: []string{"viewer"}, IsActive: true}
		if _, err := st.CreateOwner(ctx, o, testOp); err != nil {
			t.Fatalf("CreateOwner: %v", err)
		}
		owners = append(owners, o.ID)
	}
	if _, err := st.SetLifetimeDays(ctx, 90, testOp); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetUnusedDays(ctx, 60, testOp); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ownerOf := map[string]string{}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	err := forEachLimited(ctx, idx, 8, func(ctx context.Context, i int) error {
		spec := KeySpec{Label: fmt.Sprintf("key %d", i), OwnerID: owners[i%len(owners)]}
		switch i % 4 {
		case 1:
			spec.Scopes = []string{"viewCollectors"}
		case 2:
			spec.CORSHeaders = []string{"https://app.example.com", "https://b.example.com:8443"}
		case 3:
			spec.Limits = KeyLimits{RateLimit: &limits.Rate{Requests: 100, PeriodSeconds: 60, Burst: 100}, ConcurrencyLimit: ptr(4),
				Quota: &limits.Quota{Requests: 1000, Period: "day"}}
		}
		k, secret, err := st.CreateKey(ctx, spec, testOp)
		if err != nil {
			return err
		}
		mu.Lock()
		sd.secrets[k.ID] = secret
		ownerOf[k.ID] = k.OwnerID
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	ids := slices.Sorted(maps.Keys(sd.secrets))
	uses := map[string]time.Time{}
	base := st.Now().Add(-time.Hour)
	for i, id := range ids {
		if i%3 == 0 {
			uses[id] = base.Add(time.Duration(i) * time.Millisecond)
		}
	}
	if err := st.RecordLastUsed(ctx, uses); err != nil {
		t.Fatal(err)
	}
	// The deactivated owner is user4: the key rotated out, the
	// deactivated one and the one of user4 are three different keys.
	for _, id := range ids {
		switch {
		case ownerOf[id] == "user4" && sd.inactive == "":
			sd.inactive = id
		case ownerOf[id] != "user4" && sd.disabled == "":
			sd.disabled = id
		case ownerOf[id] != "user4" && sd.rotatedOut == "":
			sd.rotatedOut = id
		}
	}
	if _, err := st.UpdateKey(ctx, sd.disabled, KeyUpdate{Disabled: ptr(true)}, testOp); err != nil {
		t.Fatal(err)
	}
	nk, secret, err := st.RotateKey(ctx, sd.rotatedOut, testOp)
	if err != nil {
		t.Fatal(err)
	}
	sd.secrets[nk.ID] = secret
	sd.lastUses = len(uses)
	if _, ok := uses[sd.rotatedOut]; ok {
		sd.lastUses--
	}
	if _, err := st.UpdateOwner(ctx, "user4", OwnerUser, func(o *Owner) { o.IsActive = false }, testOp); err != nil {
		t.Fatal(err)
	}
	return sd
}

// exportOf exports st and returns the file.
func exportOf(t testing.TB, st *Store) ([]byte, ExportSummary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := st.Export(context.Background(), &buf, nil)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return buf.Bytes(), sum
}

// storeState is everything a reader of a store sees, for comparison.
type storeState struct {
	Keys     []*Key
	LastUsed map[string]time.Time
	Users    []*Owner
	Services []*Owner
	Roles    map[string]*Role
	Policies Policies
	OwnerKey map[string][]string
}

func stateOf(t testing.TB, st *Store) storeState {
	t.Helper()
	ctx := context.Background()
	var s storeState
	token := ""
	for {
		page, err := st.ListKeys(ctx, 1000, token)
		if err != nil {
			t.Fatal(err)
		}
		s.Keys = append(s.Keys, page.Keys...)
		if token = page.Next; token == "" {
			break
		}
	}
	ids := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		ids[i] = k.ID
	}
	var err error
	if s.LastUsed, err = st.LastUsed(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []OwnerKind{OwnerUser, OwnerServiceAccount} {
		page, err := st.ListOwners(ctx, kind, 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		if kind == OwnerUser {
			s.Users = page.Owners
		} else {
			s.Services = page.Owners
		}
		for _, o := range page.Owners {
			keys, err := st.KeysOfOwner(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if s.OwnerKey == nil {
				s.OwnerKey = map[string][]string{}
			}
			for _, k := range keys {
				s.OwnerKey[o.ID] = append(s.OwnerKey[o.ID], k.ID)
			}
		}
	}
	if s.Roles, err = st.Roles(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Policies, err = st.Policies(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// verdict is the outcome of a verification, comparable across stores.
func verdict(t testing.TB, st *Store, id, secret string) string {
	t.Helper()
	got, err := st.Verify(context.Background(), id, secret, VerifyOptions{})
	var ae *AuthError
	switch {
	case errors.As(err, &ae):
		return "rejected:" + string(ae.Reason)
	case err != nil:
		t.Fatalf("Verify %s: %v", id, err)
	}
	return fmt.Sprintf("ok:%s:%s:%v:%v", got.OwnerID, got.LimitID, got.Scopes, got.Allowlist)
}

// TestExportImportToCluster moves a single Redis with 2,000 keys, users,
// service accounts, roles, custom policies, last-use times, a deactivated
// key, a key of a deactivated owner and a key rotated out in its grace
// into a 3-master Redis Cluster, under another prefix: every credential
// verifies there as it did before (with the secrets only the test kept),
// and listings, owners, their keys, roles, policies and last uses are
// equal.
func TestExportImportToCluster(t *testing.T) {
	const n = 2000
	src := New(redistest.Start(t).Client(t), Options{Prefix: "ag", RotationGrace: 10 * time.Minute})
	sd := seedStore(t, src, n)
	file, esum := exportOf(t, src)
	if esum.Keys != n || esum.RotatedKeys != 1 || esum.Users != 5 || esum.ServiceAccounts != 2 || esum.Roles != 3 || !esum.Policies {
		t.Fatalf("export summary %+v", esum)
	}
	if bytes.Contains(file, []byte(sd.secrets[sd.disabled])) {
		t.Fatal("the export holds a plaintext secret")
	}

	cl := redistest.StartCluster(t, 3)
	dst := New(cl.Client(t), Options{Prefix: "moved", RotationGrace: 10 * time.Minute})
	var progress []int
	sum, err := dst.Import(context.Background(), bytes.NewReader(file), ImportOptions{Operator: testOp,
		Progress: func(done, total int) { progress = append(progress, done) }})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if want := esum.Records; !sum.Complete || sum.Written != want || sum.Skipped != 0 || sum.Records != want || sum.LastUsedWritten != sd.lastUses {
		t.Fatalf("import summary %+v, want %d records written, %d last uses", sum, want, sd.lastUses)
	}
	if len(progress) < 2 || progress[len(progress)-1] != esum.Records {
		t.Errorf("progress calls %v", progress)
	}

	want, got := stateOf(t, src), stateOf(t, dst)
	if len(got.Keys) != n {
		t.Fatalf("%d keys listed in the cluster, want %d", len(got.Keys), n)
	}
	if a, b := mustJSON(t, want), mustJSON(t, got); a != b {
		t.Fatalf("state differs after the move:\nsource %.2000s\ncluster %.2000s", a, b)
	}
	ok := 0
	for id, secret := range sd.secrets {
		a, b := verdict(t, src, id, secret), verdict(t, dst, id, secret)
		if a != b {
			t.Errorf("%s verifies as %q in the source, %q in the cluster", id, a, b)
		}
		if strings.HasPrefix(b, "ok:") {
			ok++
		}
	}
	if ok < n-n/7-2 {
		t.Errorf("only %d of %d credentials verify", ok, len(sd.secrets))
	}
	for name, id := range map[string]string{"rotated out": sd.rotatedOut, "deactivated": sd.disabled, "inactive owner": sd.inactive} {
		t.Logf("%s key %s: %s", name, id, verdict(t, dst, id, sd.secrets[id]))
	}
	if v := verdict(t, dst, sd.rotatedOut, sd.secrets[sd.rotatedOut]); !strings.HasPrefix(v, "ok:") {
		t.Errorf("the key rotated out in its grace no longer verifies after the move: %s", v)
	}
	ttl, err := dst.Client().PTTL(context.Background(), dst.keyKey(sd.rotatedOut)).Result()
	if err != nil || ttl <= 0 || ttl > 10*time.Minute+time.Second {
		t.Errorf("record of the key rotated out has TTL %v (%v), want its remaining grace", ttl, err)
	}
	if v := verdict(t, dst, sd.disabled, sd.secrets[sd.disabled]); v != "rejected:"+string(ReasonDisabled) {
		t.Errorf("deactivated key: %s", v)
	}
	if v := verdict(t, dst, sd.inactive, sd.secrets[sd.inactive]); v != "rejected:"+string(ReasonOwnerInactive) {
		t.Errorf("key of a deactivated owner: %s", v)
	}
	events, err := dst.Events(context.Background(), EventFilter{Name: EventKeysImported})
	if err != nil || len(events) != 1 || events[0].Details["written"] != float64(esum.Records) || events[0].Operator.ID != testOp.ID {
		t.Errorf("import audit events %+v (%v), want one with the counts", events, err)
	}

	// Importing the same file again (with Merge: the store now holds an
	// import that completed) writes nothing and changes nothing.
	before := clusterDump(t, cl)
	again, err := dst.Import(context.Background(), bytes.NewReader(file), ImportOptions{Operator: testOp, Merge: true})
	if err != nil {
		t.Fatalf("second Import: %v", err)
	}
	if again.Written != 0 || again.LastUsedWritten != 0 || again.Skipped != esum.Records || !again.Complete {
		t.Errorf("second import %+v, want nothing written, %d skipped", again, esum.Records)
	}
	if after := clusterDump(t, cl); !maps.Equal(before, after) {
		t.Errorf("the second import changed Redis: %s", dumpDiff(before, after))
	}
}

// clusterDump is dumpDB over every node of a cluster, without the audit
// stream and its markers, which every import appends to.
func clusterDump(t testing.TB, cl *redistest.Cluster) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range cl.Nodes() {
		maps.Copy(out, withoutAudit(dumpDB(t, n.Client(t))))
	}
	return out
}

func withoutAudit(m map[string]string) map[string]string {
	maps.DeleteFunc(m, func(k, _ string) bool { return strings.Contains(k, ":audit") })
	return m
}

// dumpDiff names the keys whose values differ between two dumps.
func dumpDiff(a, b map[string]string) string {
	var diff []string
	for k, v := range a {
		if b[k] != v {
			diff = append(diff, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diff = append(diff, k)
		}
	}
	slices.Sort(diff)
	if len(diff) > 10 {
		diff = append(diff[:10], "…")
	}
	return strings.Join(diff, ", ")
}

// commandCalls returns how many times the server ran each command since
// its statistics were reset.
func commandCalls(t testing.TB, rdb *redis.Client) map[string]int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		var n int
		fmt.Sscanf(rest, "%d", &n)
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out
}

// TestImportResume stops an import midway (its context cancelled after
// k records) and runs it again, with and without Resume: the store ends
// complete and equal to the source, and the second run rewrites none of
// the first k records (Redis counts the SETs it ran).
func TestImportResume(t *testing.T) {
	src := New(redistest.Start(t).Client(t), Options{Prefix: "ag"})
	seedStore(t, src, 300)
	file, esum := exportOf(t, src)
	want := stateOf(t, src)
	for _, resume := range []bool{false, true} {
		t.Run(fmt.Sprintf("resume=%v", resume), func(t *testing.T) {
			rdb := redistest.Start(t).Client(t)
			dst := New(rdb, Options{Prefix: "ag"})
			const k = 150
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first, err := dst.Import(ctx, bytes.NewReader(file), ImportOptions{BatchSize: 50, Progress: func(done, _ int) {
				if done >= k {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) || first.Written != k || first.Complete {
				t.Fatalf("first import: %+v, %v; want %d written, then cancelled", first, err, k)
			}
			if err := rdb.ConfigResetStat(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			second, err := dst.Import(context.Background(), bytes.NewReader(file), ImportOptions{BatchSize: 50, Resume: resume})
			if err != nil {
				t.Fatalf("second import: %v", err)
			}
			if second.Written != esum.Records-k || !second.Complete {
				t.Errorf("second import %+v, want %d written", second, esum.Records-k)
			}
			if resume && (second.Resumed != k || second.Skipped != 0) {
				t.Errorf("resumed import %+v, want %d lines resumed, none read again", second, k)
			}
			if !resume && second.Skipped != k {
				t.Errorf("repeated import %+v, want the first %d records skipped", second, k)
			}
			// Keys and owners are SET (roles and policies HSET), and one
			// more SET marks the audit event of the import.
			if sets := commandCalls(t, rdb)["set"]; sets != second.Written+1 {
				t.Errorf("second import ran %d SETs, want one per record left (%d) and the audit marker", sets, second.Written)
			}
			if got := stateOf(t, dst); mustJSON(t, got) != mustJSON(t, want) {
				t.Error("state differs from the source after the resumed import")
			}
		})
	}
}
