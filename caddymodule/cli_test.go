package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// cliResult is what one run of the command printed and returned.
type cliResult struct {
	out, errOut string
	err         error
}

// runCLI runs `caddy access-keys args...` in-process on a fresh command
// tree, built by the function that is registered with Caddy.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	cmd := &cobra.Command{Use: "access-keys"}
	buildAccessKeysCommand(cmd)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return cliResult{out: out.String(), errOut: errOut.String(), err: err}
}

// cliOn runs verbs against one Redis server.
type cliOn struct {
	t   *testing.T
	url string
}

func newCLI(t *testing.T) (cliOn, *redistest.Server) {
	srv := redistest.Start(t)
	return cliOn{t: t, url: srv.URL()}, srv
}

func (c cliOn) run(args ...string) cliResult {
	c.t.Helper()
	return runCLI(c.t, append(args, "--redis", c.url, "--operator", "cli:test")...)
}

// ok runs a verb that must succeed and returns what it printed.
func (c cliOn) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.err != nil {
		c.t.Fatalf("access-keys %s: %v\n%s", strings.Join(args, " "), r.err, r.errOut)
	}
	return r.out
}

// fail runs a verb that must fail with an error containing every want.
func (c cliOn) fail(args []string, want ...string) {
	c.t.Helper()
	r := c.run(args...)
	if r.err == nil {
		c.t.Fatalf("access-keys %s succeeded, want an error; printed:\n%s", strings.Join(args, " "), r.out)
	}
	for _, w := range want {
		if !strings.Contains(r.err.Error(), w) {
			c.t.Errorf("access-keys %s: error %q does not contain %q", strings.Join(args, " "), r.err, w)
		}
	}
}

func cliDecodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return v
}

// cliSetupOwner adds a role and a user holding it plus a personal capability.
func cliSetupOwner(c cliOn) {
	c.t.Helper()
	c.ok("role", "add", "--id", "collectors", "--capability", "viewCollectors", "--capability", "manageCollectors", "--name", "Collectors")
	c.ok("user", "add", "--id", "alice", "--email", "alice@example.com", "--role", "collectors", "--capability", "createAccessKeys", "--first-name", "Alice")
}

func TestCLIRoleAndUserAdd(t *testing.T) {
	c, srv := newCLI(t)
	out := c.ok("role", "add", "--id", "viewers", "--capability", "viewCollectors", "--json")
	role := cliDecodeJSON[keystore.Role](t, out)
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

func TestCLIKeyLifecycle(t *testing.T) {
	c, _ := newCLI(t)
	cliSetupOwner(c)

	r := c.run("create", "--user", "alice", "--label", "text key")
	if r.err != nil {
		t.Fatal(r.err)
	}
	textID, textSecret := cliField(t, r.out, "Access ID:"), cliField(t, r.out, "Access Key:")
	if !keystore.ValidAccessID(textID) || !keystore.ValidAccessKey(textSecret) {
		t.Errorf("create printed ID %q and key %q", textID, textSecret)
	}
	if !strings.Contains(r.errOut, "cannot be shown again") {
		t.Errorf("create did not warn that the key is shown once: %q", r.errOut)
	}

	out := c.ok("create", "--user", "alice", "--scope", "viewCollectors", "--scope", "runLogSearch", "--cors", "https://A.example.com:443", "--json")
	created := cliDecodeJSON[keystore.AccessKey](t, out)
	raw := cliDecodeJSON[map[string]any](t, out)
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
	case strings.Join(created.Scopes, " ") != "runLogSearch viewCollectors" || strings.Join(created.EffectiveScopes, " ") != "viewCollectors":
		t.Errorf("scopes = %v, effective %v", created.Scopes, created.EffectiveScopes)
	case strings.Join(created.CORSHeaders, " ") != "https://a.example.com":
		t.Errorf("corsHeaders = %v", created.CORSHeaders)
	}

	listed := cliDecodeJSON[struct{ Data []keystore.AccessKey }](t, c.ok("list", "--json"))
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
	for _, want := range []string{"ID", "LAST USED", "EXPIRES AT", textID, "text key", "alice", "active", "never", "default", "runLogSearch viewCollectors"} {
		if !strings.Contains(table, want) {
			t.Errorf("list table lacks %q:\n%s", want, table)
		}
	}

	c.ok("disable", created.ID)
	if k := cliFindKey(t, c, created.ID); !k.Disabled || k.Status != keystore.StatusDeactivated {
		t.Errorf("after disable: %+v", k)
	}
	if out := c.ok("enable", created.ID); !strings.Contains(out, "is active") {
		t.Errorf("enable printed %q", out)
	}
	if k := cliFindKey(t, c, created.ID); k.Disabled || k.Status != keystore.StatusActive {
		t.Errorf("after enable: %+v", k)
	}

	rotated := cliDecodeJSON[keystore.AccessKey](t, c.ok("rotate", created.ID, "--json"))
	if rotated.ID == created.ID || !keystore.ValidAccessKey(rotated.Key) || rotated.Key == created.Key {
		t.Errorf("rotate gave %+v", rotated)
	}
	if strings.Join(rotated.Scopes, " ") != "runLogSearch viewCollectors" || rotated.Label != created.Label {
		t.Errorf("rotate lost settings: %+v", rotated)
	}

	c.ok("delete", rotated.ID)
	listed = cliDecodeJSON[struct{ Data []keystore.AccessKey }](t, c.ok("list", "--json"))
	if len(listed.Data) != 1 || listed.Data[0].ID != textID {
		t.Errorf("after rotate and delete, list = %+v", listed.Data)
	}
}

// cliField returns the value printed after label on a line of out.
func cliField(t *testing.T, out, label string) string {
	t.Helper()
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(line, label); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q in %q", label, out)
	return ""
}

func cliFindKey(t *testing.T, c cliOn, id string) keystore.AccessKey {
	t.Helper()
	listed := cliDecodeJSON[struct{ Data []keystore.AccessKey }](t, c.ok("list", "--json"))
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
	cliSetupOwner(c)
	store := keystore.New(srv.Client(t), keystore.Options{})
	for _, verb := range []string{"disable", "delete"} {
		created := cliDecodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--json"))
		rotated := cliDecodeJSON[keystore.AccessKey](t, c.ok("rotate", created.ID, "--json"))
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

func TestCLIErrors(t *testing.T) {
	c, _ := newCLI(t)
	cliSetupOwner(c)
	unknown := "su" + strings.Repeat("A", 12)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown key disable", []string{"disable", unknown}, []string{`access key "` + unknown + `" does not exist`}},
		{"unknown key enable", []string{"enable", unknown}, []string{"does not exist"}},
		{"unknown key rotate", []string{"rotate", unknown}, []string{"does not exist"}},
		{"unknown key delete", []string{"delete", "nonsense"}, []string{`access key "nonsense" does not exist`}},
		{"unknown owner", []string{"create", "--user", "nobody"}, []string{`user or service account "nobody" does not exist`}},
		{"list unknown owner", []string{"list", "--user", "nobody"}, []string{"does not exist"}},
		{"every problem", []string{"create", "--user", "alice", "--label", " ", "--cors", "http://a.example.com", "--scope", "bad scope"},
			[]string{"invalid input:", "--label: label is required", "--cors: ", "--scope: invalid scope"}},
		{"missing flag", []string{"create"}, []string{`"user" not set`}},
		{"bad role", []string{"role", "add", "--id", "r", "--capability", "a b"}, []string{"--capability: invalid capability"}},
		{"disguised label", []string{"create", "--user", "alice", "--label", "invoice\u202efdp.exe"}, []string{"--label: label must be printable text"}},
		{"disguised role name", []string{"role", "add", "--id", "r", "--name", "x\u2066y"}, []string{"name must be printable text"}},
		{"disguised first name", []string{"user", "add", "--id", "u", "--email", "u@example.com", "--first-name", "x\u200fy"}, []string{"firstName must be printable text"}},
		{"missing id", []string{"disable"}, []string{"accepts 1 arg"}},
		{"unknown verb", []string{"frobnicate"}, []string{`unknown verb "frobnicate"`}},
		{"unknown role verb", []string{"role", "remove"}, []string{`unknown verb "remove"`}},
		{"bad prefix", []string{"list", "--prefix", "a{b}"}, []string{`prefix "a{b}"`}},
		{"adapter without config", []string{"list", "--adapter", "caddyfile"}, []string{"--adapter needs --config"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := c
			sub.t = t
			sub.fail(tc.args, tc.want...)
		})
	}
}

func TestCLIPolicy(t *testing.T) {
	c, _ := newCLI(t)
	type pol struct {
		Lifetime *int `json:"accessKeysLifetimeInDays"`
		Unused   *int `json:"unusedAccessKeysDisableAfterInDays"`
	}
	check := func(out string, lifetime, unused int) {
		t.Helper()
		p := cliDecodeJSON[pol](t, out)
		if p.Lifetime == nil || p.Unused == nil || *p.Lifetime != lifetime || *p.Unused != unused {
			t.Errorf("policy printed %s, want %d and %d", out, lifetime, unused)
		}
	}
	check(c.ok("policy", "--json"), keystore.DefaultLifetimeDays, keystore.DefaultUnusedDays)
	check(c.ok("policy", "--json", "--lifetime-days", "90", "--unused-days", "0"), 90, 0)
	check(c.ok("policy", "--json", "--unused-days", "7"), 90, 7)
	if out := c.ok("policy"); !strings.Contains(out, "accessKeysLifetimeInDays:") || !strings.Contains(out, " 90\n") {
		t.Errorf("policy text = %q", out)
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--lifetime-days", "30", "--unused-days", "400"}, "--unused-days: 400 is not between 0 and 365"},
		{[]string{"--lifetime-days", "-1", "--unused-days", "3"}, "--lifetime-days: -1 is not between 0 and 365"},
		{[]string{"--lifetime-days", "ten"}, "invalid argument"},
	}
	for _, b := range bad {
		c.fail(append([]string{"policy"}, b.args...), b.want)
	}
	check(c.ok("policy", "--json"), 90, 7)
	events := c.ok("audit", "--event", keystore.EventPolicyUpdated, "--json")
	if n := strings.Count(events, "\n"); n != 3 {
		t.Errorf("audit has %d policy events, want 3 (none from refused changes):\n%s", n, events)
	}
}

func TestCLIAudit(t *testing.T) {
	c, _ := newCLI(t)
	cliSetupOwner(c)
	created := cliDecodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--json"))
	c.ok("disable", created.ID)
	rotated := cliDecodeJSON[keystore.AccessKey](t, c.ok("rotate", created.ID, "--json"))

	out := c.ok("audit", "--json", "--since", "1h")
	if strings.Contains(out, created.Key) || strings.Contains(out, rotated.Key) {
		t.Fatal("the audit stream holds a secret")
	}
	var names []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		e := cliDecodeJSON[keystore.Event](t, sc.Text())
		if e.Operator.ID != "cli:test" || e.Operator.Interface != keystore.InterfaceCLI {
			t.Errorf("operator = %+v", e.Operator)
		}
		names = append(names, e.EventName)
	}
	want := []string{keystore.EventRoleCreated, keystore.EventRoleCreated, keystore.EventUserCreated, // cliSetupOwner
		keystore.EventKeyCreated, keystore.EventKeyDeactivated, keystore.EventKeyRotated}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("events = %v, want %v", names, want)
	}

	out = c.ok("audit", "--event", keystore.EventKeyCreated)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], keystore.EventKeyCreated) || !strings.Contains(lines[0], "cli:test (CLI)") || !strings.Contains(lines[0], created.ID) {
		t.Errorf("audit --event printed %q", out)
	}
	if out := c.ok("audit", "--since", "2000-01-01T00:00:00Z", "--limit", "1"); strings.Count(out, "\n") != 1 {
		t.Errorf("audit --limit 1 printed %q", out)
	}
	c.fail([]string{"audit", "--event", "KeyMade"}, `unknown event name "KeyMade"`)
	c.fail([]string{"audit", "--since", "yesterday"}, `--since "yesterday"`)
}

func TestCLIConfigFile(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	cliWriteFile(t, caddyfile, "{\n\taccess_keys {\n\t\tredis "+srv.URL()+"\n\t\tkey_prefix t1\n\t}\n}\n\n:8080 {\n\trespond ok\n}\n")
	jsonFile := filepath.Join(dir, "caddy.json")
	cliWriteFile(t, jsonFile, `{"apps":{"access_keys":{"redis":["`+srv.URL()+`"],"key_prefix":"t2"}}}`)
	otherName := filepath.Join(dir, "gateway.conf")
	cliWriteFile(t, otherName, "{\n\taccess_keys {\n\t\tredis "+srv.URL()+"\n\t\tkey_prefix t3\n\t}\n}\n")

	runs := []struct {
		args   []string
		prefix string
	}{
		{[]string{"--config", caddyfile}, "t1"},
		{[]string{"--config", caddyfile, "--adapter", "caddyfile", "--prefix", "t4"}, "t4"},
		{[]string{"-c", jsonFile}, "t2"},
		{[]string{"--config", otherName}, "t3"},
	}
	rdb := srv.Client(t)
	for _, run := range runs {
		args := append([]string{"role", "add", "--id", "r", "--capability", "c"}, run.args...)
		if r := runCLI(t, args...); r.err != nil {
			t.Fatalf("%v: %v", args, r.err)
		}
		if n, err := rdb.Exists(context.Background(), run.prefix+":roles").Result(); err != nil || n != 1 {
			t.Errorf("%v: no %s:roles in Redis (%d, %v)", args, run.prefix, n, err)
		}
	}
	if r := runCLI(t, "list", "--config", filepath.Join(dir, "missing")); r.err == nil || !strings.Contains(r.err.Error(), "reading config") {
		t.Errorf("missing config: %v", r.err)
	}
	if r := runCLI(t, "list", "--config", caddyfile, "--adapter", "yaml"); r.err == nil || !strings.Contains(r.err.Error(), "unrecognized config adapter") {
		t.Errorf("unknown adapter: %v", r.err)
	}
}

func cliWriteFile(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCLIRedisUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	tests := []struct {
		url  string
		want string
	}{
		{"redis://:s3cret@127.0.0.1:" + port + "/0", "cannot reach Redis at 127.0.0.1:" + port},
		{"redis://admin:s3cret@127.0.0.1:bad/0", "connecting to Redis"},
	}
	for _, tc := range tests {
		r := runCLI(t, "list", "--redis", tc.url)
		if r.err == nil {
			t.Fatalf("list against %s succeeded", tc.url)
		}
		if msg := r.err.Error() + r.errOut; strings.Contains(msg, "s3cret") {
			t.Errorf("the error shows the password: %s", msg)
		}
		if !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("error %q does not contain %q", r.err, tc.want)
		}
	}
}

func TestCLIHelpListsVerbs(t *testing.T) {
	r := runCLI(t, "--help")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, verb := range []string{"role", "user", "create", "list", "disable", "enable", "rotate", "delete", "policy", "audit", "--redis", "--config", "--json"} {
		if !strings.Contains(r.out, verb) {
			t.Errorf("help lacks %q:\n%s", verb, r.out)
		}
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
	if role := cliDecodeJSON[keystore.Role](t, out); role.Name != "Viewers" || strings.Join(role.Capabilities, ",") != "runLogSearch,viewCollectors" {
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
