package cli

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// clearValue given as the only --scope or --cors clears the list.
const clearValue = "none"

// updateInput is what `update` is given.
type updateInput struct {
	label  string
	scopes []string
	cors   []string
	limits limitInput
}

func newUpdateCommand(g *globals) *cobra.Command {
	var in updateInput
	c := &cobra.Command{
		Use:   "update <access-id> [--label <label>] [--scope <scope>]... [--cors <origin>]... [--rate <N/m|none> [--burst <N>]] [--concurrency <N|none>] [--quota <N/day|none>]",
		Short: "Changes the label, scopes, allowlist or limits of an access key",
		Long: `Changes the label, scopes, allowlist or limits of an access key, all at
once or not at all. What is not given keeps its value; --scope and --cors
replace the whole list. --scope none gives the key the Default scope again
(every capability of its owner); --cors none empties the allowlist.
--rate none, --concurrency none and --quota none give the key the default
of that limit again.

` + limitsHelp + `

Examples:
  caddy access-keys update ID --label deploy --scope viewCollectors
  caddy access-keys update ID --rate 100/m --burst 200 --concurrency 10
  caddy access-keys update ID --quota 100000/day
  caddy access-keys update ID --rate none --quota none

` + catalogueHelp,
		Args: cobra.ExactArgs(1),
	}
	edit := func() (keystore.KeyUpdate, error) { return editOf(c.Flags().Changed, in) }
	// Bad values fail before Redis or the API is reached.
	c.PreRunE = func(*cobra.Command, []string) error { _, err := edit(); return err }
	c.RunE = g.runBoth(func(e *env, args []string) error {
		u, err := edit()
		if err != nil {
			return err
		}
		return updateKey(e, args[0], u)
	}, func(e *env, args []string) error {
		u, err := edit()
		if err != nil {
			return err
		}
		return updateRemote(e, args[0], u)
	})
	c.Flags().StringVar(&in.label, "label", "", "New label of the key")
	c.Flags().StringArrayVar(&in.scopes, "scope", nil, "Scope of the key, from the catalogue; repeatable; 'none' for the Default scope")
	c.Flags().StringArrayVar(&in.cors, "cors", nil, "Allowlisted origin https://host[:port]; repeatable; 'none' to empty the allowlist")
	addLimitFlags(c.Flags(), &in.limits, true)
	return c
}

// editOf turns the flags given into a key edit; it fails on a bad limit.
func editOf(changed func(string) bool, in updateInput) (keystore.KeyUpdate, error) {
	lim, err := parseLimits(changed, in.limits)
	if err != nil {
		return keystore.KeyUpdate{}, err
	}
	u := keystore.KeyUpdate{RateLimit: lim.rate, ConcurrencyLimit: lim.concurrency, Quota: lim.quota}
	if changed("label") {
		u.Label = &in.label
	}
	if changed("scope") {
		u.Scopes = listOrClear(in.scopes)
	}
	if changed("cors") {
		u.CORSHeaders = listOrClear(in.cors)
	}
	return u, nil
}

// changesLimits reports whether u changes a limit.
func changesLimits(u keystore.KeyUpdate) bool {
	return u.RateLimit != nil || u.ConcurrencyLimit != nil || u.Quota != nil
}

// listOrClear is an empty list for a lone "none", else items.
func listOrClear(items []string) *[]string {
	if len(items) == 1 && items[0] == clearValue {
		return &[]string{}
	}
	return &items
}

func updateKey(e *env, id string, u keystore.KeyUpdate) error {
	if u.Label == nil && u.Scopes == nil && u.CORSHeaders == nil && !changesLimits(u) {
		return errors.New("nothing to change: give --label, --scope, --cors, --rate, --concurrency or --quota")
	}
	for _, list := range []*[]string{u.Scopes, u.CORSHeaders} {
		if list != nil && slices.Contains(*list, clearValue) {
			return fmt.Errorf("%q clears a list and must be given alone", clearValue)
		}
	}
	if u.Scopes != nil {
		if err := checkCatalogue(*u.Scopes); err != nil {
			return err
		}
	}
	k, err := e.store.UpdateKey(e.ctx, id, u, e.op)
	if err != nil {
		return err
	}
	v, err := e.view(k, "")
	if err != nil {
		return err
	}
	return e.printUpdated(v, changesLimits(u))
}

// printUpdated prints a key just updated. Its limits show when it has
// some or when the update changed them.
func (e *env) printUpdated(v keyView, limitsChanged bool) error {
	if e.json {
		return e.writeJSON(v)
	}
	fmt.Fprintf(e.out, "Access key %s updated.\n  Label:     %s\n  Scopes:    %s\n  Allowlist: %s\n",
		v.ID, v.Label, scopeList(v.Scopes), listOrNone(v.CORSHeaders))
	if !limitsChanged && !v.hasLimits() {
		return nil
	}
	_, err := fmt.Fprintf(e.out, "  Limits:    %s\n", v.limitLine())
	return err
}
