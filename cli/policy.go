package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// policyView is how the policies are shown, in the API's names.
type policyView struct {
	LifetimeDays int `json:"accessKeysLifetimeInDays"`
	UnusedDays   int `json:"unusedAccessKeysDisableAfterInDays"`
}

// policyInput is what `policy` is given; nil fields stay unchanged.
type policyInput struct {
	lifetime *int
	unused   *int
}

func newPolicyCommand(g *globals) *cobra.Command {
	var lifetime, unused int
	c := &cobra.Command{
		Use:   "policy [--lifetime-days <n>] [--unused-days <n>]",
		Short: "Shows or sets the expiration and deactivation policies",
		Long: `Shows the two key policies, or sets those given:

  --lifetime-days  accessKeysLifetimeInDays: keys expire this many days after
                   their creation, rotation or the last change of this
                   policy (0 = never). Changing it restarts every key's expiry.
  --unused-days    unusedAccessKeysDisableAfterInDays: keys unused this many
                   days are deactivated (0 = never).

Both are whole days from 0 to ` + strconv.Itoa(keystore.MaxPolicyDays) + `. Nothing is changed when either is invalid.`,
		Args: cobra.NoArgs,
	}
	c.Flags().IntVar(&lifetime, "lifetime-days", keystore.DefaultLifetimeDays, "Set accessKeysLifetimeInDays (0 = never)")
	c.Flags().IntVar(&unused, "unused-days", keystore.DefaultUnusedDays, "Set unusedAccessKeysDisableAfterInDays (0 = never)")
	input := func() policyInput {
		var in policyInput
		if c.Flags().Changed("lifetime-days") {
			in.lifetime = &lifetime
		}
		if c.Flags().Changed("unused-days") {
			in.unused = &unused
		}
		return in
	}
	c.RunE = g.runBoth(func(e *env, _ []string) error { return setPolicies(e, input()) },
		func(e *env, _ []string) error { return setPoliciesRemote(e, input()) })
	return c
}

func setPolicies(e *env, in policyInput) error {
	if err := in.validate(); err != nil {
		return err
	}
	if in.lifetime != nil {
		if _, err := e.store.SetLifetimeDays(e.ctx, *in.lifetime, e.op); err != nil {
			return err
		}
	}
	if in.unused != nil {
		if _, err := e.store.SetUnusedDays(e.ctx, *in.unused, e.op); err != nil {
			return err
		}
	}
	pol, err := e.store.Policies(e.ctx)
	if err != nil {
		return err
	}
	return printPolicies(e, policyView{LifetimeDays: pol.LifetimeDays, UnusedDays: pol.UnusedDays})
}

// printPolicies prints the two policies.
func printPolicies(e *env, v policyView) error {
	if e.json {
		return e.writeJSON(v)
	}
	_, err := fmt.Fprintf(e.out, "accessKeysLifetimeInDays:           %s\nunusedAccessKeysDisableAfterInDays: %s\n",
		daysText(v.LifetimeDays), daysText(v.UnusedDays))
	return err
}

// validate checks both values before either is written.
func (in policyInput) validate() error {
	v := &keystore.ValidationError{}
	check := func(field string, n *int) {
		if n != nil && (*n < 0 || *n > keystore.MaxPolicyDays) {
			v.Problems = append(v.Problems, keystore.FieldError{
				Field:   field,
				Code:    "policy:invalid_days",
				Message: fmt.Sprintf("%d is not between 0 and %d days (0 = never)", *n, keystore.MaxPolicyDays),
			})
		}
	}
	check("accessKeysLifetimeInDays", in.lifetime)
	check("unusedAccessKeysDisableAfterInDays", in.unused)
	if len(v.Problems) > 0 {
		return v
	}
	return nil
}

func daysText(n int) string {
	if n == 0 {
		return "0 (never)"
	}
	return strconv.Itoa(n)
}
