package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/mgmtapi/client"
)

// Name, Usage and Short describe the command where it is registered
// (in Caddy's list of commands).
const (
	Name  = "access-keys"
	Usage = "<verb> [--redis <url>]... [--config <file> [--adapter <name>]] [--prefix <prefix>] [--api <url> --id <access-id>] [--json]"
	Short = "Manages access keys, users, roles and key policies in Redis"
)

// Long is the help text of the command.
const Long = `
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

--json prints the same shapes as the management API.` + remoteHelp

// helpFooter ends the help of the command and of every verb: Caddy's own
// footer points to Caddy's documentation, which does not cover this
// command.
const helpFooter = `
The access-keys command is documented at:
https://github.com/accessgate/accessgate#command-line
`

// pingTimeout bounds the connection check made before every verb.
const pingTimeout = 5 * time.Second

// globals holds the flags every verb shares.
type globals struct {
	redis    []string
	config   string
	adapter  string
	prefix   string
	json     bool
	operator string
	read     ReadConfig
	// api, id and key name the management API of --api and the access
	// key that calls it.
	api, id, key string
	// flags are the global flags, to tell them from a verb's own.
	flags *pflag.FlagSet
}

// env is what a verb works with: an open store and how to print.
type env struct {
	ctx    context.Context
	store  *keystore.Store
	op     keystore.Operator
	json   bool
	out    io.Writer
	errOut io.Writer
	grace  time.Duration
	// api is the management API with --api; store is nil then.
	api *client.Client
	// self is the Access ID that calls api.
	self string
}

// verbFunc runs one verb.
type verbFunc func(e *env, args []string) error

// Setup makes cmd the access-keys command: its flags, its verbs and the
// help it prints without a verb. read reads the file named by --config
// and must not be nil. cmd keeps its name and help texts.
func Setup(cmd *cobra.Command, read ReadConfig) {
	g := &globals{read: read}
	cmd.SilenceUsage = true
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = unknownVerb
	setHelpFooter(cmd)
	f := cmd.PersistentFlags()
	f.StringArrayVar(&g.redis, "redis", []string{keystore.DefaultRedisURL}, "Redis URL; repeat to name the nodes of a Redis Cluster")
	f.StringVarP(&g.config, "config", "c", "", "Caddy config (Caddyfile or JSON) whose access_keys global option names Redis")
	f.StringVarP(&g.adapter, "adapter", "a", "", "Name of the config adapter to apply to --config")
	f.StringVar(&g.prefix, "prefix", "", "Prefix of every Redis key (default: key_prefix of the config, or "+keystore.DefaultPrefix+")")
	f.BoolVar(&g.json, "json", false, "Print JSON instead of text")
	f.StringVar(&g.operator, "operator", defaultOperator(), "Operator recorded in the audit events of changes")
	f.StringVar(&g.api, "api", "", "URL of a gateway's management API (such as https://gw.example.com/api/v1) to work through instead of Redis")
	f.StringVar(&g.id, "id", "", "With --api: the Access ID to call the API with")
	f.StringVar(&g.key, "key", "", "With --api: the Access Key of --id (better: set "+KeyEnv+", which stays out of the shell history)")
	g.flags = f
	cmd.AddCommand(
		newRoleCommand(g),
		newUserCommand(g),
		newServiceAccountCommand(g),
		newCreateCommand(g),
		newListCommand(g),
		newUpdateCommand(g),
		newStatusCommand(g, "disable", "Deactivates an access key", true),
		newStatusCommand(g, "enable", "Activates an access key again", false),
		newRotateCommand(g),
		newDeleteCommand(g),
		newPolicyCommand(g),
		newAuditCommand(g),
		newUsageCommand(g),
		newExportCommand(g),
		newImportCommand(g),
	)
}

// setHelpFooter makes the help of cmd and of its verbs end with
// helpFooter, after the help cmd's parent (Caddy's root command) prints.
func setHelpFooter(cmd *cobra.Command) {
	standalone := cmd.HelpFunc()
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		help := standalone
		if p := cmd.Parent(); p != nil {
			help = p.HelpFunc()
		}
		help(c, args)
		fmt.Fprint(c.OutOrStdout(), helpFooter)
	})
}

// unknownVerb prints the help when no verb is given and fails on an
// unknown one.
func unknownVerb(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return fmt.Errorf("unknown verb %q; run '%s --help' to see the verbs", args[0], cmd.CommandPath())
}

// defaultOperator names the local user as the operator of changes.
func defaultOperator() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli:root"
}

// run wraps a verb: it connects to Redis, runs the verb and turns the
// errors of the store into messages for the command line.
func (g *globals) run(verb verbFunc) func(*cobra.Command, []string) error {
	return g.runBoth(verb, nil)
}

// runBoth is run for a verb that also works through the management API
// with --api, as remote does; remote nil means the verb needs Redis.
func (g *globals) runBoth(verb verbFunc, remote remoteFunc) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		isRemote, err := g.remote(cmd)
		if err != nil {
			return err
		}
		if isRemote {
			if remote == nil {
				return notRemote(cmd)
			}
			e, err := g.openRemote(cmd)
			if err != nil {
				return err
			}
			return explain(unreachable(g.api, remote(e, args)))
		}
		t, err := g.target(cmd)
		if err != nil {
			return err
		}
		e, closeStore, err := g.open(cmd, t)
		if err != nil {
			return t.scrub(err)
		}
		defer closeStore()
		return t.scrub(explain(verb(e, args)))
	}
}

// open connects to Redis and checks that it answers.
func (g *globals) open(cmd *cobra.Command, t Target) (*env, func(), error) {
	// The client's own log lines repeat what the error below says.
	redis.SetLogger(&logging.VoidLogger{})
	rdb, err := keystore.Dial(t.Redis)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to Redis: %w", err)
	}
	ctx := cmd.Context()
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, nil, fmt.Errorf("cannot reach %s: %w", t.describe(), err)
	}
	e := &env{
		ctx:    ctx,
		store:  keystore.New(rdb, keystore.Options{Prefix: t.Prefix, RotationGrace: t.Grace}),
		op:     keystore.Operator{ID: g.operator, Interface: keystore.InterfaceCLI},
		json:   g.json,
		out:    cmd.OutOrStdout(),
		errOut: cmd.ErrOrStderr(),
		grace:  t.Grace,
	}
	return e, func() { _ = rdb.Close() }, nil
}

// verbError is an error of the store restated for the command line.
type verbError struct {
	msg string
	err error
}

func (e *verbError) Error() string { return e.msg }

func (e *verbError) Unwrap() error { return e.err }

// explain restates the store's errors: every validation problem on its
// own line, naming the flag it concerns. An error a verb restated itself
// stays as it is.
func explain(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*verbError](err); ok {
		return err
	}
	if ve, ok := errors.AsType[*keystore.ValidationError](err); ok {
		return &verbError{msg: problemList(ve), err: err}
	}
	if nf, ok := errors.AsType[*keystore.NotFoundError](err); ok {
		return &verbError{msg: fmt.Sprintf("%s %q does not exist", kindName(nf.Kind), nf.ID), err: err}
	}
	if ce, ok := errors.AsType[*keystore.ConflictError](err); ok {
		return &verbError{msg: ce.Message, err: err}
	}
	return err
}

// problemList writes every problem of ve on its own line.
func problemList(ve *keystore.ValidationError) string {
	var b strings.Builder
	b.WriteString("invalid input:")
	for _, p := range ve.Problems {
		fmt.Fprintf(&b, "\n  %s: %s", flagOfField(p.Field), p.Message)
	}
	return b.String()
}

// fieldFlags maps the fields the store names in problems to the flags
// that set them.
var fieldFlags = map[string]string{
	"label":                              "--label",
	"scopes":                             "--scope",
	"corsHeaders":                        "--cors",
	"id":                                 "--id",
	"email":                              "--email",
	"roleIds":                            "--role",
	"capabilities":                       "--capability",
	"name":                               "--name",
	"accessKeysLifetimeInDays":           "--lifetime-days",
	"unusedAccessKeysDisableAfterInDays": "--unused-days",
	"rateLimit":                          "--rate",
	"concurrencyLimit":                   "--concurrency",
	"quota":                              "--quota",
}

func flagOfField(field string) string {
	if f, ok := fieldFlags[field]; ok {
		return f
	}
	return field
}

// kindName is how an error message names a kind of record.
func kindName(kind string) string {
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
func (e *env) writeJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
