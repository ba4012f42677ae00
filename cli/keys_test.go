package cli

import (
	"strings"
	"testing"

	"github.com/accessgate/accessgate/keystore"
)

func TestCLIKeyLifecycle(t *testing.T) {
	c, _ := newCLI(t)
	setupOwner(c)

	r := c.run("create", "--user", "alice", "--label", "text key")
	if r.err != nil {
		t.Fatal(r.err)
	}
	textID, textSecret := printedField(t, r.out, "Access ID:"), printedField(t, r.out, "Access Key:")
	if !keystore.ValidAccessID(textID) || !keystore.ValidAccessKey(textSecret) {
		t.Errorf("create printed ID %q and key %q", textID, textSecret)
	}
	if !strings.Contains(r.errOut, "cannot be shown again") {
		t.Errorf("create did not warn that the key is shown once: %q", r.errOut)
	}

	out := c.ok("create", "--user", "alice", "--scope", "viewCollectors", "--scope", "runLogSearch", "--cors", "https://A.example.com:443", "--json")
	created := decodeJSON[keystore.AccessKey](t, out)
	raw := decodeJSON[map[string]any](t, out)
	for _, k := range []string{"id", "label", "key", "corsHeaders", "disabled", "scopes", "effectiveScopes", "createdAt", "createdBy", "modifiedAt", "modifiedBy", "lastUsed", "expiresAt", "ownerId"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("create --json lacks %q: %s", k, out)
		}
	}
	switch {
	case !keystore.ValidAccessKey(created.Key):
		t.Errorf("create --json key = %q", created.Key)
	case created.Label != "CLI key" || created.OwnerID != "alice" || created.CreatedBy != "cli:test":
		t.Errorf("create --json = %+v", created)
	case strings.Join(created.Scopes, " ") != "viewCollectors runLogSearch" || strings.Join(created.EffectiveScopes, " ") != "viewCollectors":
		t.Errorf("scopes = %v, effective %v", created.Scopes, created.EffectiveScopes)
	case strings.Join(created.CORSHeaders, " ") != "https://a.example.com":
		t.Errorf("corsHeaders = %v", created.CORSHeaders)
	}

	listed := decodeJSON[struct{ Data []keystore.AccessKey }](t, c.ok("list", "--json"))
	if len(listed.Data) != 2 {
		t.Fatalf("list --json has %d keys, want 2", len(listed.Data))
	}
	all := c.ok("list", "--json") + c.ok("list") + c.ok("list", "--user", "alice")
	for _, secret := range []string{textSecret, created.Key} {
		if strings.Contains(all, secret) {
			t.Error("list printed a secret")
		}
	}
	for _, k := range listed.Data {
		if k.Key != "" {
			t.Errorf("list --json key = %q, want \"\"", k.Key)
		}
	}
	table := c.ok("list", "--user", "alice")
	for _, want := range []string{"ID", "LAST USED", "EXPIRES AT", textID, "text key", "alice", "active", "never", "default", "viewCollectors runLogSearch"} {
		if !strings.Contains(table, want) {
			t.Errorf("list table lacks %q:\n%s", want, table)
		}
	}

	c.ok("disable", created.ID)
	if k := findKey(t, c, created.ID); !k.Disabled || k.Status != keystore.StatusDeactivated {
		t.Errorf("after disable: %+v", k)
	}
	if out := c.ok("enable", created.ID); !strings.Contains(out, "is active") {
		t.Errorf("enable printed %q", out)
	}
	if k := findKey(t, c, created.ID); k.Disabled || k.Status != keystore.StatusActive {
		t.Errorf("after enable: %+v", k)
	}

	rotated := decodeJSON[keystore.AccessKey](t, c.ok("rotate", created.ID, "--json"))
	if rotated.ID == created.ID || !keystore.ValidAccessKey(rotated.Key) || rotated.Key == created.Key {
		t.Errorf("rotate gave %+v", rotated)
	}
	if strings.Join(rotated.Scopes, " ") != "viewCollectors runLogSearch" || rotated.Label != created.Label {
		t.Errorf("rotate lost settings: %+v", rotated)
	}

	c.ok("delete", rotated.ID)
	listed = decodeJSON[struct{ Data []keystore.AccessKey }](t, c.ok("list", "--json"))
	if len(listed.Data) != 1 || listed.Data[0].ID != textID {
		t.Errorf("after rotate and delete, list = %+v", listed.Data)
	}
}

// printedField returns the value printed after label on a line of out.
func printedField(t *testing.T, out, label string) string {
	t.Helper()
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(line, label); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q in %q", label, out)
	return ""
}

func findKey(t *testing.T, c runner, id string) keystore.AccessKey {
	t.Helper()
	listed := decodeJSON[struct{ Data []keystore.AccessKey }](t, c.ok("list", "--json"))
	for _, k := range listed.Data {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("key %s not listed", id)
	return keystore.AccessKey{}
}

// TestCLICutsOffRotatedKeyDuringGrace: disable and delete still reach
// the old Access ID of a rotation during its grace, and it stops working.
func TestCLICutsOffRotatedKeyDuringGrace(t *testing.T) {
	c, srv := newCLI(t)
	setupOwner(c)
	store := keystore.New(srv.Client(t), keystore.Options{})
	for _, verb := range []string{"disable", "delete"} {
		created := decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--json"))
		rotated := decodeJSON[keystore.AccessKey](t, c.ok("rotate", created.ID, "--json"))
		if _, err := store.Verify(t.Context(), created.ID, created.Key, keystore.VerifyOptions{}); err != nil {
			t.Fatalf("the old key does not work in its grace: %v", err)
		}
		c.ok(verb, created.ID)
		if _, err := store.Verify(t.Context(), created.ID, created.Key, keystore.VerifyOptions{}); err == nil {
			t.Errorf("the old key still works after %s", verb)
		}
		if _, err := store.Verify(t.Context(), rotated.ID, rotated.Key, keystore.VerifyOptions{}); err != nil {
			t.Errorf("the new key stopped working after %s of the old one: %v", verb, err)
		}
		c.fail([]string{verb, created.ID}, "does not exist")
	}
}
