package keystore

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/redistest"
)

// scaleKeys is the number of keys of TestExportImportScale:
// ACCESSGATE_EXPORT_KEYS, or 100,000.
func scaleKeys(t *testing.T) int {
	if v := os.Getenv("ACCESSGATE_EXPORT_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ACCESSGATE_EXPORT_KEYS=%q: want a positive number", v)
		}
		return n
	}
	return 100_000
}

// writeSyntheticExport writes an export of n keys spread over 100 users
// holding one role, every key with a last use, as Export would.
func writeSyntheticExport(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	const users = 100
	now := time.Now().UTC().Truncate(time.Millisecond)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(enc.Encode(exportHeader{Format: ExportFormat, Version: ExportVersion, ExportID: "synthetic", Prefix: "ag", ExportedAt: now,
		Counts: RecordCounts{Keys: n, Users: users, Roles: 1}}))
	role := Role{ID: "viewer", Name: "Viewer", Capabilities: []string{"viewCollectors"}, CreatedAt: now, ModifiedAt: now}
	must(enc.Encode(exportRecord{Kind: recordRole, Role: &role}))
	for i := range users {
		o := Owner{ID: fmt.Sprintf("user%03d", i), Kind: OwnerUser, Email: fmt.Sprintf("u%d@example.com", i), RoleIDs: []string{"viewer"},
			IsActive: true, CreatedAt: now, ModifiedAt: now}
		must(enc.Encode(exportRecord{Kind: recordOwner, Owner: &o}))
	}
	for i := range n {
		id := NewAccessID()
		k := Key{ID: id, SecretHash: HashSecret(NewAccessKey()), Label: fmt.Sprintf("key %d", i), OwnerID: fmt.Sprintf("user%03d", i%users),
			OwnerKind: OwnerUser, Scopes: []string{"viewCollectors"}, CreatedAt: now, CreatedBy: "admin", ModifiedAt: now, ModifiedBy: "admin",
			IssuedAt: now, ActivatedAt: now, Version: 1, Lineage: id}
		used := now.Add(-time.Duration(i) * time.Second)
		must(enc.Encode(exportRecord{Kind: recordKey, Key: &k, LastUsed: &used}))
	}
	records := 1 + users + n
	must(enc.Encode(exportRecord{Kind: recordEnd, Records: &records}))
	must(w.Flush())
}

// TestExportImportScale imports a synthetic export of 100,000 keys
// (ACCESSGATE_EXPORT_KEYS) into one redis-server and exports it again,
// logging the time of each and the heap in use: before the export, at
// its peak (sampled after every batch) and after. The export holds one
// batch of records at a time, so its heap must not grow with the number
// of keys; the bound checked, 64 MiB, is far below what holding 100,000
// records would take. ACCESSGATE_EXPORT_CLUSTER=1 also imports the file
// into a 3-master Redis Cluster.
func TestExportImportScale(t *testing.T) {
	if testing.Short() {
		t.Skip("imports and exports 100,000 keys")
	}
	n := scaleKeys(t)
	path := filepath.Join(t.TempDir(), "export.jsonl")
	writeSyntheticExport(t, path, n)
	fi, _ := os.Stat(path)
	ctx := context.Background()

	importFile := func(st *Store) (ImportSummary, time.Duration) {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		start := time.Now()
		sum, err := st.Import(ctx, f, ImportOptions{Operator: testOp})
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		return sum, time.Since(start)
	}

	st := New(redistest.Start(t).Client(t), Options{Prefix: "ag"})
	sum, took := importFile(st)
	if sum.Written != n+101 || sum.LastUsedWritten != n {
		t.Fatalf("import summary %+v", sum)
	}
	t.Logf("import of %d keys (%d MiB file) into one redis-server: %v (%.0f records/s)", n, fi.Size()>>20, took.Round(time.Millisecond), float64(sum.Written)/took.Seconds())

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before, peak := ms.HeapInuse, ms.HeapInuse
	start := time.Now()
	esum, err := st.Export(ctx, io.Discard, func(int) {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	})
	took = time.Since(start)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	runtime.ReadMemStats(&ms)
	if esum.Keys != n || esum.Users != 100 {
		t.Fatalf("export summary %+v", esum)
	}
	t.Logf("export of %d keys: %v (%.0f records/s); heap in use before %d KiB, peak %d KiB, after %d KiB",
		n, took.Round(time.Millisecond), float64(esum.Records)/took.Seconds(), before>>10, peak>>10, ms.HeapInuse>>10)
	if grew := peak - before; grew > 64<<20 {
		t.Errorf("the export's heap grew by %d MiB", grew>>20)
	}

	if os.Getenv("ACCESSGATE_EXPORT_CLUSTER") == "1" {
		cst := New(redistest.StartCluster(t, 3).Client(t), Options{Prefix: "ag"})
		sum, took := importFile(cst)
		t.Logf("import of %d keys into a 3-master Redis Cluster: %v (%.0f records/s)", n, took.Round(time.Millisecond), float64(sum.Written)/took.Seconds())
		start := time.Now()
		esum, err := cst.Export(ctx, io.Discard, nil)
		if err != nil || esum.Keys != n {
			t.Fatalf("Export from the cluster: %+v, %v", esum, err)
		}
		took = time.Since(start)
		t.Logf("export of %d keys from a 3-master Redis Cluster: %v (%.0f records/s)", n, took.Round(time.Millisecond), float64(esum.Records)/took.Seconds())
	}
}
