package mgmtapi

import (
	"net/http"
	"strconv"

	"github.com/accessgate/accessgate/internal/errbody"
	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
)

// Paging of the list endpoints.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// apiAccessKey is the AccessKey of the management API, field for field as
// Sumo Logic shows it.
type apiAccessKey struct {
	ID               string             `json:"id"`
	Label            string             `json:"label"`
	Key              string             `json:"key"`
	CORSHeaders      []string           `json:"corsHeaders"`
	Disabled         bool               `json:"disabled"`
	Scopes           []string           `json:"scopes"`
	EffectiveScopes  []string           `json:"effectiveScopes"`
	CreatedAt        keystore.Timestamp `json:"createdAt"`
	CreatedBy        string             `json:"createdBy"`
	ModifiedAt       keystore.Timestamp `json:"modifiedAt"`
	ModifiedBy       string             `json:"modifiedBy"`
	LastUsed         keystore.Timestamp `json:"lastUsed"`
	ExpiresAt        keystore.Timestamp `json:"expiresAt"`
	OwnerID          string             `json:"ownerId"`
	ServiceAccountID string             `json:"serviceAccountId,omitempty"`
	RateLimit        *limits.Rate       `json:"rateLimit"`
	ConcurrencyLimit *int               `json:"concurrencyLimit"`
	Quota            *limits.Quota      `json:"quota"`
	// QuotaUsed is the part of the quota used in the current period (0
	// without a quota); QuotaResetsAt is when that period ends (null
	// without a quota).
	QuotaUsed     int64              `json:"quotaUsed"`
	QuotaResetsAt keystore.Timestamp `json:"quotaResetsAt"`
}

func apiKeyOf(v keystore.AccessKey) apiAccessKey {
	return apiAccessKey{
		ID: v.ID, Label: v.Label, Key: v.Key, CORSHeaders: v.CORSHeaders, Disabled: v.Disabled,
		Scopes: v.Scopes, EffectiveScopes: v.EffectiveScopes,
		CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy, ModifiedAt: v.ModifiedAt, ModifiedBy: v.ModifiedBy,
		LastUsed: v.LastUsed, ExpiresAt: v.ExpiresAt, OwnerID: v.OwnerID, ServiceAccountID: v.ServiceAccountID,
		RateLimit: v.RateLimit, ConcurrencyLimit: v.ConcurrencyLimit, Quota: v.Quota,
	}
}

// listPage is the body of a list: data, and next, the continuation token
// (null on the last page).
type listPage[T any] struct {
	Data []T     `json:"data"`
	Next *string `json:"next"`
}

// dataOnly is the body of a list that is never paged.
type dataOnly[T any] struct {
	Data []T `json:"data"`
}

func nextToken(t string) *string {
	if t == "" {
		return nil
	}
	return &t
}

// paging reads the limit (1..1000, default 100) and token parameters.
func (c *apiCall) paging() (int, string, error) {
	q := c.r.URL.Query()
	limit := defaultPageSize
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			return 0, "", apiErrorf(http.StatusBadRequest, c.noun+":invalid_limit", "limit must be a whole number from 1 to %d", maxPageSize)
		}
		limit = n
	}
	return limit, q.Get("token"), nil
}

// views builds the public shape of keys; secret is given only for the one
// key of a create or rotate response.
func (c *apiCall) views(keys []*keystore.Key, secret string) ([]apiAccessKey, error) {
	out := make([]apiAccessKey, 0, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pol, err := c.store.Policies(c.ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(keys))
	owners := make([]string, len(keys))
	for i, k := range keys {
		ids[i], owners[i] = k.ID, k.OwnerID
	}
	used, err := c.store.LastUsed(c.ctx, ids...)
	if err != nil {
		return nil, err
	}
	principals, err := c.store.Principals(c.ctx, owners)
	if err != nil {
		return nil, err
	}
	now := c.store.Now()
	for _, k := range keys {
		lu := used[k.ID]
		if t := c.inst.LastUsed(k.ID); t.After(lu) {
			lu = t
		}
		out = append(out, apiKeyOf(keystore.View(k, pol, lu, principals[k.OwnerID], secret, now)))
	}
	if err := c.fillQuotaUsage(keys, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *apiCall) replyKey(k *keystore.Key, secret string) error {
	v, err := c.views([]*keystore.Key{k}, secret)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, v[0])
}

// forgetKey drops this instance's cached authentications of a key at
// once; other instances follow the invalidation message the store
// publishes.
func (c *apiCall) forgetKey(id string) { c.inst.ForgetKey(id) }

// listKeys serves GET /accessKeys: every key of the organisation.
func listKeys(c *apiCall) error {
	if err := c.require(capManageKeys); err != nil {
		return err
	}
	limit, token, err := c.paging()
	if err != nil {
		return err
	}
	page, err := c.store.ListKeys(c.ctx, limit, token)
	if err != nil {
		return err
	}
	data, err := c.views(page.Keys, "")
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, listPage[apiAccessKey]{Data: data, Next: nextToken(page.Next)})
}

// personalKeys serves GET /accessKeys/personal: the caller's own keys.
func personalKeys(c *apiCall) error {
	if err := c.require(capsOwnKeysRead...); err != nil {
		return err
	}
	keys, err := c.store.KeysOfOwner(c.ctx, c.ident.OwnerID)
	if err != nil {
		return err
	}
	data, err := c.views(keys, "")
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, dataOnly[apiAccessKey]{Data: data})
}

// listServiceAccountKeys serves GET /serviceAccounts/{sa}/accessKeys.
func listServiceAccountKeys(sa string) apiFunc {
	return func(c *apiCall) error {
		if err := c.require(capManageKeys); err != nil {
			return err
		}
		if _, err := c.store.OwnerOfKind(c.ctx, sa, keystore.OwnerServiceAccount); err != nil {
			return err
		}
		keys, err := c.store.KeysOfOwner(c.ctx, sa)
		if err != nil {
			return err
		}
		data, err := c.views(keys, "")
		if err != nil {
			return err
		}
		return c.reply(http.StatusOK, listPage[apiAccessKey]{Data: data})
	}
}

// createKey serves POST /accessKeys (a key for the caller) and, with sa
// set, POST /serviceAccounts/{sa}/accessKeys. Giving the new key usage
// limits of its own needs manageAccessKeys.
func createKey(sa string) apiFunc {
	return func(c *apiCall) error {
		owner := c.ident.OwnerID
		if sa == "" {
			if err := c.require(capsOwnKeysWrite...); err != nil {
				return err
			}
		} else {
			if err := c.require(capManageKeys); err != nil {
				return err
			}
			if _, err := c.store.OwnerOfKind(c.ctx, sa, keystore.OwnerServiceAccount); err != nil {
				return err
			}
			owner = sa
		}
		body, err := c.readBody()
		if err != nil {
			return err
		}
		spec := keystore.KeySpec{OwnerID: owner}
		if v := body.str("label"); v != nil {
			spec.Label = *v
		}
		if v := body.strs("corsHeaders"); v != nil {
			spec.CORSHeaders = *v
		}
		if v := body.strs("scopes"); v != nil {
			spec.Scopes = *v
		}
		spec.Limits = keystore.KeyLimits{
			RateLimit:        settingOrNil(body.rate("rateLimit")),
			ConcurrencyLimit: settingOrNil(body.concurrency("concurrencyLimit")),
			Quota:            settingOrNil(body.quota("quota")),
		}
		if err := body.err(); err != nil {
			return err
		}
		l := spec.Limits
		if err := c.checkLimitsChange(l.RateLimit != nil || l.ConcurrencyLimit != nil || l.Quota != nil); err != nil {
			return err
		}
		if err := c.checkScopes(spec.Scopes); err != nil {
			return err
		}
		if err := c.checkKeyWithin(owner, spec.Scopes, "cannot create this key"); err != nil {
			return err
		}
		k, secret, err := c.store.CreateKey(c.ctx, spec, c.op)
		if err != nil {
			return err
		}
		return c.replyKey(k, secret)
	}
}

// loadKey reads a key the caller may see (write: may change). Keys of
// other owners are reported missing unless the caller has
// manageAccessKeys; with sa set the key must belong to that service
// account. For a change it also reads a key rotated out, which the store
// lets be deactivated or deleted during its grace.
func (c *apiCall) loadKey(sa, id string, write bool) (*keystore.Key, error) {
	if sa != "" {
		if err := c.require(capManageKeys); err != nil {
			return nil, err
		}
		if _, err := c.store.OwnerOfKind(c.ctx, sa, keystore.OwnerServiceAccount); err != nil {
			return nil, err
		}
	}
	caps := capsOwnKeysRead
	if write {
		caps = capsOwnKeysWrite
	}
	if err := c.require(caps...); err != nil {
		return nil, err
	}
	read := c.store.Key
	if write {
		read = c.store.KeyOrRetired
	}
	k, err := read(c.ctx, id)
	if err != nil {
		return nil, err
	}
	notFound := &keystore.NotFoundError{Kind: "accessKey", ID: id}
	switch {
	case sa != "" && k.OwnerID != sa:
		return nil, notFound
	case k.OwnerID != c.ident.OwnerID && !c.can(capManageKeys):
		return nil, notFound
	}
	return k, nil
}

// getKey serves GET /accessKeys/{id}.
func getKey(sa, id string) apiFunc {
	return func(c *apiCall) error {
		k, err := c.loadKey(sa, id, false)
		if err != nil {
			return err
		}
		return c.replyKey(k, "")
	}
}

// updateKey serves PUT /accessKeys/{id}: disabled (required),
// corsHeaders, scopes and the usage limits. New scopes must keep the key
// within the calling key's effective scopes; changing a limit needs
// manageAccessKeys.
func updateKey(sa, id string) apiFunc {
	return func(c *apiCall) error {
		k, err := c.loadKey(sa, id, true)
		if err != nil {
			return err
		}
		body, err := c.readBody()
		if err != nil {
			return err
		}
		var u keystore.KeyUpdate
		if body.require("disabled") {
			u.Disabled = body.boolean("disabled")
		}
		u.CORSHeaders = body.strs("corsHeaders")
		u.Scopes = body.strs("scopes")
		u.RateLimit = body.rate("rateLimit")
		u.ConcurrencyLimit = body.concurrency("concurrencyLimit")
		u.Quota = body.quota("quota")
		if err := body.err(); err != nil {
			return err
		}
		keepUnchangedLimits(&u, k)
		if err := c.checkLimitsChange(u.RateLimit != nil || u.ConcurrencyLimit != nil || u.Quota != nil); err != nil {
			return err
		}
		if u.Scopes != nil {
			if err := c.checkScopes(*u.Scopes); err != nil {
				return err
			}
			if err := c.checkKeyWithin(k.OwnerID, *u.Scopes, "cannot change the scopes of this key"); err != nil {
				return err
			}
		}
		k, err = c.store.UpdateKey(c.ctx, id, u, c.op)
		if err != nil {
			return err
		}
		c.forgetKey(id)
		return c.replyKey(k, "")
	}
}

// rotateKey serves PUT /accessKeys/{id}/rotate: the answer carries the new
// Access ID and Access Key. Since it hands out a secret, only the owner
// rotates a user's key, holders of manageAccessKeys rotate the keys of
// service accounts, and the key must be within the calling key's
// effective scopes.
func rotateKey(sa, id string) apiFunc {
	return func(c *apiCall) error {
		k, err := c.loadKey(sa, id, true)
		if err != nil {
			return err
		}
		if k.OwnerID != c.ident.OwnerID && k.OwnerKind != keystore.OwnerServiceAccount {
			return apiErrorf(http.StatusForbidden, errbody.CodeForbidden,
				"only its owner rotates the access key of a user: rotating hands out the new secret, and a secret is never handed to someone else; deactivate or delete the key instead")
		}
		if err := c.checkKeyWithin(k.OwnerID, k.Scopes, "cannot rotate this key"); err != nil {
			return err
		}
		nk, secret, err := c.store.RotateKey(c.ctx, id, c.op)
		if err != nil {
			return err
		}
		c.forgetKey(id)
		return c.replyKey(nk, secret)
	}
}

// deleteKey serves DELETE /accessKeys/{id}.
func deleteKey(sa, id string) apiFunc {
	return func(c *apiCall) error {
		if _, err := c.loadKey(sa, id, true); err != nil {
			return err
		}
		if err := c.store.DeleteKey(c.ctx, id, c.op); err != nil {
			return err
		}
		c.forgetKey(id)
		return c.noContent()
	}
}
