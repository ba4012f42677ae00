package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// result is what one run of the command printed and returned.
type result struct {
	out, errOut string
	err         error
}

// runCLI runs `caddy access-keys args...` in-process on a fresh command
// tree, built as Caddy builds it, with a config reader that must not be
// called.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	return runWith(t, noConfig(t), args...)
}

// noConfig is a config reader that fails the test when called.
func noConfig(t *testing.T) ReadConfig {
	return func(file, _ string) (Target, error) {
		t.Errorf("config %s read by a test without a config reader", file)
		return Target{}, fmt.Errorf("no config reader")
	}
}

// runWith runs `caddy access-keys args...` reading --config with read.
func runWith(t *testing.T, read ReadConfig, args ...string) result {
	t.Helper()
	cmd := &cobra.Command{Use: Name}
	Setup(cmd, read)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return result{out: out.String(), errOut: errOut.String(), err: err}
}

// runner runs verbs against one Redis server.
type runner struct {
	t   *testing.T
	url string
}

func newCLI(t *testing.T) (runner, *redistest.Server) {
	srv := redistest.Start(t)
	return runner{t: t, url: srv.URL()}, srv
}

func (c runner) run(args ...string) result {
	c.t.Helper()
	return runCLI(c.t, append(args, "--redis", c.url, "--operator", "cli:test")...)
}

// ok runs a verb that must succeed and returns what it printed.
func (c runner) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.err != nil {
		c.t.Fatalf("access-keys %s: %v\n%s", strings.Join(args, " "), r.err, r.errOut)
	}
	return r.out
}

// fail runs a verb that must fail with an error containing every want.
func (c runner) fail(args []string, want ...string) {
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

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return v
}

// setupOwner adds a role and a user holding it plus a personal capability.
func setupOwner(c runner) {
	c.t.Helper()
	c.ok("role", "add", "--id", "collectors", "--capability", "viewCollectors", "--capability", "manageCollectors", "--name", "Collectors")
	c.ok("user", "add", "--id", "alice", "--email", "alice@example.com", "--role", "collectors", "--capability", "createAccessKeys", "--first-name", "Alice")
}

func TestCLIErrors(t *testing.T) {
	c, _ := newCLI(t)
	setupOwner(c)
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
		{"unknown owner", []string{"create", "--user", "nobody"}, []string{`user "nobody" does not exist`}},
		{"list unknown owner", []string{"list", "--user", "nobody"}, []string{"does not exist"}},
		{"every problem", []string{"create", "--user", "alice", "--label", " ", "--cors", "http://a.example.com", "--scope", "bad scope"},
			[]string{"invalid input:", "--label: label is required", "--cors: ", "--scope: invalid scope"}},
		{"missing owner", []string{"create"}, []string{"exactly one of --user or --service-account"}},
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
	for _, verb := range []string{"role", "user", "service-account", "create", "update", "list", "disable", "enable", "rotate", "delete", "policy", "audit", "--redis", "--config", "--json"} {
		if !strings.Contains(r.out, verb) {
			t.Errorf("help lacks %q:\n%s", verb, r.out)
		}
	}
}

// TestCLIHelpFooter: the help of the command and of its verbs ends with
// the pointer to this project's command-line documentation, after the
// help the root command would print (Caddy's own footer included).
func TestCLIHelpFooter(t *testing.T) {
	const caddyFooter = "Full documentation is available at:\nhttps://caddyserver.com/docs/command-line\n"
	tests := []struct {
		name   string
		args   []string
		inTree bool
		want   []string
	}{
		{"alone", []string{"--help"}, false, []string{Long[1:], "Flags:"}},
		{"no verb", nil, false, []string{Long[1:]}},
		{"under caddy", []string{"access-keys", "--help"}, true, []string{Long[1:], caddyFooter}},
		{"verb under caddy", []string{"access-keys", "create", "--help"}, true, []string{"--service-account", caddyFooter}},
		{"caddy help", []string{"help", "access-keys", "rotate"}, true, []string{"caddy access-keys rotate", caddyFooter}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := &cobra.Command{Use: Name, Long: Long}
			Setup(cmd, noConfig(t))
			run := cmd
			if tt.inTree {
				// As Caddy builds its root command.
				run = &cobra.Command{Use: "caddy"}
				run.SetHelpTemplate(run.HelpTemplate() + "\n" + caddyFooter)
				run.AddCommand(cmd)
			}
			var out bytes.Buffer
			run.SetOut(&out)
			run.SetErr(&out)
			run.SetArgs(tt.args)
			if err := run.ExecuteContext(t.Context()); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if !strings.HasSuffix(got, "\n"+helpFooter) {
				t.Errorf("help does not end with %q:\n%s", helpFooter, got)
			}
			if strings.Count(got, helpFooter) != 1 {
				t.Errorf("help holds the footer %d times:\n%s", strings.Count(got, helpFooter), got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("help lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestCLIConfigOverrides: the Target read from --config names Redis, the
// key prefix and the rotation grace; --redis and --prefix win over it, and
// without --config the defaults apply.
func TestCLIConfigOverrides(t *testing.T) {
	srv := redistest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	closed := "redis://" + closedAddr + "/0"
	var reads []string
	config := func(redisURL string) ReadConfig {
		return func(file, adapter string) (Target, error) {
			reads = append(reads, file+" "+adapter)
			return Target{Redis: keystore.RedisConfig{URLs: []string{redisURL}}, Prefix: "fromconfig", Grace: 90 * time.Second}, nil
		}
	}
	rdb := srv.Client(t)
	hasRoles := func(prefix string) bool {
		t.Helper()
		n, err := rdb.Exists(t.Context(), prefix+":roles").Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	addRole := []string{"role", "add", "--id", "r", "--capability", "c"}

	if r := runWith(t, config(srv.URL()), append(addRole, "--config", "gw.conf", "--adapter", "x")...); r.err != nil {
		t.Fatal(r.err)
	}
	if strings.Join(reads, ",") != "gw.conf x" || !hasRoles("fromconfig") {
		t.Errorf("reads %q; fromconfig:roles written: %v", reads, hasRoles("fromconfig"))
	}
	if r := runWith(t, config(srv.URL()), append(addRole, "--config", "gw.conf", "--prefix", "fromflag")...); r.err != nil || !hasRoles("fromflag") {
		t.Errorf("--prefix over the config: %v; fromflag:roles written: %v", r.err, hasRoles("fromflag"))
	}
	if r := runWith(t, config(closed), append(addRole, "--config", "gw.conf", "--redis", srv.URL(), "--replace")...); r.err != nil {
		t.Errorf("--redis over the config: %v", r.err)
	}
	if r := runWith(t, config(closed), append(addRole, "--config", "gw.conf")...); r.err == nil || !strings.Contains(r.err.Error(), "cannot reach Redis at "+closedAddr) {
		t.Errorf("the config's Redis unreachable: %v", r.err)
	}

	rotate := func(read ReadConfig, flags ...string) string {
		t.Helper()
		run := func(args ...string) result {
			t.Helper()
			r := runWith(t, read, append(args, flags...)...)
			if r.err != nil {
				t.Fatalf("%v: %v", args, r.err)
			}
			return r
		}
		run("user", "add", "--id", "u", "--email", "u@example.com", "--role", "r")
		k := decodeJSON[keystore.AccessKey](t, run("create", "--user", "u", "--json").out)
		return run("rotate", k.ID).errOut
	}
	if note := rotate(config(srv.URL()), "--config", "gw.conf"); !strings.Contains(note, "keeps working for 1m30s.") {
		t.Errorf("rotate with the config's grace printed %q", note)
	}
	c := runner{t: t, url: srv.URL()}
	c.ok("role", "add", "--id", "r", "--capability", "c")
	if note := rotate(noConfig(t), "--redis", srv.URL()); !strings.Contains(note, "keeps working for 5m0s.") {
		t.Errorf("rotate with the default grace printed %q", note)
	}
}
