package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
	"github.com/accessgate/accessgate/mgmtapi/client"
)

// KeyEnv is the environment variable the Access Key of --api is read
// from when --key is not given.
const KeyEnv = "ACCESSGATE_ACCESS_KEY"

// remoteHelp is the part of the command's help on --api.
const remoteHelp = `

With --api URL --id ACCESS_ID the key verbs (create, list, update, disable,
enable, rotate, delete, policy, usage) go through the management API of a running
gateway instead of Redis, as the access key ACCESS_ID and with its
capabilities; no Redis credentials are needed. URL is where the API is
served, such as https://gateway.example.com/api/v1. The Access Key is read
from the environment variable ` + KeyEnv + ` (or --key, which leaves it in
the shell history). --api excludes --redis, --config, --adapter and --prefix.`

// remoteFunc runs one verb through the management API.
type remoteFunc func(e *env, args []string) error

// localOnly is the flags that name Redis, which --api replaces.
var localOnly = []string{"redis", "config", "adapter", "prefix"}

// remote reports whether the command runs through the management API,
// and checks that the flags given fit that choice.
func (g *globals) remote(cmd *cobra.Command) (bool, error) {
	if g.api == "" {
		for _, f := range []string{"id", "key"} {
			if cmd.Flags().Changed(f) && g.flagIsGlobal(cmd, f) {
				return false, fmt.Errorf("--%s needs --api", f)
			}
		}
		return false, nil
	}
	for _, f := range localOnly {
		if cmd.Flags().Changed(f) {
			return false, fmt.Errorf("--api and --%s exclude each other: --api works through the management API, --%s names Redis", f, f)
		}
	}
	return true, nil
}

// flagIsGlobal reports whether the flag name of cmd is the global one
// (some verbs have an --id of their own).
func (g *globals) flagIsGlobal(cmd *cobra.Command, name string) bool {
	return cmd.Flags().Lookup(name) == g.flags.Lookup(name)
}

// openRemote makes the environment of a verb run through the API.
func (g *globals) openRemote(cmd *cobra.Command) (*env, error) {
	key := g.key
	if key == "" {
		key = os.Getenv(KeyEnv)
	}
	if g.id == "" {
		return nil, errors.New("--api needs --id (the Access ID to call the API with)")
	}
	if key == "" {
		return nil, fmt.Errorf("--api needs the Access Key of --id: set %s (or give --key)", KeyEnv)
	}
	api, err := client.New(g.api, g.id, key, nil)
	if err != nil {
		return nil, err
	}
	return &env{
		ctx:    cmd.Context(),
		api:    api,
		self:   g.id,
		json:   g.json,
		out:    cmd.OutOrStdout(),
		errOut: cmd.ErrOrStderr(),
	}, nil
}

// unreachable restates the error of a request that got no answer.
func unreachable(api string, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return &verbError{msg: fmt.Sprintf("cannot reach the management API at %s: %v", api, ue.Err), err: err}
	}
	return err
}

// notRemote is the error of a verb that --api does not offer.
func notRemote(cmd *cobra.Command) error {
	return fmt.Errorf("%q is not available with --api: it needs --redis or --config", cmd.CommandPath())
}

// remoteView turns a key as the API shows it into the shape local mode
// prints, with its status and limits.
func remoteView(k *client.AccessKey, now time.Time) keyView {
	v := keystore.AccessKey{
		ID:               k.ID,
		Label:            k.Label,
		Key:              k.Key,
		CORSHeaders:      nonNilList(k.CORSHeaders),
		Disabled:         k.Disabled,
		Scopes:           nonNilList(k.Scopes),
		EffectiveScopes:  nonNilList(k.EffectiveScopes),
		CreatedAt:        keystore.Timestamp{Time: k.CreatedAt},
		CreatedBy:        k.CreatedBy,
		ModifiedAt:       keystore.Timestamp{Time: k.ModifiedAt},
		ModifiedBy:       k.ModifiedBy,
		OwnerID:          k.OwnerID,
		ServiceAccountID: k.ServiceAccountID,
		Status:           keystore.StatusActive,
	}
	if k.LastUsed != nil {
		v.LastUsed = keystore.Timestamp{Time: *k.LastUsed}
	}
	if k.ExpiresAt != nil {
		v.ExpiresAt = keystore.Timestamp{Time: *k.ExpiresAt}
	}
	switch {
	case !v.ExpiresAt.IsZero() && !now.Before(v.ExpiresAt.Time):
		v.Status = keystore.StatusExpired
		v.Disabled = true
	case k.Disabled:
		v.Status = keystore.StatusDeactivated
	}
	kv := keyView{AccessKey: v}
	kv.ConcurrencyLimit = k.ConcurrencyLimit
	if k.QuotaUsed != nil {
		kv.QuotaUsed = *k.QuotaUsed
	}
	if k.RateLimit != nil {
		kv.RateLimit = normalRate(&limits.Rate{Requests: k.RateLimit.Requests, PeriodSeconds: k.RateLimit.PeriodSeconds, Burst: k.RateLimit.Burst})
	}
	if k.Quota != nil {
		kv.Quota = &limits.Quota{Requests: k.Quota.Requests, Period: k.Quota.Period}
	}
	if k.QuotaResetsAt != nil {
		kv.QuotaResetsAt = &keystore.Timestamp{Time: *k.QuotaResetsAt}
	}
	return kv
}

// apiRate is r as the API takes it.
func apiRate(r limits.Rate) client.Rate {
	return client.Rate{Requests: r.Requests, PeriodSeconds: r.PeriodSeconds, Burst: r.Burst}
}

// apiQuota is q as the API takes it.
func apiQuota(q limits.Quota) client.Quota {
	return client.Quota{Requests: q.Requests, Period: q.Period}
}

// apiSetting turns a limit change into the API's, converting its value.
func apiSetting[T, U any](s *keystore.Setting[T], conv func(T) U) *client.Setting[U] {
	switch {
	case s == nil:
		return nil
	case s.Value == nil:
		return client.Clear[U]()
	}
	return client.Set(conv(*s.Value))
}

func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// createRemote creates a key for the caller's own user or, with
// --service-account, for that service account. Scopes are checked by the
// gateway, which knows the scopes of its route rules too.
func createRemote(e *env, in createInput) error {
	if in.user != "" && in.serviceAccount != "" {
		return errors.New("give at most one of --user or --service-account")
	}
	if err := in.limitSpec(); err != nil {
		return err
	}
	req := client.CreateRequest{
		Label: in.spec.Label, Scopes: in.spec.Scopes, CORSHeaders: in.spec.CORSHeaders,
		ConcurrencyLimit: in.spec.Limits.ConcurrencyLimit,
	}
	if r := in.spec.Limits.RateLimit; r != nil {
		req.RateLimit = new(apiRate(*r))
	}
	if q := in.spec.Limits.Quota; q != nil {
		req.Quota = new(apiQuota(*q))
	}
	if in.user != "" {
		self, err := e.api.GetAccessKey(e.ctx, e.self)
		if err != nil {
			return fmt.Errorf("with --api, create makes keys for the user of --id or a service account; finding that user: %w", err)
		}
		if self.OwnerID != in.user || self.ServiceAccountID != "" {
			return fmt.Errorf("with --api, create makes keys only for the user of --id (%s) or a service account (--service-account): leave out --user %s", self.OwnerID, in.user)
		}
	}
	k, err := e.api.CreateAccessKey(e.ctx, in.serviceAccount, req)
	if err != nil {
		return err
	}
	return e.printSecret(remoteView(k, time.Now()), "")
}

// listRemote lists every key (which needs manageAccessKeys), or those of
// owner.
func listRemote(e *env, owner string) error {
	keys, err := e.api.AllAccessKeys(e.ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	views := make([]keyView, 0, len(keys))
	for i := range keys {
		if owner == "" || keys[i].OwnerID == owner {
			views = append(views, remoteView(&keys[i], now))
		}
	}
	if e.json {
		return e.writeJSON(map[string]any{"data": views})
	}
	return printKeyTable(e.out, views)
}

func setDisabledRemote(e *env, id string, disabled bool) error {
	k, err := e.api.UpdateAccessKey(e.ctx, id, client.UpdateRequest{Disabled: disabled})
	if err != nil {
		return err
	}
	v := remoteView(k, time.Now())
	if e.json {
		return e.writeJSON(v)
	}
	_, err = fmt.Fprintf(e.out, "Access key %s is %s.\n", v.ID, v.Status)
	return err
}

func rotateRemote(e *env, id string) error {
	k, err := e.api.RotateAccessKey(e.ctx, id)
	if err != nil {
		return err
	}
	return e.printSecret(remoteView(k, time.Now()),
		fmt.Sprintf("The previous Access ID %s keeps working for the rotation grace of the gateway (rotation_grace, 5m by default).", id))
}

func deleteRemote(e *env, id string) error {
	if err := e.api.DeleteAccessKey(e.ctx, id); err != nil {
		return err
	}
	if e.json {
		return e.writeJSON(map[string]any{"id": id, "deleted": true})
	}
	_, err := fmt.Fprintf(e.out, "Access key %s deleted.\n", id)
	return err
}

// updateRemote changes the scopes, allowlist or limits of a key. The API
// sets disabled with every change, so the key's current value is read
// first.
func updateRemote(e *env, id string, u keystore.KeyUpdate) error {
	if u.Label != nil {
		return errors.New("--label is not available with --api: the management API does not change labels")
	}
	if u.Scopes == nil && u.CORSHeaders == nil && !changesLimits(u) {
		return errors.New("nothing to change: give --scope, --cors, --rate, --concurrency or --quota")
	}
	for _, list := range []*[]string{u.Scopes, u.CORSHeaders} {
		if list != nil && slices.Contains(*list, clearValue) {
			return fmt.Errorf("%q clears a list and must be given alone", clearValue)
		}
	}
	cur, err := e.api.GetAccessKey(e.ctx, id)
	if err != nil {
		return err
	}
	k, err := e.api.UpdateAccessKey(e.ctx, id, client.UpdateRequest{
		Disabled: cur.Disabled, Scopes: u.Scopes, CORSHeaders: u.CORSHeaders,
		RateLimit:        apiSetting(u.RateLimit, apiRate),
		ConcurrencyLimit: apiSetting(u.ConcurrencyLimit, func(n int) int { return n }),
		Quota:            apiSetting(u.Quota, apiQuota),
	})
	if err != nil {
		return err
	}
	return e.printUpdated(remoteView(k, time.Now()), changesLimits(u))
}

func setPoliciesRemote(e *env, in policyInput) error {
	if err := in.validate(); err != nil {
		return err
	}
	if in.lifetime != nil {
		if _, err := e.api.SetLifetimeDays(e.ctx, *in.lifetime); err != nil {
			return err
		}
	}
	if in.unused != nil {
		if _, err := e.api.SetUnusedDays(e.ctx, *in.unused); err != nil {
			return err
		}
	}
	var v policyView
	var err error
	if v.LifetimeDays, err = e.api.LifetimeDays(e.ctx); err != nil {
		return err
	}
	if v.UnusedDays, err = e.api.UnusedDays(e.ctx); err != nil {
		return err
	}
	return printPolicies(e, v)
}
