package cli

import (
	"strings"
	"testing"

	"github.com/accessgate/accessgate/keystore"
)

func TestCLIRoleAndUserAdd(t *testing.T) {
	c, srv := newCLI(t)
	out := c.ok("role", "add", "--id", "viewers", "--capability", "viewCollectors", "--json")
	role := decodeJSON[keystore.Role](t, out)
	if role.ID != "viewers" || role.Name != "viewers" || strings.Join(role.Capabilities, ",") != "viewCollectors" {
		t.Errorf("role add --json = %+v", role)
	}
	out = c.ok("user", "add", "--id", "bob", "--email", "bob@example.com", "--role", "viewers", "--capability", "runLogSearch", "--capability", "createAccessKeys")
	for _, want := range []string{"User bob", "personal.bob, viewers", "createAccessKeys, runLogSearch, viewCollectors"} {
		if !strings.Contains(out, want) {
			t.Errorf("user add printed %q, want it to contain %q", out, want)
		}
	}
	store := keystore.New(srv.Client(t), keystore.Options{})
	p, err := store.Principal(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Active || p.Kind != keystore.OwnerUser || strings.Join(p.Capabilities, " ") != "createAccessKeys runLogSearch viewCollectors" {
		t.Errorf("principal of bob = %+v", p)
	}
	c.fail([]string{"user", "add", "--id", "carol", "--email", "not-an-email", "--role", "nope", "--capability", "x y"},
		"--email: email must be a valid address", `--role: role "nope" does not exist`, `--capability: invalid capability "x y"`)
	roles, err := store.Roles(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if roles["personal.carol"] != nil {
		t.Error("a refused user add left its personal role behind")
	}
}

// TestCLIRoleAndUserAddAudited: role add and user add go through the
// same checks as the API, and each change they make is in the audit
// stream with the CLI operator.
func TestCLIRoleAndUserAddAudited(t *testing.T) {
	c, srv := newCLI(t)
	store := keystore.New(srv.Client(t), keystore.Options{})
	events := func() []string {
		t.Helper()
		evs, err := store.Events(t.Context(), keystore.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			if e.Operator.ID != "cli:test" || e.Operator.Interface != keystore.InterfaceCLI {
				t.Errorf("event %s has operator %+v, want cli:test (CLI)", e.EventName, e.Operator)
			}
			out = append(out, e.EventName)
		}
		return out
	}
	c.ok("role", "add", "--id", "viewers", "--capability", "viewCollectors", "--name", "Viewers")
	c.fail([]string{"role", "add", "--id", "viewers", "--capability", "runLogSearch"}, "viewers", "--replace")
	c.fail([]string{"role", "add", "--id", "lookers", "--capability", "runLogSearch", "--name", "VIEWERS"}, "a role named")
	out := c.ok("role", "add", "--id", "viewers", "--capability", "viewCollectors", "--capability", "runLogSearch", "--replace", "--json")
	if role := decodeJSON[keystore.Role](t, out); role.Name != "Viewers" || strings.Join(role.Capabilities, ",") != "runLogSearch,viewCollectors" {
		t.Errorf("role add --replace --json = %+v", role)
	}
	c.ok("user", "add", "--id", "bob", "--email", "bob@example.com", "--role", "viewers", "--capability", "createAccessKeys")
	c.ok("user", "add", "--id", "bob", "--email", "robert@example.com", "--role", "viewers", "--capability", "createAccessKeys", "--capability", "runLogSearch")
	c.fail([]string{"user", "add", "--id", "bob", "--email", "bob@example.com", "--first-name", "Bob\x1b[31m"}, "firstName")

	want := []string{
		keystore.EventRoleCreated, keystore.EventRoleUpdated,
		keystore.EventRoleCreated, keystore.EventUserCreated,
		keystore.EventRoleUpdated, keystore.EventUserUpdated,
	}
	if got := events(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audit events %v, want %v", got, want)
	}
	if out := c.ok("audit", "--event", keystore.EventUserUpdated); !strings.Contains(out, keystore.EventUserUpdated) {
		t.Errorf("audit --event %s printed %q", keystore.EventUserUpdated, out)
	}
	p, err := store.Principal(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if p.Email != "robert@example.com" || strings.Join(p.Capabilities, " ") != "createAccessKeys runLogSearch viewCollectors" {
		t.Errorf("principal of bob = %+v", p)
	}
}
