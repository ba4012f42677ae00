package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// ownerPageSize is how many owners one ListOwners call returns while
// listing.
const ownerPageSize = 1000

func newRoleListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Lists the roles with their capabilities",
		Args:  cobra.NoArgs,
		RunE:  g.run(func(e *env, _ []string) error { return listRoles(e) }),
	}
}

func listRoles(e *env) error {
	roles, err := e.store.Roles(e.ctx)
	if err != nil {
		return err
	}
	views := make([]keystore.RoleView, 0, len(roles))
	for _, r := range roles {
		views = append(views, keystore.ViewRole(r))
	}
	slices.SortFunc(views, func(a, b keystore.RoleView) int { return strings.Compare(a.ID, b.ID) })
	if e.json {
		return e.writeJSON(map[string]any{"data": views})
	}
	if len(views) == 0 {
		_, err := fmt.Fprintln(e.out, "No roles.")
		return err
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCAPABILITIES")
	for _, r := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, r.Name, listOrNone(r.Capabilities))
	}
	return tw.Flush()
}

func newRoleDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete <role>",
		Short: "Deletes a role that no user or service account holds",
		Long: `Deletes a role. A role that a user or service account holds is refused,
as by the management API: take it off them first.`,
		Args: cobra.ExactArgs(1),
		RunE: g.run(func(e *env, args []string) error { return deleteRole(e, args[0]) }),
	}
}

func deleteRole(e *env, id string) error {
	if err := e.store.DeleteRole(e.ctx, id, e.op); err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(map[string]any{"id": id, "deleted": true})
	}
	_, err := fmt.Fprintf(e.out, "Role %s deleted.\n", id)
	return err
}

// allOwners returns every owner of kind, in ID order.
func (e *env) allOwners(kind keystore.OwnerKind) ([]*keystore.Owner, error) {
	var all []*keystore.Owner
	token := ""
	for {
		page, err := e.store.ListOwners(e.ctx, kind, ownerPageSize, token)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Owners...)
		if page.Next == "" {
			return all, nil
		}
		token = page.Next
	}
}

// activeText is how text output names an owner's state.
func activeText(active bool) string {
	if active {
		return "active"
	}
	return "inactive"
}

func newUserListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Lists the users with their roles and state",
		Args:  cobra.NoArgs,
		RunE:  g.run(func(e *env, _ []string) error { return listUsers(e) }),
	}
}

func listUsers(e *env) error {
	owners, err := e.allOwners(keystore.OwnerUser)
	if err != nil {
		return err
	}
	if e.json {
		views := make([]keystore.UserView, 0, len(owners))
		for _, o := range owners {
			views = append(views, keystore.ViewUser(o))
		}
		return e.writeJSON(map[string]any{"data": views})
	}
	if len(owners) == 0 {
		_, err := fmt.Fprintln(e.out, "No users.")
		return err
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tSTATE\tROLES")
	for _, o := range owners {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.ID, o.Email, activeText(o.IsActive), listOrNone(o.RoleIDs))
	}
	return tw.Flush()
}

func newUserStateCommand(g *globals, name, short string, active bool) *cobra.Command {
	return &cobra.Command{
		Use:   name + " <user>",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE:  g.run(func(e *env, args []string) error { return setUserActive(e, args[0], active) }),
	}
}

func setUserActive(e *env, id string, active bool) error {
	o, err := e.store.UpdateOwner(e.ctx, id, keystore.OwnerUser, func(o *keystore.Owner) { o.IsActive = active }, e.op)
	if err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(keystore.ViewUser(o))
	}
	_, err = fmt.Fprintf(e.out, "User %s is %s.\n", o.ID, activeText(o.IsActive))
	return err
}

func newUserDeleteCommand(g *globals) *cobra.Command {
	var deleteKeys bool
	c := &cobra.Command{
		Use:   "delete <user> [--delete-keys]",
		Short: "Deletes a user, and with --delete-keys its access keys",
		Long: `Deletes a user. A user who owns access keys is refused, as by the
management API, unless --delete-keys is given: then its keys are deleted
too, each with its own audit event. Its personal role, if any, stays.`,
		Args: cobra.ExactArgs(1),
		RunE: g.run(func(e *env, args []string) error {
			return deleteOwner(e, args[0], keystore.OwnerUser, deleteKeys)
		}),
	}
	c.Flags().BoolVar(&deleteKeys, "delete-keys", false, "Delete the user's access keys too")
	return c
}

// deleteOwner deletes a user or service account, with its keys when
// cascade is set.
func deleteOwner(e *env, id string, kind keystore.OwnerKind, cascade bool) error {
	n, err := e.store.DeleteOwner(e.ctx, id, kind, cascade, e.op)
	if err != nil {
		if ce, ok := errors.AsType[*keystore.ConflictError](err); ok && ce.Code == "user:has_access_keys" {
			return &keystore.ConflictError{Code: ce.Code, Message: fmt.Sprintf("user %q owns access keys; delete them first or add --delete-keys", id)}
		}
		return err
	}
	if e.json {
		return e.writeJSON(map[string]any{"id": id, "deleted": true, "deletedAccessKeys": n})
	}
	noun := "User"
	if kind == keystore.OwnerServiceAccount {
		noun = "Service account"
	}
	_, err = fmt.Fprintf(e.out, "%s %s deleted with %d access keys.\n", noun, id, n)
	return err
}

func newServiceAccountCommand(g *globals) *cobra.Command {
	return group("service-account", "Manages service accounts",
		newServiceAccountAddCommand(g), newServiceAccountListCommand(g), newServiceAccountDeleteCommand(g))
}

// serviceAccountEmailDomain is the domain of the address a service
// account gets without --email; .invalid is reserved and never delivers.
const serviceAccountEmailDomain = "service-account.invalid"

func newServiceAccountAddCommand(g *globals) *cobra.Command {
	var o keystore.Owner
	c := &cobra.Command{
		Use:   "add --id <id> --name <name> [--role <role>]... [--email <email>]",
		Short: "Creates an active service account",
		Long: `Creates an active service account with the given roles. An existing ID,
of a user or service account, is refused. Without --email the account gets
the address <id>@` + serviceAccountEmailDomain + `. Keys of a service account
are made with 'create --service-account <id>'.`,
		Args: cobra.NoArgs,
		RunE: g.run(func(e *env, _ []string) error { return addServiceAccount(e, o) }),
	}
	c.Flags().StringVar(&o.ID, "id", "", "Service account ID (required)")
	c.Flags().StringVar(&o.Name, "name", "", "Display name (required)")
	c.Flags().StringVar(&o.Email, "email", "", "Email address (default: <id>@"+serviceAccountEmailDomain+")")
	c.Flags().StringArrayVar(&o.RoleIDs, "role", nil, "Role of the service account; repeatable")
	_ = c.MarkFlagRequired("id")
	_ = c.MarkFlagRequired("name")
	return c
}

func addServiceAccount(e *env, o keystore.Owner) error {
	o.Kind, o.IsActive = keystore.OwnerServiceAccount, true
	if o.Email == "" {
		o.Email = o.ID + "@" + serviceAccountEmailDomain
	}
	saved, err := e.store.CreateOwner(e.ctx, o, e.op)
	if err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(keystore.ViewServiceAccount(saved))
	}
	p, err := e.store.Principal(e.ctx, saved.ID)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.out, "Service account %s (%s) created (active).\n  Roles: %s\n  Capabilities: %s\n",
		saved.ID, saved.Name, listOrNone(saved.RoleIDs), listOrNone(p.Capabilities))
	return err
}

func newServiceAccountListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Lists the service accounts with their roles and state",
		Args:  cobra.NoArgs,
		RunE:  g.run(func(e *env, _ []string) error { return listServiceAccounts(e) }),
	}
}

func listServiceAccounts(e *env) error {
	owners, err := e.allOwners(keystore.OwnerServiceAccount)
	if err != nil {
		return err
	}
	if e.json {
		views := make([]keystore.ServiceAccountView, 0, len(owners))
		for _, o := range owners {
			views = append(views, keystore.ViewServiceAccount(o))
		}
		return e.writeJSON(map[string]any{"data": views})
	}
	if len(owners) == 0 {
		_, err := fmt.Fprintln(e.out, "No service accounts.")
		return err
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tROLES")
	for _, o := range owners {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.ID, o.Name, activeText(o.IsActive), listOrNone(o.RoleIDs))
	}
	return tw.Flush()
}

func newServiceAccountDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete <id>",
		Short: "Deletes a service account and its access keys",
		Long: `Deletes a service account and, as the management API does, every access
key it owns, each with its own audit event.`,
		Args: cobra.ExactArgs(1),
		RunE: g.run(func(e *env, args []string) error {
			return deleteOwner(e, args[0], keystore.OwnerServiceAccount, true)
		}),
	}
}
