package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
)

// runWithInput runs `caddy access-keys args...` with stdin as its
// standard input.
func runWithInput(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := &cobra.Command{Use: Name}
	Setup(cmd, noConfig(t))
	var out, errOut bytes.Buffer
	cmd.SetIn(bytes.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return result{out: out.String(), errOut: errOut.String(), err: err}
}

// TestCLIExportImport moves a store made with the verbs into a Redis
// Cluster with export and import: the credentials the create verb
// printed verify there; export --output writes a file only its owner
// reads, and to standard output the data alone, with the summary on
// standard error; with neither on a terminal, each verb prints one
// summary line and no progress bar. A second import writes nothing, an
// import into another store is refused with the way out named, and the
// import is audited.
func TestCLIExportImport(t *testing.T) {
	c, _ := newCLI(t)
	setupOwner(c)
	c.ok("service-account", "add", "--id", "robot", "--name", "Robot", "--role", "collectors")
	c.ok("policy", "--lifetime-days", "90")
	secrets := map[string]string{}
	for _, owner := range [][]string{{"--user", "alice"}, {"--user", "alice"}, {"--service-account", "robot"}} {
		k := decodeJSON[keystore.AccessKey](t, c.ok(append([]string{"create", "--json", "--label", "k"}, owner...)...))
		secrets[k.ID] = k.Key
	}

	path := filepath.Join(t.TempDir(), "backup.jsonl")
	out := c.ok("export", "--output", path)
	if !strings.HasPrefix(out, "Exported 8 records to "+path+": 3 keys (0 rotated out, in their grace), 1 users, 1 service accounts, 2 roles, the policies.") ||
		strings.Count(out, "\n") != 1 {
		t.Errorf("export printed %q", out)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v, %v; want mode 0600", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*partial")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	r := c.run("export")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if lines := strings.Split(strings.TrimSpace(r.out), "\n"); len(lines) != 10 || !strings.Contains(lines[0], `"format":"accessgate-export"`) {
		t.Errorf("export to standard output wrote %d lines:\n%s", len(lines), r.out)
	}
	if !strings.HasPrefix(r.errOut, "Exported 8 records to standard output") || strings.ContainsAny(r.errOut, "\r\033") {
		t.Errorf("export to standard output printed on standard error %q", r.errOut)
	}

	cl := redistest.StartCluster(t, 3)
	var redisFlags []string
	for _, a := range cl.Addrs() {
		redisFlags = append(redisFlags, "--redis", "redis://"+a)
	}
	imp := func(stdin []byte, args ...string) result {
		t.Helper()
		return runWithInput(t, stdin, append(append(args, redisFlags...), "--operator", "cli:mover")...)
	}
	r = imp(nil, "import", "--input", path)
	if r.err != nil {
		t.Fatalf("import: %v\n%s", r.err, r.errOut)
	}
	if !strings.HasPrefix(r.out, "Imported export ") || !strings.Contains(r.out, "8 records read, 8 written, 0 skipped") || r.errOut != "" {
		t.Errorf("import printed %q, %q", r.out, r.errOut)
	}
	dst := keystore.New(cl.Client(t), keystore.Options{})
	for id, secret := range secrets {
		if _, err := dst.Verify(context.Background(), id, secret, keystore.VerifyOptions{}); err != nil {
			t.Errorf("%s does not verify in the cluster: %v", id, err)
		}
	}
	if pol, err := dst.Policies(context.Background()); err != nil || pol.LifetimeDays != 90 {
		t.Errorf("policies in the cluster: %+v, %v", pol, err)
	}

	// The store is no longer empty: the same file again needs --merge,
	// so that a completed import cannot bring back what was since deleted.
	if r = imp(file, "import", "--json"); r.err == nil {
		t.Fatal("a second import of the same file without --merge was accepted")
	}
	r = imp(file, "import", "--merge", "--json")
	if r.err != nil {
		t.Fatalf("import from standard input with --merge: %v", r.err)
	}
	if sum := decodeJSON[keystore.ImportSummary](t, r.out); sum.Written != 0 || sum.Skipped != 8 || !sum.Complete {
		t.Errorf("second import %+v, want nothing written", sum)
	}

	events := imp(nil, "audit", "--event", keystore.EventKeysImported, "--json")
	if events.err != nil || strings.Count(events.out, keystore.EventKeysImported) != 2 || !strings.Contains(events.out, "cli:mover") {
		t.Errorf("audit of the imports: %v\n%s", events.err, events.out)
	}

	c.fail([]string{"import", "--input", path}, "the store already holds records", "add --merge to import anyway")
	c.fail([]string{"import", "--input", os.DevNull}, "line 1: empty input")
	if r := imp(file[:len(file)/2], "import", "--prefix", "other"); r.err == nil || !strings.Contains(r.errOut, "Partly imported") ||
		!strings.Contains(r.errOut, "run the same command again") {
		t.Errorf("import of half a file: %v\n%s", r.err, r.errOut)
	}
}

// TestProgressBar: on a terminal the bar shows records done of the total,
// the share and the rate, redrawn in place; done draws the last counts.
func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	if p := newProgress(&buf, "import"); p.w != nil {
		t.Fatal("a buffer taken for a terminal")
	}
	p := &progress{w: &buf, label: "import"}
	p.update(50, 100)
	p.update(60, 100) // within progressEvery: not drawn
	p.done()
	got := buf.String()
	if !strings.HasPrefix(got, "\rimport: [===============               ] 50 / 100 records (50%), ") {
		t.Errorf("bar %q", got)
	}
	if !strings.Contains(got, "\rimport: [==================            ] 60 / 100 records (60%)") || !strings.HasSuffix(got, "\n") {
		t.Errorf("done drew %q", got)
	}
}

func TestCLIHelpListsBackupVerbs(t *testing.T) {
	r := runCLI(t, "--help")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, verb := range []string{"export", "import"} {
		if !strings.Contains(r.out, "\n  "+verb+" ") {
			t.Errorf("help lacks %q:\n%s", verb, r.out)
		}
	}
	for _, args := range [][]string{{"export", "--help"}, {"import", "--help"}} {
		r := runCLI(t, args...)
		if r.err != nil || !strings.Contains(r.out, "--"+map[string]string{"export": "output", "import": "resume"}[args[0]]) {
			t.Errorf("%v: %v\n%s", args, r.err, r.out)
		}
	}
}

// TestCLIImportThroughSentinel: import reaches Redis as every verb does,
// here a master found through Sentinel, named by the config; the key
// exported from another Redis verifies there.
func TestCLIImportThroughSentinel(t *testing.T) {
	c, _ := newCLI(t)
	setupOwner(c)
	k := decodeJSON[keystore.AccessKey](t, c.ok("create", "--json", "--user", "alice", "--label", "k"))
	path := filepath.Join(t.TempDir(), "backup.jsonl")
	c.ok("export", "--output", path)

	sn := redistest.StartSentinel(t)
	read := func(string, string) (Target, error) {
		return Target{Redis: keystore.RedisConfig{SentinelMaster: sn.MasterName(), SentinelAddrs: sn.SentinelAddrs()}, Prefix: "sentinel"}, nil
	}
	r := runWith(t, read, "import", "--input", path, "--config", "Caddyfile")
	if r.err != nil || !strings.Contains(r.out, "4 records read, 4 written") {
		t.Fatalf("import through Sentinel: %v\n%s%s", r.err, r.out, r.errOut)
	}
	dst := keystore.New(sn.FailoverClient(t), keystore.Options{Prefix: "sentinel"})
	if _, err := dst.Verify(context.Background(), k.ID, k.Key, keystore.VerifyOptions{}); err != nil {
		t.Errorf("the key does not verify on the Sentinel's master: %v", err)
	}
}
