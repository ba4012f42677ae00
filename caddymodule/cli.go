package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:      "access-keys",
		Usage:     "<verb> [--redis <url>]... [--config <file> [--adapter <name>]] [--prefix <prefix>] [--json]",
		Short:     "Manages access keys, users, roles and key policies in Redis",
		Long:      cliLong,
		CobraFunc: buildAccessKeysCommand,
	})
}

const cliLong = `
Manages the data of the access_keys app directly in Redis: roles, users,
access keys, the two key policies and the audit stream. Every Caddy instance
sharing that Redis sees a change at once.

Redis is named with --redis (repeatable: several URLs name the nodes of a
Redis Cluster; default redis://127.0.0.1:6379/0), or read from the
access_keys global option of a Caddy config given with --config (a Caddyfile
or JSON; --adapter as for 'caddy run'). --redis and --prefix override what
the config says.

Changes are written to the audit stream with the operator named by
--operator (default cli:$USER). An Access Key is printed only by create and
rotate, once; it cannot be read again.

--json prints the same shapes as the management API.`

// cliPingTimeout bounds the connection check made before every verb.
const cliPingTimeout = 5 * time.Second

// cliGlobals holds the flags every verb shares.
type cliGlobals struct {
	redis    []string
	config   string
	adapter  string
	prefix   string
	json     bool
	operator string
}

// cliEnv is what a verb works with: an open store and how to print.
type cliEnv struct {
	ctx    context.Context
	store  *keystore.Store
	op     keystore.Operator
	json   bool
	out    io.Writer
	errOut io.Writer
	grace  time.Duration
}

// cliVerbFunc runs one verb.
type cliVerbFunc func(e *cliEnv, args []string) error

// buildAccessKeysCommand sets up `caddy access-keys` and its verbs on cmd.
func buildAccessKeysCommand(cmd *cobra.Command) {
	g := &cliGlobals{}
	cmd.SilenceUsage = true
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = cliUnknownVerb
	f := cmd.PersistentFlags()
	f.StringArrayVar(&g.redis, "redis", []string{keystore.DefaultRedisURL}, "Redis URL; repeat to name the nodes of a Redis Cluster")
	f.StringVarP(&g.config, "config", "c", "", "Caddy config (Caddyfile or JSON) whose access_keys global option names Redis")
	f.StringVarP(&g.adapter, "adapter", "a", "", "Name of the config adapter to apply to --config")
	f.StringVar(&g.prefix, "prefix", "", "Prefix of every Redis key (default: key_prefix of the config, or "+keystore.DefaultPrefix+")")
	f.BoolVar(&g.json, "json", false, "Print JSON instead of text")
	f.StringVar(&g.operator, "operator", cliDefaultOperator(), "Operator recorded in the audit events of changes")
	cmd.AddCommand(
		cliNewRoleCommand(g),
		cliNewUserCommand(g),
		cliNewCreateCommand(g),
		cliNewListCommand(g),
		cliNewStatusCommand(g, "disable", "Deactivates an access key", true),
		cliNewStatusCommand(g, "enable", "Activates an access key again", false),
		cliNewRotateCommand(g),
		cliNewDeleteCommand(g),
		cliNewPolicyCommand(g),
		cliNewAuditCommand(g),
	)
}

// cliUnknownVerb prints the help when no verb is given and fails on an
// unknown one.
func cliUnknownVerb(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return fmt.Errorf("unknown verb %q; run '%s --help' to see the verbs", args[0], cmd.CommandPath())
}

// cliDefaultOperator names the local user as the operator of changes.
func cliDefaultOperator() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli:root"
}

// run wraps a verb: it connects to Redis, runs the verb and turns the
// errors of the store into messages for the command line.
func (g *cliGlobals) run(verb cliVerbFunc) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		t, err := g.target(cmd)
		if err != nil {
			return err
		}
		e, closeStore, err := g.open(cmd, t)
		if err != nil {
			return t.scrub(err)
		}
		defer closeStore()
		return t.scrub(cliExplain(verb(e, args)))
	}
}

// open connects to Redis and checks that it answers.
func (g *cliGlobals) open(cmd *cobra.Command, t cliTarget) (*cliEnv, func(), error) {
	// The client's own log lines repeat what the error below says.
	redis.SetLogger(&logging.VoidLogger{})
	rdb, err := keystore.Dial(t.redis)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to Redis: %w", err)
	}
	ctx := cmd.Context()
	pctx, cancel := context.WithTimeout(ctx, cliPingTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, nil, fmt.Errorf("cannot reach %s: %w", t.describe(), err)
	}
	e := &cliEnv{
		ctx:    ctx,
		store:  keystore.New(rdb, keystore.Options{Prefix: t.prefix, RotationGrace: t.grace}),
		op:     keystore.Operator{ID: g.operator, Interface: keystore.InterfaceCLI},
		json:   g.json,
		out:    cmd.OutOrStdout(),
		errOut: cmd.ErrOrStderr(),
		grace:  t.grace,
	}
	return e, func() { _ = rdb.Close() }, nil
}

// cliError is an error of the store restated for the command line.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }

func (e *cliError) Unwrap() error { return e.err }

// cliExplain restates the store's errors: every validation problem on its
// own line, naming the flag it concerns.
func cliExplain(err error) error {
	if err == nil {
		return nil
	}
	if ve, ok := errors.AsType[*keystore.ValidationError](err); ok {
		return &cliError{msg: cliProblemList(ve), err: err}
	}
	if nf, ok := errors.AsType[*keystore.NotFoundError](err); ok {
		return &cliError{msg: fmt.Sprintf("%s %q does not exist", cliKindName(nf.Kind), nf.ID), err: err}
	}
	if ce, ok := errors.AsType[*keystore.ConflictError](err); ok {
		return &cliError{msg: ce.Message, err: err}
	}
	return err
}

// cliProblemList writes every problem of ve on its own line.
func cliProblemList(ve *keystore.ValidationError) string {
	var b strings.Builder
	b.WriteString("invalid input:")
	for _, p := range ve.Problems {
		fmt.Fprintf(&b, "\n  %s: %s", cliFlagOfField(p.Field), p.Message)
	}
	return b.String()
}

// cliFieldFlags maps the fields the store names in problems to the flags
// that set them.
var cliFieldFlags = map[string]string{
	"label":                              "--label",
	"scopes":                             "--scope",
	"corsHeaders":                        "--cors",
	"id":                                 "--id",
	"email":                              "--email",
	"roleIds":                            "--role",
	"capabilities":                       "--capability",
	"accessKeysLifetimeInDays":           "--lifetime-days",
	"unusedAccessKeysDisableAfterInDays": "--unused-days",
}

func cliFlagOfField(field string) string {
	if f, ok := cliFieldFlags[field]; ok {
		return f
	}
	return field
}

// cliKindName is how an error message names a kind of record.
func cliKindName(kind string) string {
	switch kind {
	case "accessKey":
		return "access key"
	case "owner":
		return "user or service account"
	case "serviceAccount":
		return "service account"
	}
	return kind
}

// writeJSON prints v as indented JSON.
func (e *cliEnv) writeJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
