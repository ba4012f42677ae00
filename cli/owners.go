package cli

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// personalRolePrefix starts the ID of the role that holds the
// capabilities given to a user directly.
const personalRolePrefix = "personal."

func newRoleCommand(g *globals) *cobra.Command {
	return group("role", "Manages roles", newRoleAddCommand(g), newRoleListCommand(g), newRoleDeleteCommand(g))
}

// group is a command that only holds verbs.
func group(use, short string, verbs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: unknownVerb}
	c.AddCommand(verbs...)
	return c
}

// roleInput is what `role add` is given.
type roleInput struct {
	role    keystore.Role
	replace bool
}

func newRoleAddCommand(g *globals) *cobra.Command {
	var in roleInput
	c := &cobra.Command{
		Use:   "add --id <role> --capability <capability>... [--name <name>] [--description <text>] [--replace]",
		Short: "Creates a role, or replaces one with --replace",
		Long: `Creates a role. An existing role is replaced only with --replace: its
capabilities become those given, and its name and description change
when given. Role names are unique, whatever their case.`,
		Args: cobra.NoArgs,
		RunE: g.run(func(e *env, _ []string) error { return addRole(e, in) }),
	}
	c.Flags().StringVar(&in.role.ID, "id", "", "Role ID (required)")
	c.Flags().StringArrayVar(&in.role.Capabilities, "capability", nil, "Capability the role grants; repeatable")
	c.Flags().StringVar(&in.role.Name, "name", "", "Display name (default: the ID)")
	c.Flags().StringVar(&in.role.Description, "description", "", "Description")
	c.Flags().BoolVar(&in.replace, "replace", false, "Replace the role if it exists")
	_ = c.MarkFlagRequired("id")
	return c
}

func addRole(e *env, in roleInput) error {
	saved, err := saveRole(e, in.role, in.replace)
	if err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(saved)
	}
	_, err = fmt.Fprintf(e.out, "Role %s saved.\n  Capabilities: %s\n", saved.ID, listOrNone(saved.Capabilities))
	return err
}

// saveRole creates r, or with replace updates the role of its ID if
// there is one, as the API does: checked, atomic and audited.
func saveRole(e *env, r keystore.Role, replace bool) (*keystore.Role, error) {
	if r.Name == "" {
		r.Name = r.ID
	}
	if r.Capabilities == nil {
		r.Capabilities = []string{}
	}
	saved, err := e.store.CreateRole(e.ctx, r, e.op)
	if ce, ok := errors.AsType[*keystore.ConflictError](err); !ok || ce.Code != "role:exists" {
		return saved, err
	}
	if !replace {
		return nil, &keystore.ConflictError{Code: "role:exists", Message: fmt.Sprintf("role %q exists; add --replace to replace it", r.ID)}
	}
	return e.store.UpdateRole(e.ctx, r.ID, func(old *keystore.Role) {
		old.Capabilities = r.Capabilities
		if r.Name != r.ID {
			old.Name = r.Name
		}
		if r.Description != "" {
			old.Description = r.Description
		}
	}, e.op)
}

func newUserCommand(g *globals) *cobra.Command {
	return group("user", "Manages users",
		newUserAddCommand(g),
		newUserListCommand(g),
		newUserStateCommand(g, "disable", "Deactivates a user: none of its access keys works until it is enabled", false),
		newUserStateCommand(g, "enable", "Activates a user again", true),
		newUserDeleteCommand(g),
	)
}

// userInput is what `user add` is given.
type userInput struct {
	owner        keystore.Owner
	capabilities []string
}

func newUserAddCommand(g *globals) *cobra.Command {
	var in userInput
	c := &cobra.Command{
		Use:   "add --id <user> --email <email> [--role <role>]... [--capability <capability>]...",
		Short: "Creates or replaces an active user",
		Long: `Creates or replaces an active user with the given roles. Capabilities
given with --capability go into the user's personal role, personal.<user>,
which is created or replaced and added to the user's roles.`,
		Args: cobra.NoArgs,
		RunE: g.run(func(e *env, _ []string) error { return putUser(e, in) }),
	}
	c.Flags().StringVar(&in.owner.ID, "id", "", "User ID (required)")
	c.Flags().StringVar(&in.owner.Email, "email", "", "Email address (required)")
	c.Flags().StringVar(&in.owner.FirstName, "first-name", "", "First name")
	c.Flags().StringVar(&in.owner.LastName, "last-name", "", "Last name")
	c.Flags().StringArrayVar(&in.owner.RoleIDs, "role", nil, "Role of the user; repeatable")
	c.Flags().StringArrayVar(&in.capabilities, "capability", nil, "Capability given directly (personal role); repeatable")
	_ = c.MarkFlagRequired("id")
	_ = c.MarkFlagRequired("email")
	return c
}

func putUser(e *env, in userInput) error {
	o := in.owner
	o.Kind, o.IsActive = keystore.OwnerUser, true
	if len(in.capabilities) > 0 {
		if err := checkUser(e, o, in.capabilities); err != nil {
			return err
		}
		role, err := saveRole(e, personalRole(o.ID, in.capabilities), true)
		if err != nil {
			return err
		}
		o.RoleIDs = append(o.RoleIDs, role.ID)
	}
	saved, err := saveUser(e, o)
	if err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(saved)
	}
	p, err := e.store.Principal(e.ctx, saved.ID)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.out, "User %s <%s> saved (active).\n  Roles: %s\n  Capabilities: %s\n",
		saved.ID, saved.Email, listOrNone(saved.RoleIDs), listOrNone(p.Capabilities))
	return err
}

// saveUser creates the user o, or updates the user of its ID if there
// is one, as the API does: checked, atomic and audited.
func saveUser(e *env, o keystore.Owner) (*keystore.Owner, error) {
	saved, err := e.store.CreateOwner(e.ctx, o, e.op)
	if !errors.Is(err, keystore.ErrConflict) {
		return saved, err
	}
	if err := checkNotServiceAccount(e, o.ID); err != nil {
		return nil, err
	}
	return e.store.UpdateOwner(e.ctx, o.ID, keystore.OwnerUser, func(old *keystore.Owner) {
		old.Email, old.FirstName, old.LastName = o.Email, o.FirstName, o.LastName
		old.RoleIDs, old.IsActive = o.RoleIDs, o.IsActive
	}, e.op)
}

// personalRole is the role holding the capabilities given to a user
// directly.
func personalRole(userID string, capabilities []string) keystore.Role {
	return keystore.Role{
		ID:           personalRolePrefix + userID,
		Name:         "Personal role of " + userID,
		Description:  "Capabilities given directly to user " + userID,
		Capabilities: capabilities,
	}
}

// checkUser finds, before anything is written, the problems that would
// make the store refuse the user after its personal role was saved.
func checkUser(e *env, o keystore.Owner, capabilities []string) error {
	v := &keystore.ValidationError{}
	problem := func(field, code, msg string) {
		v.Problems = append(v.Problems, keystore.FieldError{Field: field, Code: code, Message: msg})
	}
	if !keystore.ValidID(o.ID) || !keystore.ValidID(personalRolePrefix+o.ID) {
		problem("id", "owner:invalid_id", fmt.Sprintf("id must be 1-%d letters, digits or _.:@- to have a personal role", 64-len(personalRolePrefix)))
	}
	for _, c := range capabilities {
		if !keystore.ValidID(c) {
			problem("capabilities", "role:invalid_capability", fmt.Sprintf("invalid capability %q", c))
		}
	}
	if _, err := mail.ParseAddress(o.Email); err != nil || strings.ContainsAny(o.Email, "<> ") {
		problem("email", "owner:invalid_email", "email must be a valid address")
	}
	roles, err := e.store.Roles(e.ctx)
	if err != nil {
		return err
	}
	for _, r := range o.RoleIDs {
		if roles[r] == nil {
			problem("roleIds", "role:not_found", fmt.Sprintf("role %q does not exist", r))
		}
	}
	if len(v.Problems) > 0 {
		return v
	}
	return checkNotServiceAccount(e, o.ID)
}

// checkNotServiceAccount fails when id already names a service account.
func checkNotServiceAccount(e *env, id string) error {
	old, err := e.store.Owner(e.ctx, id)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if old.Kind != keystore.OwnerUser {
		return &keystore.ConflictError{Code: "owner:exists", Message: fmt.Sprintf("id %q is already used by a %s", id, old.Kind)}
	}
	return nil
}

// listOrNone joins items for text output.
func listOrNone(items []string) string {
	if len(items) == 0 {
		return "(none)"
	}
	return strings.Join(items, ", ")
}
