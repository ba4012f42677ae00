package keystore

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestTimestampJSON(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"zero is null", time.Time{}, `null`},
		{"milliseconds always written", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), `"2025-01-02T03:04:05.000Z"`},
		{"sub-millisecond truncated", time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC), `"2025-01-02T03:04:05.123Z"`},
		{"converted to UTC", time.Date(2025, 1, 2, 3, 4, 5, 7e6, time.FixedZone("X", 2*3600)), `"2025-01-02T01:04:05.007Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(Timestamp{tt.in})
			if err != nil || string(b) != tt.want {
				t.Fatalf("Marshal = %s, %v; want %s", b, err, tt.want)
			}
			var back Timestamp
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if !back.Equal(tt.in.Truncate(time.Millisecond)) {
				t.Errorf("round trip of %v gave %v", tt.in, back.Time)
			}
		})
	}
	var ts = Timestamp{time.Now()}
	if err := json.Unmarshal([]byte(`null`), &ts); err != nil || !ts.IsZero() {
		t.Errorf("Unmarshal(null) = %v, %v; want zero", ts.Time, err)
	}
	if err := json.Unmarshal([]byte(`"yesterday"`), &ts); err == nil {
		t.Error("Unmarshal accepted a non-time")
	}
}

func TestView(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	pol := Policies{LifetimeDays: 180, UnusedDays: 30}
	base := Key{
		ID: "su0123456789AB", SecretHash: HashSecret("x"), Label: "ci", OwnerID: "U1", OwnerKind: OwnerUser,
		Scopes: []string{"viewCollectors", "manageAccessKeys"}, CORSHeaders: []string{"https://a.example.com"},
		CreatedAt: t0, CreatedBy: "admin", ModifiedAt: t0.Add(time.Hour), ModifiedBy: "bob",
		IssuedAt: t0, ActivatedAt: t0, Version: 3,
	}
	active := &Principal{ID: "U1", Kind: OwnerUser, Active: true, Capabilities: []string{"runLogSearch", "viewCollectors"}}
	inactive := &Principal{ID: "U1", Kind: OwnerUser, Active: false, Capabilities: active.Capabilities}
	with := func(f func(k *Key)) *Key { k := base; f(&k); return &k }

	tests := []struct {
		name      string
		k         *Key
		p         *Principal
		secret    string
		now       time.Time
		status    string
		disabled  bool
		effective []string
		saID      string
		key       string
	}{
		{"active user key", &base, active, "", t0, StatusActive, false, []string{"viewCollectors"}, "", ""},
		{"with secret after create", &base, active, "SECRET", t0, StatusActive, false, []string{"viewCollectors"}, "", "SECRET"},
		{"deactivated", with(func(k *Key) { k.Disabled, k.DisabledReason = true, DisabledManual }), active, "", t0, StatusDeactivated, true, []string{"viewCollectors"}, "", ""},
		{"deactivated unused", with(func(k *Key) { k.Disabled, k.DisabledReason = true, DisabledUnused }), active, "", t0, StatusDeactivated, true, []string{"viewCollectors"}, "", ""},
		{"marked expired", with(func(k *Key) { k.Disabled, k.DisabledReason = true, DisabledExpired }), active, "", t0, StatusExpired, true, []string{"viewCollectors"}, "", ""},
		{"expired by time", &base, active, "", t0.Add(180 * day), StatusExpired, true, []string{"viewCollectors"}, "", ""},
		{"one millisecond before expiry", &base, active, "", t0.Add(180*day - time.Millisecond), StatusActive, false, []string{"viewCollectors"}, "", ""},
		{"owner inactive", &base, inactive, "", t0, StatusActive, false, []string{}, "", ""},
		{"owner unknown", &base, nil, "", t0, StatusActive, false, []string{}, "", ""},
		{"service account", with(func(k *Key) { k.OwnerID, k.OwnerKind = "SA1", OwnerServiceAccount }), active, "", t0, StatusActive, false, []string{"viewCollectors"}, "SA1", ""},
		{"default scope", with(func(k *Key) { k.Scopes = nil }), active, "", t0, StatusActive, false, []string{"runLogSearch", "viewCollectors"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := View(tt.k, pol, time.Time{}, tt.p, tt.secret, tt.now)
			if v.Status != tt.status || v.Disabled != tt.disabled {
				t.Errorf("status, disabled = %q, %v; want %q, %v", v.Status, v.Disabled, tt.status, tt.disabled)
			}
			if strings.Join(v.EffectiveScopes, " ") != strings.Join(tt.effective, " ") || v.EffectiveScopes == nil {
				t.Errorf("effectiveScopes = %#v, want %#v", v.EffectiveScopes, tt.effective)
			}
			if v.ServiceAccountID != tt.saID {
				t.Errorf("serviceAccountId = %q, want %q", v.ServiceAccountID, tt.saID)
			}
			if v.Key != tt.key {
				t.Errorf("key = %q, want %q", v.Key, tt.key)
			}
			if v.ID != tt.k.ID || v.Label != tt.k.Label || v.OwnerID != tt.k.OwnerID || v.CreatedBy != "admin" || v.ModifiedBy != "bob" {
				t.Errorf("identity fields wrong: %+v", v)
			}
			if !v.ExpiresAt.Equal(t0.Add(180 * day)) {
				t.Errorf("expiresAt = %v", v.ExpiresAt.Time)
			}

			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"id", "label", "key", "corsHeaders", "disabled", "scopes", "effectiveScopes", "createdAt", "createdBy", "modifiedAt", "modifiedBy", "lastUsed", "expiresAt", "ownerId"} {
				if _, ok := m[f]; !ok {
					t.Errorf("JSON lacks %q: %s", f, b)
				}
			}
			if _, ok := m["serviceAccountId"]; ok != (tt.saID != "") {
				t.Errorf("serviceAccountId present = %v, want %v: %s", ok, tt.saID != "", b)
			}
			if m["lastUsed"] != nil {
				t.Errorf("lastUsed = %v, want null", m["lastUsed"])
			}
			if m["createdAt"] != "2025-03-01T12:00:00.000Z" {
				t.Errorf("createdAt = %v", m["createdAt"])
			}
			for _, secretish := range []string{"secretHash", tt.k.SecretHash} {
				if strings.Contains(string(b), secretish) {
					t.Errorf("JSON contains %q: %s", secretish, b)
				}
			}
		})
	}
}

func TestViewNeverExpiresAndLists(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	k := &Key{ID: "su0123456789AB", Label: "x", OwnerID: "U1", OwnerKind: OwnerUser, IssuedAt: t0, ActivatedAt: t0}
	used := t0.Add(time.Hour + 5*time.Millisecond)
	v := View(k, Policies{}, used, nil, "", t0.Add(10000*day))
	b, _ := json.Marshal(v)
	got := string(b)
	for _, want := range []string{`"expiresAt":null`, `"corsHeaders":[]`, `"scopes":[]`, `"effectiveScopes":[]`, `"key":""`, `"lastUsed":"2025-03-01T13:00:00.005Z"`, `"status":"active"`} {
		if !strings.Contains(got, want) {
			t.Errorf("JSON %s lacks %s", got, want)
		}
	}
}
