package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/internal/redistest"
)

// exportLines is an export split into its lines (without newlines).
type exportLines []string

func (l exportLines) join() []byte { return []byte(strings.Join(l, "\n") + "\n") }

// firstOf returns the 1-based number of the first line of kind.
func (l exportLines) firstOf(t *testing.T, kind string) int {
	t.Helper()
	for i, s := range l {
		if strings.HasPrefix(s, `{"kind":"`+kind+`"`) {
			return i + 1
		}
	}
	t.Fatalf("no %s line", kind)
	return 0
}

// edit returns a copy of l with line n (1-based) changed by fn, which
// gets the line as a JSON object.
func (l exportLines) edit(t *testing.T, n int, fn func(m map[string]any)) exportLines {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(l[n-1]), &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	return l.set(n, mustJSON(t, m))
}

func (l exportLines) set(n int, line string) exportLines {
	out := append(exportLines(nil), l...)
	out[n-1] = line
	return out
}

// keyIDsFrom returns the Access IDs of the key lines from line n on.
func (l exportLines) keyIDsFrom(n int) []string {
	var ids []string
	for _, s := range l[n-1:] {
		var rec struct {
			Key *struct {
				ID string `json:"id"`
			} `json:"key"`
		}
		if json.Unmarshal([]byte(s), &rec) == nil && rec.Key != nil {
			ids = append(ids, rec.Key.ID)
		}
	}
	return ids
}

// TestImportRefusesBadInput feeds broken and hostile files to Import: each
// fails with an error naming the line; the records before it are
// imported and nothing of the record of that line or after it is, and a
// file refused for its header leaves Redis untouched.
func TestImportRefusesBadInput(t *testing.T) {
	src := New(redistest.Start(t).Client(t), Options{Prefix: "ag"})
	seedStore(t, src, 20)
	file, _ := exportOf(t, src)
	lines := exportLines(strings.Split(strings.TrimSuffix(string(file), "\n"), "\n"))
	k := lines.firstOf(t, recordKey) + 3 // a key line with keys before it
	for strings.Contains(lines[k-1], `"replacedBy"`) {
		k++ // a live key's: the rotated-out one already has what some cases add
	}
	end := len(lines)
	keyField := func(field string, v any) func(map[string]any) {
		return func(m map[string]any) { m["key"].(map[string]any)[field] = v }
	}
	// Later than now by more than the clock skew import allows.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name  string
		input []byte
		line  int    // the line the error names
		is    error  // when set, what the error is
		want  string // in the error
	}{
		{"empty input", nil, 1, nil, "empty input"},
		{"not JSON", []byte("hello\n"), 1, nil, "not an accessgate-export file"},
		{"another format", lines.set(1, `{"format":"other","version":1}`).join(), 1, nil, "not an accessgate-export file"},
		{"newer version", lines.edit(t, 1, func(m map[string]any) { m["version"] = 2 }).join(), 1, nil, "version 2; this build reads version 1 only"},
		{"header without id", lines.edit(t, 1, func(m map[string]any) { delete(m, "exportId") }).join(), 1, nil, "exportId"},
		{"hostile prefix", lines.edit(t, 1, func(m map[string]any) { m["prefix"] = "ag\u001b[2J" }).join(), 1, nil, "header: invalid prefix"},
		{"unknown header field", lines.edit(t, 1, func(m map[string]any) { m["compressed"] = true }).join(), 1, nil, "unknown field"},
		{"truncated line", []byte(strings.Join(lines[:k-1], "\n") + "\n" + lines[k-1][:len(lines[k-1])/2]), k, nil, "invalid JSON"},
		{"cut at a line boundary", exportLines(lines[:k-1]).join(), k, ErrTruncated, "the file ends without its end line"},
		{"unknown kind", lines.edit(t, k, func(m map[string]any) { m["kind"] = "apiKey" }).join(), k, nil, `unknown record kind "apiKey"`},
		{"no kind", lines.set(k, "null").join(), k, nil, "record without a kind"},
		{"oversized line", lines.edit(t, k, keyField("label", strings.Repeat("x", MaxExportLine))).join(), k, nil, "line longer than 1048576 bytes"},
		{"unknown field", lines.edit(t, k, keyField("isAdmin", true)).join(), k, nil, `unknown field "isAdmin"`},
		{"two bodies", lines.edit(t, k, func(m map[string]any) { m["owner"] = map[string]any{"id": "x"} }).join(), k, nil, "must carry its key object and nothing else"},
		{"trailing data", lines.set(k, lines[k-1]+` {"kind":"end"}`).join(), k, nil, "data after the JSON object"},
		{"huge number", lines.set(k, strings.Replace(lines[k-1], `"version":`, `"version":1e400,"x":`, 1)).join(), k, nil, "invalid JSON"},
		{"deep nesting", lines.set(k, `{"kind":"key","key":{"scopes":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+`}}`).join(), k, nil, "invalid JSON"},
		{"bad access id", lines.edit(t, k, keyField("id", "../../etc")).join(), k, nil, "invalid access id"},
		{"bad secret hash", lines.edit(t, k, keyField("secretHash", "plaintext-secret")).join(), k, nil, "secretHash"},
		{"pending record", lines.edit(t, k, keyField("pending", true)).join(), k, nil, "pending"},
		{"zero version", lines.edit(t, k, keyField("version", 0)).join(), k, nil, "version must be at least 1"},
		{"disguised label", lines.edit(t, k, keyField("label", "invoice\u202efdp.exe")).join(), k, nil, "label must be printable text"},
		{"bad scope", lines.edit(t, k, keyField("scopes", []string{"a b"})).join(), k, nil, "invalid scopes entry"},
		{"http origin", lines.edit(t, k, keyField("corsHeaders", []string{"http://a.example.com"})).join(), k, nil, "http://a.example.com"},
		{"rotated out without expiry", lines.edit(t, k, keyField("replacedBy", "su"+strings.Repeat("A", 12))).join(), k, nil, "recordExpiresAt"},
		{"bad owner kind", lines.edit(t, lines.firstOf(t, recordOwner), func(m map[string]any) { m["owner"].(map[string]any)["kind"] = "admin" }).join(),
			lines.firstOf(t, recordOwner), nil, "kind must be user or serviceAccount"},
		{"bad role id", lines.edit(t, lines.firstOf(t, recordRole), func(m map[string]any) { m["role"].(map[string]any)["id"] = "a b" }).join(),
			lines.firstOf(t, recordRole), nil, "invalid role id"},
		{"bad policy", lines.edit(t, 2, func(m map[string]any) { m["policies"].(map[string]any)["lifetimeDays"] = 9999 }).join(), 2, nil, "outside 0..365"},
		{"empty label", lines.edit(t, k, keyField("label", " ")).join(), k, nil, "label is required"},
		{"version near overflow", lines.edit(t, k, keyField("version", int64(1)<<62)).join(), k, nil, "at most 1099511627776"},
		{"issued in the future", lines.edit(t, k, keyField("issuedAt", future)).join(), k, nil, "issuedAt " + future + " is in the future"},
		{"activated in the future", lines.edit(t, k, keyField("activatedAt", future)).join(), k, nil, "activatedAt"},
		{"key created in the future", lines.edit(t, k, keyField("createdAt", future)).join(), k, nil, "createdAt"},
		{"key modified in the future", lines.edit(t, k, keyField("modifiedAt", future)).join(), k, nil, "modifiedAt"},
		{"used in the future", lines.edit(t, k, func(m map[string]any) { m["lastUsed"] = future }).join(), k, nil, "lastUsed"},
		{"owner modified in the future", lines.edit(t, lines.firstOf(t, recordOwner), func(m map[string]any) { m["owner"].(map[string]any)["modifiedAt"] = future }).join(),
			lines.firstOf(t, recordOwner), nil, "modifiedAt"},
		{"role created in the future", lines.edit(t, lines.firstOf(t, recordRole), func(m map[string]any) { m["role"].(map[string]any)["createdAt"] = future }).join(),
			lines.firstOf(t, recordRole), nil, "createdAt"},
		{"policy set in the future", lines.edit(t, 2, func(m map[string]any) { m["policies"].(map[string]any)["unusedSetAt"] = future }).join(), 2, nil, "unusedSetAt"},
		{"end count", lines.edit(t, end, func(m map[string]any) { m["records"] = 3 }).join(), end, nil, "the end line counts 3 records"},
		{"after the end", append(lines.join(), []byte(lines[k-1]+"\n")...), end + 1, nil, "data after the end line"},
	}
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			dst := New(rdb, Options{Prefix: "ag"})
			_, err := dst.Import(ctx, bytes.NewReader(tc.input), ImportOptions{BatchSize: 4})
			if err == nil {
				t.Fatal("import succeeded")
			}
			t.Logf("error: %.300s", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			ie, isLine := errors.AsType[*ImportError](err)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
			if !isLine || ie.Line != tc.line {
				t.Errorf("error %v, want one naming line %d", err, tc.line)
			}
			if tc.line == 1 {
				if n := rdb.DBSize(ctx).Val(); n != 0 {
					t.Errorf("a file refused for its header wrote %d Redis keys", n)
				}
				return
			}
			bad := min(tc.line, end)
			for _, id := range lines[:bad-1].keyIDsFrom(2) {
				if n := rdb.Exists(ctx, dst.keyKey(id)).Val(); n != 1 {
					t.Errorf("key %s of a line before the bad one was not imported", id)
				}
			}
			for _, id := range lines.keyIDsFrom(bad) {
				if n := rdb.Exists(ctx, dst.keyKey(id)).Val(); n != 0 {
					t.Errorf("key %s of the bad line or after it was written", id)
				}
				if n := rdb.ZScore(ctx, dst.keysIndex(), id).Err(); n == nil {
					t.Errorf("key %s of the bad line or after it was indexed", id)
				}
			}
		})
	}
}

// TestImportIntoNonEmptyStore: an import into a store holding records that
// no import of the file wrote is refused before anything is written;
// with Merge it keeps what Redis holds in the same or a newer version
// and adds the rest.
func TestImportIntoNonEmptyStore(t *testing.T) {
	src := New(redistest.Start(t).Client(t), Options{Prefix: "ag"})
	sd := seedStore(t, src, 10)
	file, esum := exportOf(t, src)

	rdb := redistest.Start(t).Client(t)
	dst := New(rdb, Options{Prefix: "ag"})
	ctx := context.Background()
	if _, err := dst.CreateRole(ctx, Role{ID: "viewer", Name: "Local viewer", Capabilities: []string{"viewCollectors"}}, testOp); err != nil {
		t.Fatal(err)
	}
	before := withoutAudit(dumpDB(t, rdb))
	_, err := dst.Import(ctx, bytes.NewReader(file), ImportOptions{})
	if !errors.Is(err, ErrStoreNotEmpty) || !strings.Contains(err.Error(), "1 roles) that no import of export") {
		t.Fatalf("import into a store with a role: %v, want ErrStoreNotEmpty", err)
	}
	if after := withoutAudit(dumpDB(t, rdb)); !mapsEqual(before, after) {
		t.Fatalf("the refused import changed Redis: %s", dumpDiff(before, after))
	}

	sum, err := dst.Import(ctx, bytes.NewReader(file), ImportOptions{Merge: true})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if sum.Skipped != 1 || sum.Written != esum.Records-1 {
		t.Errorf("merge %+v, want the newer local role kept", sum)
	}
	if r, err := dst.Role(ctx, "viewer"); err != nil || r.Name != "Local viewer" {
		t.Errorf("role after the merge: %+v, %v", r, err)
	}
	for id, secret := range sd.secrets {
		if a, b := verdict(t, src, id, secret), verdict(t, dst, id, secret); a != b && id != sd.rotatedOut {
			t.Errorf("%s: %s before, %s after the merge", id, a, b)
		}
	}
	// The same file again, once imported, is refused like any other
	// without Merge, and writes nothing with it.
	if _, err := dst.Import(ctx, bytes.NewReader(file), ImportOptions{}); !errors.Is(err, ErrStoreNotEmpty) {
		t.Errorf("import of the same file again without merge: %v, want ErrStoreNotEmpty", err)
	}
	if again, err := dst.Import(ctx, bytes.NewReader(file), ImportOptions{Merge: true}); err != nil || again.Written != 0 {
		t.Errorf("import of the same file again: %+v, %v", again, err)
	}
}

func mapsEqual(a, b map[string]string) bool { return dumpDiff(a, b) == "" }

// TestImportKeepsWhatIsLeftOfAGrace: a key rotated out keeps, after an
// import, the rest of its grace as its record's TTL; imported after its
// grace ended, it is left out and counted as expired.
func TestImportKeepsWhatIsLeftOfAGrace(t *testing.T) {
	src := New(redistest.Start(t).Client(t), Options{Prefix: "ag", RotationGrace: 10 * time.Minute})
	sd := seedStore(t, src, 5)
	file, _ := exportOf(t, src)
	for _, tc := range []struct {
		name    string
		later   time.Duration
		expired int
	}{
		{"in the grace", 4 * time.Minute, 0},
		{"after the grace", 11 * time.Minute, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redistest.Start(t).Client(t)
			clock := newFakeClock(time.Now().Add(tc.later))
			dst := New(rdb, Options{Prefix: "ag", Now: clock.Now})
			sum, err := dst.Import(context.Background(), bytes.NewReader(file), ImportOptions{})
			if err != nil || sum.Expired != tc.expired || !sum.Complete {
				t.Fatalf("import: %+v, %v; want %d expired", sum, err, tc.expired)
			}
			ttl := rdb.PTTL(context.Background(), dst.keyKey(sd.rotatedOut)).Val()
			switch {
			case tc.expired == 1 && ttl != -2:
				t.Errorf("record of a grace that ended has TTL %v, want none written", ttl)
			case tc.expired == 0 && (ttl <= 5*time.Minute || ttl > 6*time.Minute+time.Second):
				t.Errorf("record TTL %v, want the 6 minutes left of its grace", ttl)
			}
		})
	}
}

// TestImportAgainDoesNotResurrect: once an import completed, the store is
// the operator's: a key deleted since does not come back by importing the
// same file again without Merge, which is refused like any import into a
// store that is not empty.
func TestImportAgainDoesNotResurrect(t *testing.T) {
	src := New(redistest.Start(t).Client(t), Options{Prefix: "ag"})
	sd := seedStore(t, src, 10)
	file, _ := exportOf(t, src)

	rdb := redistest.Start(t).Client(t)
	dst := New(rdb, Options{Prefix: "ag"})
	ctx := context.Background()
	if sum, err := dst.Import(ctx, bytes.NewReader(file), ImportOptions{}); err != nil || !sum.Complete {
		t.Fatalf("import: %+v, %v", sum, err)
	}
	if err := dst.DeleteKey(ctx, sd.disabled, testOp); err != nil {
		t.Fatal(err)
	}
	_, err := dst.Import(ctx, bytes.NewReader(file), ImportOptions{})
	if !errors.Is(err, ErrStoreNotEmpty) {
		t.Errorf("import of the same file again after a delete: %v, want ErrStoreNotEmpty", err)
	}
	if n := rdb.Exists(ctx, dst.keyKey(sd.disabled)).Val(); n != 0 {
		t.Errorf("the deleted key %s is back after importing the same file again", sd.disabled)
	}
}

// TestImportDuplicateInBatch: a key that comes twice in one batch is kept
// in its newest version, whichever line comes last, and counted written
// once.
func TestImportDuplicateInBatch(t *testing.T) {
	src := New(redistest.Start(t).Client(t), Options{Prefix: "ag"})
	seedStore(t, src, 5)
	file, esum := exportOf(t, src)
	lines := exportLines(strings.Split(strings.TrimSuffix(string(file), "\n"), "\n"))
	k := lines.firstOf(t, recordKey)
	id := lines.keyIDsFrom(k)[0]
	version := func(v int) string {
		return lines.edit(t, k, func(m map[string]any) { m["key"].(map[string]any)["version"] = v })[k-1]
	}
	end := len(lines)
	for _, order := range [][2]int{{9, 1}, {1, 9}} {
		t.Run(fmt.Sprintf("%d then %d", order[0], order[1]), func(t *testing.T) {
			in := append(exportLines(nil), lines[:k-1]...)
			in = append(in, version(order[0]), version(order[1]))
			in = append(in, lines[k:end-1]...)
			in = append(in, fmt.Sprintf(`{"kind":"end","records":%d}`, esum.Records+1))
			dst := New(redistest.Start(t).Client(t), Options{Prefix: "ag"})
			sum, err := dst.Import(context.Background(), bytes.NewReader(in.join()), ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Written != esum.Records || sum.Skipped != 1 {
				t.Errorf("import %+v, want %d written and the older copy skipped", sum, esum.Records)
			}
			got, err := dst.rawKey(context.Background(), id)
			if err != nil || got.Version != 9 {
				t.Fatalf("key %s after the import: %+v, %v; want version 9", id, got, err)
			}
		})
	}
}
