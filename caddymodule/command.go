package caddymodule

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/cli"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:      cli.Name,
		Usage:     cli.Usage,
		Short:     cli.Short,
		Long:      cli.Long,
		CobraFunc: buildAccessKeysCommand,
	})
}

// buildAccessKeysCommand sets up `caddy access-keys` and its verbs on cmd,
// reading --config as a Caddy config.
func buildAccessKeysCommand(cmd *cobra.Command) {
	cli.Setup(cmd, readCLIConfig)
}

// readCLIConfig gives the command line the Redis setup, key prefix and
// rotation grace of the access_keys app in a Caddy config file, with the
// app's defaults filled.
func readCLIConfig(file, adapter string) (cli.Target, error) {
	app, err := loadAppConfig(file, adapter)
	if err != nil {
		return cli.Target{}, err
	}
	app = app.withDefaults()
	return cli.Target{Redis: app.redisConfig(), Prefix: app.KeyPrefix, Grace: time.Duration(app.RotationGrace)}, nil
}

// appConfigFile is the part of a Caddy JSON config the command line reads:
// the access_keys app.
type appConfigFile struct {
	Apps struct {
		AccessKeys *App `json:"access_keys"`
	} `json:"apps"`
}

// loadAppConfig reads the access_keys app of a Caddy config file, adapting
// it first unless it is JSON. A config without the app yields the defaults,
// as it does for a running Caddy.
func loadAppConfig(file, adapterName string) (App, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return App{}, fmt.Errorf("reading config: %w", err)
	}
	if name := chooseAdapter(file, adapterName, body); name != "" {
		if body, err = adaptConfig(file, name, body); err != nil {
			return App{}, err
		}
	}
	var cfg appConfigFile
	if err := json.Unmarshal(body, &cfg); err != nil {
		return App{}, fmt.Errorf("config %s: %w", file, err)
	}
	if cfg.Apps.AccessKeys == nil {
		return App{}, nil
	}
	return *cfg.Apps.AccessKeys, nil
}

// chooseAdapter picks the adapter for a config file: the one asked for,
// none for JSON, the Caddyfile adapter otherwise.
func chooseAdapter(file, adapterName string, body []byte) string {
	if adapterName != "" {
		return adapterName
	}
	if strings.EqualFold(filepath.Ext(file), ".json") || json.Valid(body) {
		return ""
	}
	return "caddyfile"
}

// adaptConfig turns a config file into Caddy's JSON.
func adaptConfig(file, name string, body []byte) ([]byte, error) {
	adapter := caddyconfig.GetAdapter(name)
	if adapter == nil {
		return nil, fmt.Errorf("unrecognized config adapter: %s", name)
	}
	out, _, err := adapter.Adapt(body, map[string]any{"filename": file})
	if err != nil {
		return nil, fmt.Errorf("adapting config %s with %s: %w", file, name, err)
	}
	return out, nil
}
