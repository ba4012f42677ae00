package keystore

import (
	"slices"
	"testing"
)

func TestEffectiveScopes(t *testing.T) {
	caps := []string{"manageCollectors", "runLogSearch", "viewCollectors"}
	tests := []struct {
		name      string
		keyScopes []string
		caps      []string
		want      []string
	}{
		{"default scope is every capability", nil, caps, caps},
		{"empty scopes is the default scope", []string{}, caps, caps},
		{"intersection", []string{"viewCollectors", "manageUsersAndRoles", "runLogSearch"}, caps, []string{"runLogSearch", "viewCollectors"}},
		{"sorted and unique", []string{"viewCollectors", "runLogSearch", "viewCollectors"}, caps, []string{"runLogSearch", "viewCollectors"}},
		{"disjoint", []string{"manageOrgSettings"}, caps, []string{}},
		{"owner without capabilities, default scope", nil, nil, nil},
		{"owner without capabilities", []string{"viewCollectors"}, nil, []string{}},
		{"capability removed from owner", []string{"manageCollectors"}, []string{"runLogSearch", "viewCollectors"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EffectiveScopes(tt.keyScopes, tt.caps)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("EffectiveScopes(%q, %q) = %q, want %q", tt.keyScopes, tt.caps, got, tt.want)
			}
			if !slices.IsSorted(got) {
				t.Errorf("EffectiveScopes result %q is not sorted", got)
			}
			if len(got) > 0 && len(tt.caps) > 0 && &got[0] == &tt.caps[0] {
				t.Error("EffectiveScopes returned the capabilities slice itself; callers may modify it")
			}
		})
	}
}

func TestPrincipalCan(t *testing.T) {
	p := principalOf(&Owner{ID: "u", RoleIDs: []string{"r1", "r2", "missing"}, IsActive: true}, map[string]*Role{
		"r1": {ID: "r1", Capabilities: []string{"viewCollectors", "runLogSearch"}},
		"r2": {ID: "r2", Capabilities: []string{"runLogSearch", "createAccessKeys"}},
	})
	if want := []string{"createAccessKeys", "runLogSearch", "viewCollectors"}; !slices.Equal(p.Capabilities, want) {
		t.Fatalf("capabilities = %q, want %q", p.Capabilities, want)
	}
	for c, want := range map[string]bool{"createAccessKeys": true, "viewCollectors": true, "manageAccessKeys": false, "": false} {
		if got := p.Can(c); got != want {
			t.Errorf("Can(%q) = %v, want %v", c, got, want)
		}
	}
}
