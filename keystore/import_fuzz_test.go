package keystore

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzParseRecord: whatever a line of an import file holds, parseRecord
// never panics, and a record it accepts encodes to a line it accepts
// again, as the same record.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"kind":"end","records":3}`))
	f.Add([]byte(`{"kind":"policies","policies":{"lifetimeDays":90,"lifetimeSetAt":"2026-01-02T03:04:05.678Z"}}`))
	f.Add([]byte(`{"kind":"role","role":{"id":"viewer","name":"Viewer","description":"","capabilities":["viewCollectors"],"createdAt":"2026-01-02T03:04:05Z","createdBy":"a","modifiedAt":"2026-01-02T03:04:05Z","modifiedBy":"a"}}`))
	f.Add([]byte(`{"kind":"owner","owner":{"id":"alice","kind":"user","email":"a@example.com","roleIds":["viewer"],"isActive":true,"createdAt":"2026-01-02T03:04:05Z","createdBy":"a","modifiedAt":"2026-01-02T03:04:05Z","modifiedBy":"a"}}`))
	f.Add([]byte(`{"kind":"key","key":{"id":"suAAAAAAAAAAAA","secretHash":"` + HashSecret("x") + `","label":"k","ownerId":"alice","ownerKind":"user","corsHeaders":["https://a.example.com"],"disabled":false,"createdAt":"2026-01-02T03:04:05Z","createdBy":"a","modifiedAt":"2026-01-02T03:04:05Z","modifiedBy":"a","issuedAt":"2026-01-02T03:04:05Z","activatedAt":"2026-01-02T03:04:05Z","version":1,"replacedBy":"suBBBBBBBBBBBB","graceUntil":"2026-01-02T03:09:05Z"},"recordExpiresAt":"2026-01-02T03:09:06Z"}`))
	f.Add([]byte(`{"kind":"key","key":null}`))
	f.Add([]byte(`null`))
	now := time.Now()
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := parseRecord(line, now)
		if err != nil {
			return
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("accepted record does not encode: %v", err)
		}
		again, err := parseRecord(b, now)
		if err != nil {
			t.Fatalf("accepted %s, refused its encoding %s: %v", line, b, err)
		}
		if b2, _ := json.Marshal(again); string(b2) != string(b) {
			t.Fatalf("record changed through an encoding:\n%s\n%s", b, b2)
		}
	})
}
