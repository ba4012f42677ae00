package mgmtapi_test

import (
	"context"
	"net/http"
	"testing"
)

// TestAPINoReplicasRefused: a master configured min-replicas-to-write 1
// (README, "Redis persistence for production") without a replica refuses
// writes with NOREPLICAS, as an old master does after Sentinel promoted
// its replica. The management API answers such a refused change 503 in
// body B and changes nothing; reads still work, and once the master may
// write again, the change is made.
func TestAPINoReplicasRefused(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	target := f.key(t, "bob", nil)
	minReplicas := func(n string) {
		t.Helper()
		if err := f.rdb.ConfigSet(ctx, "min-replicas-to-write", n).Err(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, method, path string
		body               map[string]any
		// by makes the request; the admin if nil.
		by *cred
	}{
		{"key creation", http.MethodPost, "/accessKeys", map[string]any{"label": "refused"}, nil},
		{"key deactivation", http.MethodPut, "/accessKeys/" + target.id, map[string]any{"disabled": true}, nil},
		{"key deletion", http.MethodDelete, "/accessKeys/" + target.id, nil, nil},
		{"key rotation", http.MethodPut, "/accessKeys/" + f.admin2.id + "/rotate", nil, &f.admin2},
		{"policy change", http.MethodPut, "/policies/accessKeysLifetime", map[string]any{"accessKeysLifetimeInDays": 60}, nil},
	}
	minReplicas("1")
	for _, tt := range tests {
		f.unchanged(t, func() {
			by := tt.by
			if by == nil {
				by = &f.admin
			}
			f.do(t, tt.method, tt.path, by, tt.body).fails(t, http.StatusServiceUnavailable, "service.unavailable")
		})
	}
	f.do(t, http.MethodGet, "/accessKeys/"+target.id, &f.admin, nil).ok(t, http.StatusOK)
	if got := f.gateStatus(t, target); got != http.StatusOK {
		t.Errorf("the key whose deactivation was refused: status %d through the gateway, want 200", got)
	}
	minReplicas("0")
	f.do(t, http.MethodPut, "/accessKeys/"+target.id, &f.admin, map[string]any{"disabled": true}).ok(t, http.StatusOK)
	if got := f.gateStatus(t, target); got != http.StatusUnauthorized {
		t.Errorf("the deactivated key: status %d through the gateway, want 401", got)
	}
}
