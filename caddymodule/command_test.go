package caddymodule

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/internal/redistest"
)

// runCLI runs `caddy access-keys args...` in-process on a fresh command
// tree, built by the function that is registered with Caddy, and returns
// its error.
func runCLI(t *testing.T, args ...string) error {
	t.Helper()
	cmd := &cobra.Command{Use: "access-keys"}
	buildAccessKeysCommand(cmd)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	return cmd.ExecuteContext(t.Context())
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
		if err := runCLI(t, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if n, err := rdb.Exists(context.Background(), run.prefix+":roles").Result(); err != nil || n != 1 {
			t.Errorf("%v: no %s:roles in Redis (%d, %v)", args, run.prefix, n, err)
		}
	}
	if err := runCLI(t, "list", "--config", filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "reading config") {
		t.Errorf("missing config: %v", err)
	}
	if err := runCLI(t, "list", "--config", caddyfile, "--adapter", "yaml"); err == nil || !strings.Contains(err.Error(), "unrecognized config adapter") {
		t.Errorf("unknown adapter: %v", err)
	}
}

func cliWriteFile(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
