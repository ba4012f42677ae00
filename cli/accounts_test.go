package cli

import (
	"strings"
	"testing"

	"github.com/accessgate/accessgate/keystore"
)

// auditedSince returns the names of the events written after the first
// skip, checking that each was made by the CLI operator.
func auditedSince(t *testing.T, store *keystore.Store, skip int) []string {
	t.Helper()
	evs, err := store.Events(t.Context(), keystore.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs[min(skip, len(evs)):] {
		if e.Operator.ID != "cli:test" || e.Operator.Interface != keystore.InterfaceCLI {
			t.Errorf("event %s has operator %+v, want cli:test (CLI)", e.EventName, e.Operator)
		}
		out = append(out, e.EventName)
	}
	return out
}

func eventCount(t *testing.T, store *keystore.Store) int {
	t.Helper()
	evs, err := store.Events(t.Context(), keystore.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func wantEvents(t *testing.T, store *keystore.Store, skip int, want ...string) {
	t.Helper()
	if got := auditedSince(t, store, skip); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audit events %v, want %v", got, want)
	}
}

func TestCLIRoleListAndDelete(t *testing.T) {
	c, srv := newCLI(t)
	store := keystore.New(srv.Client(t), keystore.Options{})
	if out := c.ok("role", "list"); !strings.Contains(out, "No roles.") {
		t.Errorf("role list of none printed %q", out)
	}
	setupOwner(c)
	c.ok("role", "add", "--id", "spare", "--capability", "runLogSearch", "--name", "Spare", "--description", "unused")

	table := c.ok("role", "list")
	for _, want := range []string{"ID", "CAPABILITIES", "collectors", "manageCollectors, viewCollectors", "personal.alice", "spare", "Spare", "runLogSearch"} {
		if !strings.Contains(table, want) {
			t.Errorf("role list lacks %q:\n%s", want, table)
		}
	}
	listed := decodeJSON[struct{ Data []map[string]any }](t, c.ok("role", "list", "--json"))
	var ids []string
	for _, r := range listed.Data {
		ids = append(ids, r["id"].(string))
		for _, k := range []string{"id", "name", "description", "capabilities"} {
			if _, ok := r[k]; !ok {
				t.Errorf("role list --json entry lacks %q: %v", k, r)
			}
		}
	}
	if strings.Join(ids, " ") != "collectors personal.alice spare" {
		t.Errorf("role list --json ids = %v", ids)
	}

	before := eventCount(t, store)
	c.fail([]string{"role", "delete", "collectors"}, "held by 1 users", "alice")
	c.fail([]string{"role", "delete", "nope"}, `role "nope" does not exist`)
	if out := c.ok("role", "delete", "spare"); !strings.Contains(out, "Role spare deleted.") {
		t.Errorf("role delete printed %q", out)
	}
	c.ok("user", "add", "--id", "alice", "--email", "alice@example.com")
	got := decodeJSON[map[string]any](t, c.ok("role", "delete", "collectors", "--json"))
	if got["id"] != "collectors" || got["deleted"] != true {
		t.Errorf("role delete --json = %v", got)
	}
	wantEvents(t, store, before, keystore.EventRoleDeleted, keystore.EventUserUpdated, keystore.EventRoleDeleted)
	roles, err := store.Roles(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if roles["spare"] != nil || roles["collectors"] != nil {
		t.Errorf("roles left after delete: %v", roles)
	}
}

func TestCLIUserVerbs(t *testing.T) {
	c, srv := newCLI(t)
	store := keystore.New(srv.Client(t), keystore.Options{})
	if out := c.ok("user", "list"); !strings.Contains(out, "No users.") {
		t.Errorf("user list of none printed %q", out)
	}
	setupOwner(c)
	c.ok("user", "add", "--id", "bob", "--email", "bob@example.com")
	c.ok("service-account", "add", "--id", "robot", "--name", "Robot")

	table := c.ok("user", "list")
	for _, want := range []string{"EMAIL", "STATE", "alice", "alice@example.com", "collectors, personal.alice", "bob", "active"} {
		if !strings.Contains(table, want) {
			t.Errorf("user list lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "robot") {
		t.Errorf("user list shows a service account:\n%s", table)
	}
	users := decodeJSON[struct{ Data []map[string]any }](t, c.ok("user", "list", "--json"))
	if len(users.Data) != 2 || users.Data[0]["id"] != "alice" || users.Data[0]["firstName"] != "Alice" || users.Data[1]["isActive"] != true {
		t.Errorf("user list --json = %v", users.Data)
	}

	key := decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--json"))
	before := eventCount(t, store)
	if out := c.ok("user", "disable", "alice"); !strings.Contains(out, "User alice is inactive.") {
		t.Errorf("user disable printed %q", out)
	}
	if k := findKey(t, c, key.ID); len(k.EffectiveScopes) != 0 {
		t.Errorf("key of a disabled user has effective scopes %v", k.EffectiveScopes)
	}
	if !strings.Contains(c.ok("user", "list"), "inactive") {
		t.Error("user list does not show alice inactive")
	}
	enabled := decodeJSON[map[string]any](t, c.ok("user", "enable", "alice", "--json"))
	if enabled["id"] != "alice" || enabled["isActive"] != true {
		t.Errorf("user enable --json = %v", enabled)
	}
	if k := findKey(t, c, key.ID); len(k.EffectiveScopes) == 0 {
		t.Error("key of an enabled user has no effective scopes")
	}

	c.fail([]string{"user", "delete", "alice"}, `user "alice" owns access keys`, "--delete-keys")
	if _, err := store.Key(t.Context(), key.ID); err != nil {
		t.Errorf("a refused user delete touched the key: %v", err)
	}
	if out := c.ok("user", "delete", "bob"); !strings.Contains(out, "User bob deleted with 0 access keys.") {
		t.Errorf("user delete printed %q", out)
	}
	got := decodeJSON[map[string]any](t, c.ok("user", "delete", "alice", "--delete-keys", "--json"))
	if got["id"] != "alice" || got["deleted"] != true || got["deletedAccessKeys"] != float64(1) {
		t.Errorf("user delete --json = %v", got)
	}
	wantEvents(t, store, before, keystore.EventUserUpdated, keystore.EventUserUpdated,
		keystore.EventUserDeleted, keystore.EventKeyDeleted, keystore.EventUserDeleted)
	if _, err := store.Key(t.Context(), key.ID); err == nil {
		t.Error("user delete --delete-keys left the key")
	}

	for _, args := range [][]string{
		{"user", "disable", "nobody"}, {"user", "enable", "nobody"}, {"user", "delete", "nobody"}, {"user", "disable", "robot"},
	} {
		c.fail(args, `user "`+args[2]+`" does not exist`)
	}
}

func TestCLIServiceAccountVerbs(t *testing.T) {
	c, srv := newCLI(t)
	store := keystore.New(srv.Client(t), keystore.Options{})
	if out := c.ok("service-account", "list"); !strings.Contains(out, "No service accounts.") {
		t.Errorf("service-account list of none printed %q", out)
	}
	setupOwner(c)
	before := eventCount(t, store)
	out := c.ok("service-account", "add", "--id", "robot", "--name", "Robot", "--role", "collectors")
	for _, want := range []string{"Service account robot (Robot) created", "Roles: collectors", "manageCollectors, viewCollectors"} {
		if !strings.Contains(out, want) {
			t.Errorf("service-account add printed %q, want %q", out, want)
		}
	}
	sa := decodeJSON[map[string]any](t, c.ok("service-account", "add", "--id", "etl", "--name", "ETL", "--email", "etl@example.com", "--json"))
	for k, want := range map[string]any{"id": "etl", "name": "ETL", "email": "etl@example.com", "isActive": true, "createdBy": "cli:test"} {
		if sa[k] != want {
			t.Errorf("service-account add --json %s = %v, want %v", k, sa[k], want)
		}
	}
	c.fail([]string{"service-account", "add", "--id", "alice", "--name", "Alice"}, "already in use")
	c.fail([]string{"service-account", "add", "--id", "x", "--name", "X", "--role", "nope"}, `--role: role "nope" does not exist`)
	c.fail([]string{"service-account", "add", "--id", "x"}, `"name" not set`)

	table := c.ok("service-account", "list")
	for _, want := range []string{"NAME", "robot", "Robot", "collectors", "etl", "ETL", "active"} {
		if !strings.Contains(table, want) {
			t.Errorf("service-account list lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "alice") {
		t.Errorf("service-account list shows a user:\n%s", table)
	}
	listed := decodeJSON[struct{ Data []map[string]any }](t, c.ok("service-account", "list", "--json"))
	if len(listed.Data) != 2 || listed.Data[0]["id"] != "etl" || listed.Data[1]["email"] != "robot@service-account.invalid" {
		t.Errorf("service-account list --json = %v", listed.Data)
	}

	key := decodeJSON[keystore.AccessKey](t, c.ok("create", "--service-account", "robot", "--scope", "viewCollectors", "--json"))
	if key.OwnerID != "robot" || strings.Join(key.EffectiveScopes, " ") != "viewCollectors" {
		t.Errorf("create --service-account = %+v", key)
	}
	c.fail([]string{"create", "--service-account", "alice"}, `service account "alice" does not exist; "alice" is a user: use --user`)
	c.fail([]string{"create", "--user", "robot"}, `user "robot" does not exist; "robot" is a service account: use --service-account`)
	c.fail([]string{"create", "--service-account", "nobody"}, `service account "nobody" does not exist`)
	c.fail([]string{"create", "--user", "alice", "--service-account", "robot"}, "exactly one of --user or --service-account")
	c.fail([]string{"create"}, "exactly one of --user or --service-account")

	if out := c.ok("service-account", "delete", "etl"); !strings.Contains(out, "Service account etl deleted with 0 access keys.") {
		t.Errorf("service-account delete printed %q", out)
	}
	got := decodeJSON[map[string]any](t, c.ok("service-account", "delete", "robot", "--json"))
	if got["id"] != "robot" || got["deletedAccessKeys"] != float64(1) {
		t.Errorf("service-account delete --json = %v", got)
	}
	c.fail([]string{"service-account", "delete", "robot"}, `service account "robot" does not exist`)
	c.fail([]string{"service-account", "delete", "alice"}, `service account "alice" does not exist`)
	wantEvents(t, store, before, keystore.EventServiceAccountCreated, keystore.EventServiceAccountCreated,
		keystore.EventKeyCreated, keystore.EventServiceAccountDeleted,
		keystore.EventKeyDeleted, keystore.EventServiceAccountDeleted)
	if _, err := store.Key(t.Context(), key.ID); err == nil {
		t.Error("service-account delete left its key")
	}
}
