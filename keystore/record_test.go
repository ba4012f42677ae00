package keystore

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/limits"
)

// jsonRoundTrip is what the full layout gives back for k: what a store
// that wrote json.Marshal(k) read.
func jsonRoundTrip(t testing.TB, k *Key) (Key, bool) {
	b, err := json.Marshal(k)
	if err != nil {
		return Key{}, false
	}
	var out Key
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	return out, true
}

func recordTestKey() Key {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8e6, time.UTC)
	return Key{
		ID: "suAbCdEfGhIjKl", SecretHash: HashSecret("secret"), Label: "ingest pipeline 000001",
		OwnerID: "bench-user-0001", OwnerKind: OwnerUser,
		Scopes: []string{"runLogSearch", "viewCollectors"}, CORSHeaders: []string{"https://app.example.com"},
		CreatedAt: at, CreatedBy: "bench-user-0001", ModifiedAt: at, ModifiedBy: "bench-user-0001",
		IssuedAt: at, ActivatedAt: at, Version: 1, Lineage: "suAbCdEfGhIjKl",
	}
}

func TestKeyRecordRoundTrip(t *testing.T) {
	later := time.Date(2026, 5, 6, 7, 8, 9, 123e6, time.UTC)
	tests := []struct {
		name    string
		change  func(k *Key)
		compact bool // the compact layout is written
		fast    bool // and its hand-written decoder reads it
	}{
		{"typical", func(*Key) {}, true, true},
		{"nothing but defaults", func(k *Key) { *k = Key{OwnerKind: OwnerUser} }, true, true},
		{"everything set", func(k *Key) {
			k.OwnerKind, k.Disabled, k.DisabledReason = OwnerServiceAccount, true, DisabledManual
			k.ModifiedAt, k.ModifiedBy, k.IssuedAt, k.ActivatedAt = later, "admin", later.Add(time.Hour), later.Add(2*time.Hour)
			k.GraceUntil, k.ReplacedBy, k.RotatedFrom, k.Pending = later.Add(5*time.Minute), "suZZZZZZZZZZZZ", "suYYYYYYYYYYYY", true
			k.Version, k.Lineage = 42, "suXXXXXXXXXXXX"
		}, true, true},
		{"record from before lineage", func(k *Key) { k.Lineage = "" }, true, true},
		{"empty owner kind, modifier, creator", func(k *Key) { k.OwnerKind, k.ModifiedBy, k.CreatedBy = "", "", "" }, true, true},
		{"modifier cleared", func(k *Key) { k.ModifiedBy = "" }, true, true},
		{"no secret hash (pending rotation)", func(k *Key) { k.SecretHash, k.Pending = "", true }, true, true},
		{"zero times", func(k *Key) { k.CreatedAt, k.IssuedAt = time.Time{}, time.Time{} }, true, true},
		{"zero modification after a creation", func(k *Key) { k.ModifiedAt = time.Time{} }, true, true},
		{"time before 1970", func(k *Key) { k.ActivatedAt = time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC) }, true, true},
		{"no scopes or allowlist", func(k *Key) { k.Scopes, k.CORSHeaders = nil, nil }, true, true},
		{"empty scopes", func(k *Key) { k.Scopes = []string{} }, true, true},
		{"negative version", func(k *Key) { k.Version = -3 }, true, true},
		{"usage limits", func(k *Key) {
			n := 7
			k.RateLimit, k.ConcurrencyLimit, k.Quota = &limits.Rate{Requests: 10, PeriodSeconds: 1}, &n, &limits.Quota{Requests: 1000, Period: "day"}
		}, true, false},
		{"text to escape", func(k *Key) { k.Label = "a \"quoted\" <label> & \\ tab\t" }, true, false},
		{"non-ASCII text", func(k *Key) { k.Label, k.Scopes = "Überwachung ✓", []string{"viewCollectors", "ünïcode"} }, true, false},
		{"invalid UTF-8", func(k *Key) { k.Label = "bad \xff byte" }, true, false},
		{"upper-case hash", func(k *Key) { k.SecretHash = strings.ToUpper(k.SecretHash) }, false, false},
		{"short hash", func(k *Key) { k.SecretHash = "abc" }, false, false},
		{"time below a millisecond", func(k *Key) { k.ModifiedAt = later.Add(time.Microsecond) }, false, false},
		{"time not in UTC", func(k *Key) { k.IssuedAt = later.In(time.FixedZone("X", 3600)) }, false, false},
		{"time with a monotonic reading", func(k *Key) { k.CreatedAt = time.Now().UTC().Truncate(time.Millisecond).Add(0) }, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := recordTestKey()
			tt.change(&k)
			raw := encodeKey(&k)
			if got := isCompact(raw); got != tt.compact {
				t.Fatalf("compact layout %v, want %v: %s", got, tt.compact, raw)
			}
			var got Key
			if err := decodeKey(raw, &got); err != nil {
				t.Fatalf("decodeKey(%s): %v", raw, err)
			}
			want, _ := jsonRoundTrip(t, &k)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decodeKey(encodeKey(k)) =\n%+v\nwant\n%+v\nrecord %s", got, want, raw)
			}
			var fk Key
			var d derivable
			if fast := tt.compact && scanCompact(string(raw), &fk, &d); fast != tt.fast {
				t.Errorf("hand-written decoder used: %v, want %v (%s)", fast, tt.fast, raw)
			}
			var viaString Key
			if err := decodeKeyString(string(raw), &viaString); err != nil || !reflect.DeepEqual(viaString, want) {
				t.Errorf("decodeKeyString = %+v, %v", viaString, err)
			}
		})
	}
}

// TestKeyRecordSize checks that a typical key's record takes at most
// half the space of its full JSON.
func TestKeyRecordSize(t *testing.T) {
	k := recordTestKey()
	full, _ := json.Marshal(&k)
	compact := encodeKey(&k)
	if len(compact)*2 > len(full) {
		t.Errorf("record %d bytes, full JSON %d: %s", len(compact), len(full), compact)
	}
	t.Logf("record %d bytes (full JSON %d): %s", len(compact), len(full), compact)
}

// oldRecords are key records as earlier versions wrote them.
var oldRecords = []struct {
	name string
	raw  string
	fast bool // scanFull reads it
	want Key
}{
	{
		name: "before lineage and limits",
		fast: true,
		raw:  `{"id":"suOLDOLDOLDOLD","secretHash":"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b","label":"legacy","ownerId":"u1","ownerKind":"user","scopes":["viewCollectors"],"disabled":false,"createdAt":"2025-01-02T03:04:05.678Z","createdBy":"u1","modifiedAt":"2025-02-03T04:05:06Z","modifiedBy":"admin","issuedAt":"2025-01-02T03:04:05.678Z","activatedAt":"2025-01-02T03:04:05.678Z","version":3}`,
		want: Key{
			ID: "suOLDOLDOLDOLD", SecretHash: HashSecret("secret"), Label: "legacy", OwnerID: "u1", OwnerKind: OwnerUser,
			Scopes: []string{"viewCollectors"}, CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 678e6, time.UTC), CreatedBy: "u1",
			ModifiedAt: time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC), ModifiedBy: "admin",
			IssuedAt: time.Date(2025, 1, 2, 3, 4, 5, 678e6, time.UTC), ActivatedAt: time.Date(2025, 1, 2, 3, 4, 5, 678e6, time.UTC), Version: 3,
		},
	},
	{
		name: "rotated out, service account, limits, nanoseconds",
		raw:  `{"id":"suROTROTROTROT","secretHash":"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b","label":"ci \u003cbot\u003e","ownerId":"sa1","ownerKind":"serviceAccount","corsHeaders":["https://a.example.com"],"disabled":true,"disabledReason":"manual","createdAt":"2025-01-02T03:04:05.123456789Z","createdBy":"admin","modifiedAt":"2025-01-02T03:04:05.123456789Z","modifiedBy":"admin","issuedAt":"2025-01-02T03:04:05.123456789Z","activatedAt":"2025-01-02T03:04:05.123456789Z","graceUntil":"2025-01-02T03:09:05Z","replacedBy":"suNEWNEWNEWNEW","version":2,"lineage":"suFIRSTFIRSTFI","rateLimit":{"requests":10,"periodSeconds":1},"concurrencyLimit":4,"quota":{"requests":100,"period":"month"}}`,
		want: Key{
			ID: "suROTROTROTROT", SecretHash: HashSecret("secret"), Label: "ci <bot>", OwnerID: "sa1", OwnerKind: OwnerServiceAccount,
			CORSHeaders: []string{"https://a.example.com"}, Disabled: true, DisabledReason: DisabledManual,
			CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC), CreatedBy: "admin",
			ModifiedAt: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC), ModifiedBy: "admin",
			IssuedAt: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC), ActivatedAt: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC),
			GraceUntil: time.Date(2025, 1, 2, 3, 9, 5, 0, time.UTC), ReplacedBy: "suNEWNEWNEWNEW", Version: 2, Lineage: "suFIRSTFIRSTFI",
			RateLimit: &limits.Rate{Requests: 10, PeriodSeconds: 1}, ConcurrencyLimit: new(4), Quota: &limits.Quota{Requests: 100, Period: "month"},
		},
	},
	{
		name: "pending successor in a time zone",
		raw:  `{"id":"suPENDPENDPEND","secretHash":"","label":"","ownerId":"u2","ownerKind":"user","disabled":false,"createdAt":"2025-06-01T12:00:00+02:00","createdBy":"u2","modifiedAt":"2025-06-01T12:00:00+02:00","modifiedBy":"u2","issuedAt":"2025-06-01T12:00:00+02:00","activatedAt":"2025-06-01T12:00:00+02:00","rotatedFrom":"suOLDOLDOLDOLD","pending":true,"version":1,"lineage":"suOLDOLDOLDOLD"}`,
	},
}

// TestKeyRecordOldFormat checks that records written by earlier versions
// (the full layout) decode as json.Unmarshal always decoded them, and
// survive being written again in the compact layout.
func TestKeyRecordOldFormat(t *testing.T) {
	for _, tt := range oldRecords {
		t.Run(tt.name, func(t *testing.T) {
			var want Key
			if err := json.Unmarshal([]byte(tt.raw), &want); err != nil {
				t.Fatal(err)
			}
			if tt.want.ID != "" && !reflect.DeepEqual(want, tt.want) {
				t.Fatalf("the old record is not what the test expects:\n%+v\n%+v", want, tt.want)
			}
			for name, decode := range map[string]func(*Key) error{
				"decodeKey":       func(k *Key) error { return decodeKey([]byte(tt.raw), k) },
				"decodeKeyString": func(k *Key) error { return decodeKeyString(tt.raw, k) },
			} {
				var got Key
				if err := decode(&got); err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("%s = %+v, %v\nwant %+v", name, got, err, want)
				}
			}
			var fk Key
			if fast := scanFull(tt.raw, &fk); fast != tt.fast {
				t.Errorf("hand-written decoder used: %v, want %v", fast, tt.fast)
			}
			rewritten := encodeKey(&want)
			var again Key
			if err := decodeKey(rewritten, &again); err != nil {
				t.Fatal(err)
			}
			if wantAgain, _ := jsonRoundTrip(t, &want); !reflect.DeepEqual(again, wantAgain) {
				t.Fatalf("rewritten as %s, read back as\n%+v\nwant\n%+v", rewritten, again, wantAgain)
			}
		})
	}
}

func TestDecodeKeyCorrupt(t *testing.T) {
	for _, raw := range []string{
		`{"v":2,"i":"x","h":"not base64!"}`,
		`{"v":2,"i":"x","h":"AAAA"}`,
		`{"v":2,"i":"x"`,
		`{"v":2,"i":"x"}garbage`,
		`{"v":2,"t":"yesterday"}`,
		`{"id":1}`,
	} {
		var k Key
		if err := decodeKey([]byte(raw), &k); err == nil {
			t.Errorf("decodeKey(%s) = %+v, want an error", raw, k)
		}
	}
}

// slowCompact decodes a compact record with encoding/json only.
func slowCompact(raw []byte) (Key, error) {
	var r keyRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return Key{}, err
	}
	k, d := r.key()
	err := d.apply(&k)
	return k, err
}

func FuzzDecodeKey(f *testing.F) {
	k := recordTestKey()
	f.Add(encodeKey(&k))
	k.OwnerKind, k.Lineage, k.ModifiedBy, k.GraceUntil, k.Disabled = OwnerServiceAccount, "", "x", k.CreatedAt.Add(time.Hour), true
	f.Add(encodeKey(&k))
	k.Scopes = []string{}
	f.Add(encodeKey(&k))
	for _, r := range oldRecords {
		f.Add([]byte(r.raw))
	}
	f.Add([]byte(`{"v":2,"i":"a","i":"b"}`))
	f.Add([]byte(`{"id":"a","createdAt":"2024-02-29T23:59:59.5Z","graceUntil":"2023-02-29T00:00:00Z","version":7}`))
	f.Add([]byte(`{}`))
	for _, ts := range []string{"2024-02-29T23:59:59.5Z", "2023-02-29T00:00:00Z", "2025-01-01T24:00:00Z", "2025-01-01T00:00:60Z",
		"2025-01-01T00:00:00.1234567891Z", "2025-01-01t00:00:00z", "2025-01-01T00:00:00+00:00", "0000-01-01T00:00:00Z", "2025-12-31T23:59:59.000000000Z"} {
		f.Add([]byte(`{"id":"suA","createdAt":"` + ts + `"}`))
	}
	f.Add([]byte(`{"v":2,"s":[],"c":["a","b"],"n":-0,"t":0}`))
	f.Add([]byte(`{"v":2,"k":null,"t":1e3}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got Key
		err := decodeKey(raw, &got)
		if isCompact(raw) {
			// The hand-written decoder, when it accepts a record, agrees
			// with encoding/json.
			var fk Key
			var d derivable
			if scanCompact(string(raw), &fk, &d) {
				want, werr := slowCompact(raw)
				if (err == nil) != (werr == nil) || err == nil && !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: decoded %+v, %v; encoding/json %+v, %v", raw, got, err, want, werr)
				}
			}
		}
		if !isCompact(raw) {
			// The hand-written decoder of the full layout, when it
			// accepts a record, agrees with json.Unmarshal into a zero Key.
			var fk Key
			if scanFull(string(raw), &fk) {
				var want Key
				if werr := json.Unmarshal(raw, &want); werr != nil || err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: decoded %+v, %v; encoding/json %+v, %v", raw, got, err, want, werr)
				}
			}
		}
		if err != nil {
			return
		}
		// Whatever decodes is written back faithfully.
		want, ok := jsonRoundTrip(t, &got)
		if !ok {
			return
		}
		var again Key
		if err := decodeKey(encodeKey(&got), &again); err != nil || !reflect.DeepEqual(again, want) {
			t.Fatalf("%s: decoded %+v; written as %s and read back as %+v, %v; want %+v", raw, got, encodeKey(&got), again, err, want)
		}
	})
}

// BenchmarkDecodeKey compares the decoding of a typical record: in the
// compact layout, in the full layout as earlier versions wrote it, and
// the latter with encoding/json alone (what earlier versions did).
func BenchmarkDecodeKey(b *testing.B) {
	k := recordTestKey()
	full, _ := json.Marshal(&k)
	compact := string(encodeKey(&k))
	fullStr := string(full)
	for _, bc := range []struct {
		name   string
		decode func(k *Key) error
	}{
		{"compact", func(k *Key) error { return decodeKeyString(compact, k) }},
		{"full", func(k *Key) error { return decodeKeyString(fullStr, k) }},
		{"full-encoding-json", func(k *Key) error { return json.Unmarshal(full, k) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var out Key
				if err := bc.decode(&out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
