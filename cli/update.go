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
}

func newUpdateCommand(g *globals) *cobra.Command {
	var in updateInput
	c := &cobra.Command{
		Use:   "update <access-id> [--label <label>] [--scope <scope>]... [--cors <origin>]...",
		Short: "Changes the label, scopes or allowlist of an access key",
		Long: `Changes the label, scopes or allowlist of an access key, all at once or
not at all. What is not given keeps its value; --scope and --cors replace
the whole list. --scope none gives the key the Default scope again (every
capability of its owner); --cors none empties the allowlist.

` + catalogueHelp,
		Args: cobra.ExactArgs(1),
	}
	c.RunE = g.runBoth(func(e *env, args []string) error { return updateKey(e, args[0], editOf(c.Flags().Changed, in)) },
		func(e *env, args []string) error { return updateRemote(e, args[0], editOf(c.Flags().Changed, in)) })
	c.Flags().StringVar(&in.label, "label", "", "New label of the key")
	c.Flags().StringArrayVar(&in.scopes, "scope", nil, "Scope of the key, from the catalogue; repeatable; 'none' for the Default scope")
	c.Flags().StringArrayVar(&in.cors, "cors", nil, "Allowlisted origin https://host[:port]; repeatable; 'none' to empty the allowlist")
	return c
}

// editOf turns the flags given into a key edit.
func editOf(changed func(string) bool, in updateInput) keystore.KeyUpdate {
	var u keystore.KeyUpdate
	if changed("label") {
		u.Label = &in.label
	}
	if changed("scope") {
		u.Scopes = listOrClear(in.scopes)
	}
	if changed("cors") {
		u.CORSHeaders = listOrClear(in.cors)
	}
	return u
}

// listOrClear is an empty list for a lone "none", else items.
func listOrClear(items []string) *[]string {
	if len(items) == 1 && items[0] == clearValue {
		return &[]string{}
	}
	return &items
}

func updateKey(e *env, id string, u keystore.KeyUpdate) error {
	if u.Label == nil && u.Scopes == nil && u.CORSHeaders == nil {
		return errors.New("nothing to change: give --label, --scope or --cors")
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
	if e.json {
		return e.writeJSON(v)
	}
	_, err = fmt.Fprintf(e.out, "Access key %s updated.\n  Label:     %s\n  Scopes:    %s\n  Allowlist: %s\n",
		v.ID, v.Label, scopeList(v.Scopes), listOrNone(v.CORSHeaders))
	return err
}
