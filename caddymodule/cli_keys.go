package caddymodule

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// cliKeyLabel is the label of keys created without --label.
const cliKeyLabel = "CLI key"

// cliListPageSize is how many keys one ListKeys call returns while listing.
const cliListPageSize = 1000

// cliSecretWarning follows every printed Access Key.
const cliSecretWarning = "Store the Access Key now: it cannot be shown again."

func cliNewCreateCommand(g *cliGlobals) *cobra.Command {
	var spec keystore.KeySpec
	c := &cobra.Command{
		Use:   "create --user <id> [--label <label>] [--scope <scope>]... [--cors <origin>]...",
		Short: "Creates an access key and prints its Access ID and Access Key once",
		Long: `Creates an access key owned by a user or a service account and prints its
Access ID and Access Key. The Access Key is printed this once and cannot be
read again. A key without --scope has the Default scope: every capability
of its owner.`,
		Args: cobra.NoArgs,
		RunE: g.run(func(e *cliEnv, _ []string) error { return cliCreateKey(e, spec) }),
	}
	c.Flags().StringVar(&spec.OwnerID, "user", "", "Owner of the key: a user or service account ID (required)")
	c.Flags().StringVar(&spec.Label, "label", cliKeyLabel, "Label of the key")
	c.Flags().StringArrayVar(&spec.Scopes, "scope", nil, "Scope of the key; repeatable (default: every capability of the owner)")
	c.Flags().StringArrayVar(&spec.CORSHeaders, "cors", nil, "Allowlisted origin https://host[:port]; repeatable")
	_ = c.MarkFlagRequired("user")
	return c
}

func cliCreateKey(e *cliEnv, spec keystore.KeySpec) error {
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

func cliNewListCommand(g *cliGlobals) *cobra.Command {
	var owner string
	c := &cobra.Command{
		Use:   "list [--user <id>]",
		Short: "Lists access keys with their status, last use and expiry",
		Args:  cobra.NoArgs,
		RunE:  g.run(func(e *cliEnv, _ []string) error { return cliListKeys(e, owner) }),
	}
	c.Flags().StringVar(&owner, "user", "", "List only the keys of this user or service account")
	return c
}

func cliListKeys(e *cliEnv, owner string) error {
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
	return cliPrintKeyTable(e.out, views)
}

// keysToList returns the keys of owner, or every key when owner is "".
func (e *cliEnv) keysToList(owner string) ([]*keystore.Key, error) {
	if owner != "" {
		if _, err := e.store.Owner(e.ctx, owner); err != nil {
			return nil, err
		}
		return e.store.KeysOfOwner(e.ctx, owner)
	}
	var all []*keystore.Key
	token := ""
	for {
		page, err := e.store.ListKeys(e.ctx, cliListPageSize, token)
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
func (e *cliEnv) views(keys []*keystore.Key) ([]keystore.AccessKey, error) {
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
	out := make([]keystore.AccessKey, 0, len(keys))
	for _, k := range keys {
		p, ok := owners[k.OwnerID]
		if !ok {
			if p, err = e.store.Principal(e.ctx, k.OwnerID); err != nil {
				return nil, err
			}
			owners[k.OwnerID] = p
		}
		out = append(out, keystore.View(k, pol, used[k.ID], p, "", now))
	}
	return out, nil
}

// lastUsed reads the last-use times of keys, cliListPageSize at a time.
func (e *cliEnv) lastUsed(keys []*keystore.Key) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(keys))
	for start := 0; start < len(keys); start += cliListPageSize {
		end := min(start+cliListPageSize, len(keys))
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
func (e *cliEnv) view(k *keystore.Key, secret string) (keystore.AccessKey, error) {
	pol, err := e.store.Policies(e.ctx)
	if err != nil {
		return keystore.AccessKey{}, err
	}
	p, err := e.store.Principal(e.ctx, k.OwnerID)
	if err != nil {
		return keystore.AccessKey{}, err
	}
	used, err := e.store.LastUsed(e.ctx, k.ID)
	if err != nil {
		return keystore.AccessKey{}, err
	}
	return keystore.View(k, pol, used[k.ID], p, secret, e.store.Now()), nil
}

// cliPrintKeyTable prints one line per key.
func cliPrintKeyTable(out io.Writer, views []keystore.AccessKey) error {
	if len(views) == 0 {
		_, err := fmt.Fprintln(out, "No access keys.")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLABEL\tOWNER\tSTATUS\tLAST USED\tEXPIRES AT\tSCOPES")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			v.ID, v.Label, v.OwnerID, v.Status, cliTimeOr(v.LastUsed, "never"), cliTimeOr(v.ExpiresAt, "never"), cliScopeList(v.Scopes))
	}
	return tw.Flush()
}

// cliTimeOr formats t for a table, or returns none when it is unset.
func cliTimeOr(t keystore.Timestamp, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

// cliScopeList shows a key's scopes; none means the Default scope.
func cliScopeList(scopes []string) string {
	if len(scopes) == 0 {
		return "default"
	}
	return strings.Join(scopes, " ")
}

// printSecret prints a key just created or rotated, with its secret.
func (e *cliEnv) printSecret(v keystore.AccessKey, note string) error {
	if e.json {
		if err := e.writeJSON(v); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.out, "Access ID:  %s\nAccess Key: %s\n", v.ID, v.Key)
		fmt.Fprintf(e.out, "Label:      %s\nOwner:      %s\n", v.Label, v.OwnerID)
		fmt.Fprintf(e.out, "Scopes:     %s\nAllowlist:  %s\n", cliScopeList(v.Scopes), cliListOrNone(v.CORSHeaders))
		fmt.Fprintf(e.out, "Expires at: %s\n", cliTimeOr(v.ExpiresAt, "never"))
	}
	if note != "" {
		fmt.Fprintln(e.errOut, note)
	}
	_, err := fmt.Fprintln(e.errOut, cliSecretWarning)
	return err
}

func cliNewStatusCommand(g *cliGlobals, name, short string, disabled bool) *cobra.Command {
	return &cobra.Command{
		Use:   name + " <access-id>",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE:  g.run(func(e *cliEnv, args []string) error { return cliSetDisabled(e, args[0], disabled) }),
	}
}

func cliSetDisabled(e *cliEnv, id string, disabled bool) error {
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

func cliNewRotateCommand(g *cliGlobals) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate <access-id>",
		Short: "Replaces a key with a new Access ID and Access Key, printed once",
		Long: `Replaces a key with a new Access ID and Access Key that keep its label,
scopes, allowlist and owner. The old pair keeps working for the rotation
grace of the app (rotation_grace, 5m by default), then never again.`,
		Args: cobra.ExactArgs(1),
		RunE: g.run(func(e *cliEnv, args []string) error { return cliRotateKey(e, args[0]) }),
	}
}

func cliRotateKey(e *cliEnv, id string) error {
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

func cliNewDeleteCommand(g *cliGlobals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete <access-id>",
		Short: "Deletes an access key for good",
		Args:  cobra.ExactArgs(1),
		RunE:  g.run(func(e *cliEnv, args []string) error { return cliDeleteKey(e, args[0]) }),
	}
}

func cliDeleteKey(e *cliEnv, id string) error {
	if err := e.store.DeleteKey(e.ctx, id, e.op); err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(map[string]any{"id": id, "deleted": true})
	}
	_, err := fmt.Fprintf(e.out, "Access key %s deleted.\n", id)
	return err
}
