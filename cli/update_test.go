package cli

import (
	"strings"
	"testing"

	"github.com/accessgate/accessgate/keystore"
)

func TestCLIUpdate(t *testing.T) {
	c, srv := newCLI(t)
	store := keystore.New(srv.Client(t), keystore.Options{})
	setupOwner(c)
	k := decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--label", "ci", "--scope", "viewCollectors", "--cors", "https://a.example.com", "--json"))
	before := eventCount(t, store)

	out := c.ok("update", k.ID, "--label", "deploy")
	for _, want := range []string{"Access key " + k.ID + " updated.", "Label:     deploy", "Scopes:    viewCollectors", "Allowlist: https://a.example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("update --label printed %q, want %q", out, want)
		}
	}
	got := decodeJSON[keystore.AccessKey](t, c.ok("update", k.ID, "--scope", "viewCollectors", "--scope", "manageCollectors", "--json"))
	if got.Label != "deploy" || strings.Join(got.Scopes, " ") != "viewCollectors manageCollectors" ||
		strings.Join(got.CORSHeaders, " ") != "https://a.example.com" || got.Key != "" || got.ModifiedBy != "cli:test" {
		t.Errorf("update --scope --json = %+v", got)
	}
	got = decodeJSON[keystore.AccessKey](t, c.ok("update", k.ID, "--scope", "none", "--cors", "none", "--json"))
	if got.Label != "deploy" || len(got.Scopes) != 0 || len(got.CORSHeaders) != 0 || len(got.EffectiveScopes) != 3 {
		t.Errorf("update --scope none --cors none = %+v", got)
	}
	c.ok("update", k.ID, "--cors", "none")

	unknown := "su" + strings.Repeat("A", 12)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown key", []string{"update", unknown, "--label", "x"}, []string{`access key "` + unknown + `" does not exist`}},
		{"nothing given", []string{"update", k.ID}, []string{"nothing to change"}},
		{"scope outside the catalogue", []string{"update", k.ID, "--scope", "viewCollectors", "--scope", "launchRockets"},
			[]string{`--scope: scope "launchRockets" is not in the scope catalogue`}},
		{"none with others", []string{"update", k.ID, "--scope", "none", "--scope", "viewCollectors"}, []string{`"none" clears a list and must be given alone`}},
		{"every problem", []string{"update", k.ID, "--label", " ", "--cors", "http://a.example.com"}, []string{"--label: label is required", "--cors: "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := c
			sub.t = t
			sub.fail(tc.args, tc.want...)
		})
	}
	wantEvents(t, store, before, keystore.EventKeyUpdated, keystore.EventKeyUpdated, keystore.EventKeyUpdated)
	if k := findKey(t, c, k.ID); k.Label != "deploy" || len(k.Scopes) != 0 {
		t.Errorf("after refused updates: %+v", k)
	}
}

// TestCLICreateRefusesScopesOutsideCatalogue: the CLI does not know the
// scopes a running configuration's route rules add, so it takes only the
// catalogue's, and writes nothing when one is not there.
func TestCLICreateRefusesScopesOutsideCatalogue(t *testing.T) {
	c, srv := newCLI(t)
	store := keystore.New(srv.Client(t), keystore.Options{})
	setupOwner(c)
	before := eventCount(t, store)
	c.fail([]string{"create", "--user", "alice", "--scope", "viewCollectors", "--scope", "launchRockets", "--scope", "manageWidgets"},
		`--scope: scope "launchRockets" is not in the scope catalogue`, `--scope: scope "manageWidgets" is not in the scope catalogue`)
	if keys, err := store.KeysOfOwner(t.Context(), "alice"); err != nil || len(keys) != 0 {
		t.Errorf("a refused create left keys %v (%v)", keys, err)
	}
	wantEvents(t, store, before)
	for _, d := range keystore.ScopeCatalogue() {
		c.ok("create", "--user", "alice", "--scope", d.ID)
	}
	r := runCLI(t, "create", "--help")
	if !strings.Contains(r.out, "/accessKeys/scopes") || !strings.Contains(r.out, "not known here") {
		t.Errorf("create --help does not say which scopes it takes:\n%s", r.out)
	}
}
