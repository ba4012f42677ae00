package caddymodule

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/cli"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/keystore"
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

// TestCLIConfigTarget: the command line gets the Redis setup, key prefix
// and rotation grace of the access_keys app, with the app's defaults.
func TestCLIConfigTarget(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file, body string
		want             cli.Target
	}{
		{"no app", "caddy.json", `{"apps":{}}`, cli.Target{
			Redis: keystore.RedisConfig{URLs: []string{keystore.DefaultRedisURL}}, Prefix: keystore.DefaultPrefix, Grace: DefaultRotationGrace,
		}},
		{"sentinel", "caddy.json", `{"apps":{"access_keys":{"redis_sentinel":{"master":"m","addrs":["10.0.0.1:26379"]},"key_prefix":"p","rotation_grace":"90s"}}}`, cli.Target{
			Redis: keystore.RedisConfig{SentinelMaster: "m", SentinelAddrs: []string{"10.0.0.1:26379"}}, Prefix: "p", Grace: 90 * time.Second,
		}},
		{"cluster in a Caddyfile", "Caddyfile", "{\n\taccess_keys {\n\t\tredis redis://10.0.0.1:7000 redis://10.0.0.2:7000\n\t\trotation_grace 2m\n\t}\n}\n", cli.Target{
			Redis: keystore.RedisConfig{URLs: []string{"redis://10.0.0.1:7000", "redis://10.0.0.2:7000"}}, Prefix: keystore.DefaultPrefix, Grace: 2 * time.Minute,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, tc.file)
			cliWriteFile(t, file, tc.body)
			got, err := readCLIConfig(file, "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("readCLIConfig = %+v, want %+v", got, tc.want)
			}
		})
	}
}
