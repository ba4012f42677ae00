package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/keystore"
)

const remoteCaddyfile = `{
	admin 127.0.0.1:%d
	access_keys {
		redis %s
		cache_ttl 15m
		max_failures_per_client -1
		max_failures_per_key -1
	}
}

http://127.0.0.1:%d {
	handle /api/v1/* {
		access_keys_api
	}
	handle {
		access_keys {
			scope viewWidgets GET /data/*
		}
		respond "ok"
	}
}
`

// remoteRunner runs verbs through the management API of a real gateway
// as one access key; local runs verbs on the gateway's Redis.
type remoteRunner struct {
	t      *testing.T
	local  runner
	api    string
	id     string
	secret string
}

// newRemote starts a redis-server and a Caddy serving the management API,
// with an admin user (every capability the API checks), a member user
// (createAccessKeys only) and a service account, and a key of each user.
func newRemote(t *testing.T) (admin, member remoteRunner) {
	local, srv := newCLI(t)
	adminPort, site := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	gatewaytest.Start(t, fmt.Sprintf(remoteCaddyfile, adminPort, srv.URL(), site))
	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1", site)
	local.ok("role", "add", "--id", "admin", "--capability", "createAccessKeys", "--capability", "manageAccessKeys",
		"--capability", "manageOrgSettings", "--capability", "manageUsersAndRoles", "--capability", "viewUsersAndRoles", "--capability", "viewWidgets")
	local.ok("role", "add", "--id", "member", "--capability", "createAccessKeys", "--capability", "viewWidgets")
	local.ok("user", "add", "--id", "ADMIN1", "--email", "admin@example.com", "--role", "admin")
	local.ok("user", "add", "--id", "alice", "--email", "alice@example.com", "--role", "member")
	local.ok("service-account", "add", "--id", "robot", "--name", "Robot", "--role", "member")
	keyOf := func(user string) remoteRunner {
		k := decodeJSON[keystore.AccessKey](t, local.ok("create", "--user", user, "--json"))
		return remoteRunner{t: t, local: local, api: api, id: k.ID, secret: k.Key}
	}
	return keyOf("ADMIN1"), keyOf("alice")
}

// run runs a verb with --api, the key coming from the environment.
func (r remoteRunner) run(args ...string) result {
	r.t.Helper()
	r.t.Setenv(KeyEnv, r.secret)
	return runCLI(r.t, append(args, "--api", r.api, "--id", r.id)...)
}

func (r remoteRunner) ok(args ...string) string {
	r.t.Helper()
	res := r.run(args...)
	if res.err != nil {
		r.t.Fatalf("access-keys %s --api: %v\n%s", strings.Join(args, " "), res.err, res.errOut)
	}
	return res.out
}

func (r remoteRunner) fail(args []string, want ...string) {
	r.t.Helper()
	res := r.run(args...)
	if res.err == nil {
		r.t.Fatalf("access-keys %s --api succeeded, want an error; printed:\n%s", strings.Join(args, " "), res.out)
	}
	for _, w := range want {
		if !strings.Contains(res.err.Error(), w) {
			r.t.Errorf("access-keys %s --api: error %q does not contain %q", strings.Join(args, " "), res.err, w)
		}
	}
}

// TestCLIRemoteKeys: every key verb works through the management API,
// and what it does shows in Redis.
func TestCLIRemoteKeys(t *testing.T) {
	admin, member := newRemote(t)

	// create: for the caller's own user, with or without --user.
	out := member.ok("create", "--label", "laptop", "--scope", "viewWidgets", "--cors", "https://a.example")
	if !strings.Contains(out, "Access Key: ") || !strings.Contains(out, "Owner:      alice\n") || !strings.Contains(out, "Scopes:     viewWidgets\n") {
		t.Errorf("create printed %q", out)
	}
	k := decodeJSON[keystore.AccessKey](t, member.ok("create", "--user", "alice", "--json"))
	if k.Key == "" || k.OwnerID != "alice" || k.Status != keystore.StatusActive || k.Label != defaultKeyLabel {
		t.Errorf("create --json: %+v", k)
	}
	member.fail([]string{"create", "--user", "ADMIN1"}, "only for the user of --id (alice)")
	sa := decodeJSON[keystore.AccessKey](t, admin.ok("create", "--service-account", "robot", "--json"))
	if sa.OwnerID != "robot" || sa.ServiceAccountID != "robot" {
		t.Errorf("create --service-account: %+v", sa)
	}

	// list: every key (manageAccessKeys), or one owner's.
	all := decodeJSON[struct{ Data []keystore.AccessKey }](t, admin.ok("list", "--json"))
	if len(all.Data) != 5 {
		t.Errorf("list --json has %d keys, want 5", len(all.Data))
	}
	if out := admin.ok("list", "--user", "robot"); !strings.Contains(out, sa.ID) || strings.Count(out, "\n") != 2 {
		t.Errorf("list --user robot:\n%s", out)
	}
	if out := admin.ok("list"); !strings.HasPrefix(out, "ID  ") || strings.Count(out, "\n") != 6 {
		t.Errorf("list:\n%s", out)
	}
	member.fail([]string{"list"}, "403", "manageAccessKeys")

	// disable and enable.
	if out := member.ok("disable", k.ID); out != "Access key "+k.ID+" is deactivated.\n" {
		t.Errorf("disable printed %q", out)
	}
	if v := decodeJSON[keystore.AccessKey](t, member.ok("enable", k.ID, "--json")); v.Disabled || v.Status != keystore.StatusActive {
		t.Errorf("enable --json: %+v", v)
	}

	// update: scopes and allowlist; the label cannot change remotely.
	member.ok("disable", k.ID)
	out = member.ok("update", k.ID, "--scope", "viewWidgets", "--cors", "https://b.example")
	if want := "Access key " + k.ID + " updated.\n  Label:     CLI key\n  Scopes:    viewWidgets\n  Allowlist: https://b.example\n"; out != want {
		t.Errorf("update printed %q, want %q", out, want)
	}
	v := decodeJSON[keystore.AccessKey](t, member.ok("update", k.ID, "--cors", "none", "--json"))
	if len(v.CORSHeaders) != 0 || len(v.Scopes) != 1 || v.Status != keystore.StatusDeactivated {
		t.Errorf("update --cors none: %+v (the key must stay deactivated)", v)
	}
	member.fail([]string{"update", k.ID, "--label", "x"}, "--label is not available with --api")
	member.fail([]string{"update", k.ID, "--scope", "no such scope"}, "400")

	// rotate and delete.
	res := member.run("rotate", k.ID, "--json")
	if res.err != nil {
		t.Fatal(res.err)
	}
	rot := decodeJSON[keystore.AccessKey](t, res.out)
	if rot.ID == k.ID || rot.Key == "" || !strings.Contains(res.errOut, "The previous Access ID "+k.ID+" keeps working") {
		t.Errorf("rotate: %+v\n%s", rot, res.errOut)
	}
	if out := member.ok("delete", rot.ID); out != "Access key "+rot.ID+" deleted.\n" {
		t.Errorf("delete printed %q", out)
	}
	member.fail([]string{"delete", rot.ID}, "404", "does not exist")
	if out := admin.local.ok("list", "--user", "alice"); strings.Contains(out, rot.ID) {
		t.Errorf("the deleted key is still in Redis:\n%s", out)
	}
}

// TestCLIRemotePolicy: policy shows and sets both policies through the
// API, with the output of local mode.
func TestCLIRemotePolicy(t *testing.T) {
	admin, member := newRemote(t)
	out := admin.ok("policy", "--lifetime-days", "90", "--unused-days", "0")
	if want := admin.local.ok("policy"); out != want {
		t.Errorf("remote policy printed %q, local %q", out, want)
	}
	if out := admin.ok("policy", "--json"); out != admin.local.ok("policy", "--json") || !strings.Contains(out, `"accessKeysLifetimeInDays": 90`) {
		t.Errorf("policy --json = %q", out)
	}
	admin.fail([]string{"policy", "--unused-days", "400"}, "--unused-days: 400 is not between 0 and 365")
	member.fail([]string{"policy", "--unused-days", "3"}, "403")
	if out := admin.ok("policy", "--json"); !strings.Contains(out, `"unusedAccessKeysDisableAfterInDays": 0`) {
		t.Errorf("a refused change changed the policy: %s", out)
	}
}

// TestCLIRemoteFlags: --api excludes the Redis flags, needs --id and the
// key, and the verbs it does not offer say so.
func TestCLIRemoteFlags(t *testing.T) {
	t.Setenv(KeyEnv, "")
	api := []string{"--api", "http://127.0.0.1:1/api/v1", "--id", "x", "--key", "y"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"redis", append([]string{"list", "--redis", "redis://127.0.0.1:1"}, api...), "--api and --redis exclude each other"},
		{"config", append([]string{"list", "--config", "Caddyfile"}, api...), "--api and --config exclude each other"},
		{"prefix", append([]string{"list", "--prefix", "p"}, api...), "--api and --prefix exclude each other"},
		{"no id", []string{"list", "--api", "http://127.0.0.1:1/api/v1"}, "--api needs --id"},
		{"no key", []string{"list", "--api", "http://127.0.0.1:1/api/v1", "--id", "x"}, "set " + KeyEnv},
		{"id without api", []string{"list", "--id", "x"}, "--id needs --api"},
		{"key without api", []string{"list", "--key", "x"}, "--key needs --api"},
		{"bad url", []string{"list", "--api", "127.0.0.1:1", "--id", "x", "--key", "y"}, "give an http or https URL"},
		{"unreachable", append([]string{"list"}, api...), "cannot reach the management API at http://127.0.0.1:1/api/v1: "},
		{"audit", append([]string{"audit"}, api...), `"access-keys audit" is not available with --api`},
		{"user add", append([]string{"user", "add", "--id", "u", "--email", "u@example.com"}, "--api", "http://127.0.0.1:1/api/v1"), "is not available with --api"},
		{"role list", append([]string{"role", "list"}, api...), "is not available with --api"},
		{"service-account list", append([]string{"service-account", "list"}, api...), "is not available with --api"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("access-keys %s: error %v, want one containing %q", strings.Join(tc.args, " "), r.err, tc.want)
			}
		})
	}
}
