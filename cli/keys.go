package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// defaultKeyLabel is the label of keys created without --label.
const defaultKeyLabel = "CLI key"

// listPageSize is how many keys one ListKeys call returns while listing.
const listPageSize = 1000

// secretWarning follows every printed Access Key.
const secretWarning = "Store the Access Key now: it cannot be shown again."

// createInput is what `create` is given.
type createInput struct {
	spec           keystore.KeySpec
	user           string
	serviceAccount string
	limits         limitInput
	// changed reports whether a flag was given.
	changed func(string) bool
}

// limitSpec reads the limit flags of create into in.spec.
func (in *createInput) limitSpec() error {
	c, err := parseLimits(in.changed, in.limits)
	if err != nil {
		return err
	}
	in.spec.Limits, err = c.spec()
	return err
}

func newCreateCommand(g *globals) *cobra.Command {
	var in createInput
	c := &cobra.Command{
		Use:   "create (--user <id> | --service-account <id>) [--label <label>] [--scope <scope>]... [--cors <origin>]... [--rate <N/m> [--burst <N>]] [--concurrency <N>] [--quota <N/day>]",
		Short: "Creates an access key and prints its Access ID and Access Key once",
		Long: `Creates an access key owned by a user (--user) or a service account
(--service-account) and prints its Access ID and Access Key. The Access Key
is printed this once and cannot be read again. A key without --scope has the
Default scope: every capability of its owner. With --api, the key is for the
user of --id (--user may be left out) or for --service-account.

` + limitsHelp + `

Examples:
  caddy access-keys create --user alice --label ci --scope viewCollectors
  caddy access-keys create --user alice --rate 100/m --burst 200 --concurrency 10 --quota 100000/day

` + catalogueHelp,
		Args: cobra.NoArgs,
	}
	in.changed = c.Flags().Changed
	// Bad limits fail before Redis or the API is reached.
	c.PreRunE = func(*cobra.Command, []string) error {
		_, err := parseLimits(in.changed, in.limits)
		return err
	}
	c.RunE = g.runBoth(func(e *env, _ []string) error { return createKey(e, in) },
		func(e *env, _ []string) error { return createRemote(e, in) })
	c.Flags().StringVar(&in.user, "user", "", "Owner of the key: a user ID")
	c.Flags().StringVar(&in.serviceAccount, "service-account", "", "Owner of the key: a service account ID")
	c.Flags().StringVar(&in.spec.Label, "label", defaultKeyLabel, "Label of the key")
	c.Flags().StringArrayVar(&in.spec.Scopes, "scope", nil, "Scope of the key, from the catalogue; repeatable (default: every capability of the owner)")
	c.Flags().StringArrayVar(&in.spec.CORSHeaders, "cors", nil, "Allowlisted origin https://host[:port]; repeatable")
	addLimitFlags(c.Flags(), &in.limits, false)
	return c
}

func createKey(e *env, in createInput) error {
	if (in.user == "") == (in.serviceAccount == "") {
		return errors.New("give exactly one of --user or --service-account")
	}
	if err := in.limitSpec(); err != nil {
		return err
	}
	spec := in.spec
	var kind keystore.OwnerKind
	var flag string
	spec.OwnerID, kind, flag = in.user, keystore.OwnerUser, "--service-account"
	if in.serviceAccount != "" {
		spec.OwnerID, kind, flag = in.serviceAccount, keystore.OwnerServiceAccount, "--user"
	}
	if _, err := e.store.OwnerOfKind(e.ctx, spec.OwnerID, kind); err != nil {
		if o, oerr := e.store.Owner(e.ctx, spec.OwnerID); oerr == nil && o.Kind != kind {
			return &verbError{msg: fmt.Sprintf("%s %q does not exist; %q is a %s: use %s", kindName(string(kind)), spec.OwnerID, spec.OwnerID, kindName(string(o.Kind)), flag), err: err}
		}
		return err
	}
	if err := checkCatalogue(spec.Scopes); err != nil {
		return err
	}
	k, secret, err := e.store.CreateKey(e.ctx, spec, e.op)
	if err != nil {
		return err
	}
	v, err := e.view(k, secret)
	if err != nil {
		return err
	}
	return e.printSecret(v, "")
}

func newListCommand(g *globals) *cobra.Command {
	var owner string
	c := &cobra.Command{
		Use:   "list [--user <id>]",
		Short: "Lists access keys with their status, last use and expiry",
		Args:  cobra.NoArgs,
		RunE: g.runBoth(func(e *env, _ []string) error { return listKeys(e, owner) },
			func(e *env, _ []string) error { return listRemote(e, owner) }),
	}
	c.Flags().StringVar(&owner, "user", "", "List only the keys of this user or service account")
	return c
}

func listKeys(e *env, owner string) error {
	keys, err := e.keysToList(owner)
	if err != nil {
		return err
	}
	views, err := e.views(keys)
	if err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(map[string]any{"data": views})
	}
	return printKeyTable(e.out, views)
}

// keysToList returns the keys of owner, or every key when owner is "".
func (e *env) keysToList(owner string) ([]*keystore.Key, error) {
	if owner != "" {
		if _, err := e.store.Owner(e.ctx, owner); err != nil {
			return nil, err
		}
		return e.store.KeysOfOwner(e.ctx, owner)
	}
	var all []*keystore.Key
	token := ""
	for {
		page, err := e.store.ListKeys(e.ctx, listPageSize, token)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Keys...)
		if page.Next == "" {
			return all, nil
		}
		token = page.Next
	}
}

// views builds the public shapes of keys, resolving each owner once.
func (e *env) views(keys []*keystore.Key) ([]keyView, error) {
	pol, err := e.store.Policies(e.ctx)
	if err != nil {
		return nil, err
	}
	used, err := e.lastUsed(keys)
	if err != nil {
		return nil, err
	}
	owners := map[string]*keystore.Principal{}
	now := e.store.Now()
	out := make([]keyView, 0, len(keys))
	for _, k := range keys {
		p, ok := owners[k.OwnerID]
		if !ok {
			if p, err = e.store.Principal(e.ctx, k.OwnerID); err != nil {
				return nil, err
			}
			owners[k.OwnerID] = p
		}
		out = append(out, keyView{AccessKey: keystore.View(k, pol, used[k.ID], p, "", now)})
	}
	if err := e.fillQuotaUse(keys, out); err != nil {
		return nil, err
	}
	return out, nil
}

// lastUsed reads the last-use times of keys, listPageSize at a time.
func (e *env) lastUsed(keys []*keystore.Key) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(keys))
	for start := 0; start < len(keys); start += listPageSize {
		end := min(start+listPageSize, len(keys))
		ids := make([]string, 0, end-start)
		for _, k := range keys[start:end] {
			ids = append(ids, k.ID)
		}
		m, err := e.store.LastUsed(e.ctx, ids...)
		if err != nil {
			return nil, err
		}
		for id, t := range m {
			out[id] = t
		}
	}
	return out, nil
}

// view builds the public shape of one key; secret is "" except right
// after a create or rotate.
func (e *env) view(k *keystore.Key, secret string) (keyView, error) {
	pol, err := e.store.Policies(e.ctx)
	if err != nil {
		return keyView{}, err
	}
	p, err := e.store.Principal(e.ctx, k.OwnerID)
	if err != nil {
		return keyView{}, err
	}
	used, err := e.store.LastUsed(e.ctx, k.ID)
	if err != nil {
		return keyView{}, err
	}
	return e.withLimits(keystore.View(k, pol, used[k.ID], p, secret, e.store.Now()), k)
}

// printKeyTable prints one line per key. The LIMITS column shows only
// when a key listed has a limit of its own.
func printKeyTable(out io.Writer, views []keyView) error {
	if len(views) == 0 {
		_, err := fmt.Fprintln(out, "No access keys.")
		return err
	}
	withLimits := slices.ContainsFunc(views, keyView.hasLimits)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "ID\tLABEL\tOWNER\tSTATUS\tLAST USED\tEXPIRES AT\t"
	if withLimits {
		head += "LIMITS\t"
	}
	fmt.Fprintln(tw, head+"SCOPES")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t",
			v.ID, v.Label, v.OwnerID, v.Status, timeOr(v.LastUsed, "never"), timeOr(v.ExpiresAt, "never"))
		if withLimits {
			fmt.Fprintf(tw, "%s\t", v.limitList())
		}
		fmt.Fprintln(tw, scopeList(v.Scopes))
	}
	return tw.Flush()
}

// timeOr formats t for a table, or returns none when it is unset.
func timeOr(t keystore.Timestamp, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

// scopeList shows a key's scopes; none means the Default scope.
func scopeList(scopes []string) string {
	if len(scopes) == 0 {
		return "default"
	}
	return strings.Join(scopes, " ")
}

// printSecret prints a key just created or rotated, with its secret.
func (e *env) printSecret(v keyView, note string) error {
	if e.json {
		if err := e.writeJSON(v); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.out, "Access ID:  %s\nAccess Key: %s\n", v.ID, v.Key)
		fmt.Fprintf(e.out, "Label:      %s\nOwner:      %s\n", v.Label, v.OwnerID)
		fmt.Fprintf(e.out, "Scopes:     %s\nAllowlist:  %s\n", scopeList(v.Scopes), listOrNone(v.CORSHeaders))
		if v.hasLimits() {
			fmt.Fprintf(e.out, "Limits:     %s\n", v.limitList())
		}
		fmt.Fprintf(e.out, "Expires at: %s\n", timeOr(v.ExpiresAt, "never"))
	}
	if note != "" {
		fmt.Fprintln(e.errOut, note)
	}
	_, err := fmt.Fprintln(e.errOut, secretWarning)
	return err
}

func newStatusCommand(g *globals, name, short string, disabled bool) *cobra.Command {
	return &cobra.Command{
		Use:   name + " <access-id>",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: g.runBoth(func(e *env, args []string) error { return setDisabled(e, args[0], disabled) },
			func(e *env, args []string) error { return setDisabledRemote(e, args[0], disabled) }),
	}
}

func setDisabled(e *env, id string, disabled bool) error {
	k, err := e.store.UpdateKey(e.ctx, id, keystore.KeyUpdate{Disabled: &disabled}, e.op)
	if err != nil {
		return err
	}
	v, err := e.view(k, "")
	if err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(v)
	}
	_, err = fmt.Fprintf(e.out, "Access key %s is %s.\n", v.ID, v.Status)
	return err
}

func newRotateCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate <access-id>",
		Short: "Replaces a key with a new Access ID and Access Key, printed once",
		Long: `Replaces a key with a new Access ID and Access Key that keep its label,
scopes, allowlist and owner. The old pair keeps working for the rotation
grace of the app (rotation_grace, 5m by default), then never again.`,
		Args: cobra.ExactArgs(1),
		RunE: g.runBoth(func(e *env, args []string) error { return rotateKey(e, args[0]) },
			func(e *env, args []string) error { return rotateRemote(e, args[0]) }),
	}
}

func rotateKey(e *env, id string) error {
	k, secret, err := e.store.RotateKey(e.ctx, id, e.op)
	if err != nil {
		return err
	}
	v, err := e.view(k, secret)
	if err != nil {
		return err
	}
	return e.printSecret(v, fmt.Sprintf("The previous Access ID %s keeps working for %s.", id, e.grace))
}

func newDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete <access-id>",
		Short: "Deletes an access key for good",
		Args:  cobra.ExactArgs(1),
		RunE: g.runBoth(func(e *env, args []string) error { return deleteKey(e, args[0]) },
			func(e *env, args []string) error { return deleteRemote(e, args[0]) }),
	}
}

func deleteKey(e *env, id string) error {
	if err := e.store.DeleteKey(e.ctx, id, e.op); err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(map[string]any{"id": id, "deleted": true})
	}
	_, err := fmt.Fprintf(e.out, "Access key %s deleted.\n", id)
	return err
}
