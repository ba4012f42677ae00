// Package client is a small Go client for the accessgate management API,
// written against the document the API serves (openapi.json). It speaks
// plain HTTP with the Access ID and Access Key of the caller as basic
// credentials, and needs neither Caddy nor Redis.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxBody bounds how much of an answer the client reads.
const maxBody = 8 << 20

// MaxPageSize is the largest page ListAccessKeys asks for.
const MaxPageSize = 1000

// Client calls the management API of one gateway as one access key.
type Client struct {
	base   string
	id     string
	key    string
	client *http.Client
}

// New returns a client for the management API at base, the URL the API
// is served under (such as https://gw.example.com/api/v1), that
// authenticates with the Access ID id and the Access Key key. hc may be
// nil for a client with a 30 second timeout.
func New(base, id, key string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("API URL %q: give an http or https URL, such as https://gateway.example.com/api/v1", base)
	}
	if id == "" || key == "" {
		return nil, errors.New("an Access ID and an Access Key are needed")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(base, "/"), id: id, key: key, client: hc}, nil
}

// AccessKey is an access key as the API shows it. Key is the Access Key
// (the secret), filled only in the answer of a create or rotate.
type AccessKey struct {
	ID               string     `json:"id"`
	Label            string     `json:"label"`
	Key              string     `json:"key"`
	CORSHeaders      []string   `json:"corsHeaders"`
	Disabled         bool       `json:"disabled"`
	Scopes           []string   `json:"scopes"`
	EffectiveScopes  []string   `json:"effectiveScopes"`
	CreatedAt        time.Time  `json:"createdAt"`
	CreatedBy        string     `json:"createdBy"`
	ModifiedAt       time.Time  `json:"modifiedAt"`
	ModifiedBy       string     `json:"modifiedBy"`
	LastUsed         *time.Time `json:"lastUsed"`
	ExpiresAt        *time.Time `json:"expiresAt"`
	OwnerID          string     `json:"ownerId"`
	ServiceAccountID string     `json:"serviceAccountId,omitempty"`
	// RateLimit, ConcurrencyLimit and Quota are the key's own limits; nil:
	// the defaults of the gateway.
	RateLimit        *Rate  `json:"rateLimit"`
	ConcurrencyLimit *int   `json:"concurrencyLimit"`
	Quota            *Quota `json:"quota"`
	// QuotaUsed is how much of Quota the current period has used, and
	// QuotaResetsAt when that period ends; nil without a quota.
	QuotaUsed     *int64     `json:"quotaUsed"`
	QuotaResetsAt *time.Time `json:"quotaResetsAt"`
}

// Rate is a rate limit: Requests per PeriodSeconds (1, 60 or 3600), with
// bursts of up to Burst requests (0 when sent: the rate).
type Rate struct {
	Requests      int64 `json:"requests"`
	PeriodSeconds int64 `json:"periodSeconds"`
	Burst         int64 `json:"burst,omitempty"`
}

// Quota is a quota: Requests per UTC "day" or "month".
type Quota struct {
	Requests int64  `json:"requests"`
	Period   string `json:"period"`
}

// Setting changes an optional setting in an update: a nil *Setting
// leaves it out of the request, so that it keeps its value; a Setting
// whose Value is nil is sent as null, which gives back the default.
type Setting[T any] struct{ Value *T }

// Set returns a Setting that sets v.
func Set[T any](v T) *Setting[T] { return &Setting[T]{Value: &v} }

// Clear returns a Setting that restores the default.
func Clear[T any]() *Setting[T] { return &Setting[T]{} }

// MarshalJSON writes the value, or null to clear the setting.
func (s Setting[T]) MarshalJSON() ([]byte, error) { return json.Marshal(s.Value) }

// KeyPage is one page of access keys; Next is the token of the next
// page, "" on the last.
type KeyPage struct {
	Data []AccessKey `json:"data"`
	Next string      `json:"next"`
}

// CreateRequest describes a new access key. Scopes empty means the
// Default scope.
type CreateRequest struct {
	Label       string   `json:"label"`
	CORSHeaders []string `json:"corsHeaders,omitempty"`
	Scopes      []string `json:"scopes,omitempty"`
	// RateLimit, ConcurrencyLimit and Quota are the key's own limits; nil
	// ones are not sent, and the key has the defaults.
	RateLimit        *Rate  `json:"rateLimit,omitempty"`
	ConcurrencyLimit *int   `json:"concurrencyLimit,omitempty"`
	Quota            *Quota `json:"quota,omitempty"`
}

// UpdateRequest changes an access key. Disabled is always sent; a nil
// list keeps its value and an empty one clears it. A nil limit Setting
// keeps the limit; Clear sends null, which restores the default.
type UpdateRequest struct {
	Disabled         bool            `json:"disabled"`
	CORSHeaders      *[]string       `json:"corsHeaders,omitempty"`
	Scopes           *[]string       `json:"scopes,omitempty"`
	RateLimit        *Setting[Rate]  `json:"rateLimit,omitempty"`
	ConcurrencyLimit *Setting[int]   `json:"concurrencyLimit,omitempty"`
	Quota            *Setting[Quota] `json:"quota,omitempty"`
}

// Problem is one entry of the errors of an error answer.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is an error answer of the API. Body B (every error but those of
// authentication) fills Problems; body A (401, and 403, 429 or 503 of the
// authentication) fills Code and Message.
type Error struct {
	// Status is the HTTP status of the answer.
	Status int
	// ID is the error id the gateway logged the error with.
	ID string
	// Code and Message come from body A.
	Code, Message string
	// Problems come from body B.
	Problems []Problem
}

// Error joins the messages of the answer.
func (e *Error) Error() string {
	var msgs []string
	if e.Message != "" {
		msgs = append(msgs, e.Message)
	}
	for _, p := range e.Problems {
		msgs = append(msgs, p.Message)
	}
	if len(msgs) == 0 {
		msgs = append(msgs, http.StatusText(e.Status))
	}
	s := fmt.Sprintf("management API: %d: %s", e.Status, strings.Join(msgs, "; "))
	if e.ID != "" {
		s += " (error id " + e.ID + ")"
	}
	return s
}

// HasCode reports whether the answer carries code, in body A or B.
func (e *Error) HasCode(code string) bool {
	if e.Code == code {
		return true
	}
	for _, p := range e.Problems {
		if p.Code == code {
			return true
		}
	}
	return false
}

// ListAccessKeys returns one page of every access key (needs
// manageAccessKeys). limit is 1..MaxPageSize, or 0 for the API's default;
// token is "" for the first page.
func (c *Client) ListAccessKeys(ctx context.Context, limit int, token string) (*KeyPage, error) {
	var page KeyPage
	return &page, c.do(ctx, http.MethodGet, pagePath("/accessKeys", limit, token), nil, &page)
}

// AllAccessKeys pages through every access key.
func (c *Client) AllAccessKeys(ctx context.Context) ([]AccessKey, error) {
	var all []AccessKey
	token := ""
	for {
		page, err := c.ListAccessKeys(ctx, MaxPageSize, token)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if page.Next == "" {
			return all, nil
		}
		token = page.Next
	}
}

// PersonalAccessKeys returns the keys of the caller's own user.
func (c *Client) PersonalAccessKeys(ctx context.Context) ([]AccessKey, error) {
	var out struct {
		Data []AccessKey `json:"data"`
	}
	return out.Data, c.do(ctx, http.MethodGet, "/accessKeys/personal", nil, &out)
}

// ServiceAccountAccessKeys returns the keys of service account sa.
func (c *Client) ServiceAccountAccessKeys(ctx context.Context, sa string) ([]AccessKey, error) {
	var out struct {
		Data []AccessKey `json:"data"`
	}
	return out.Data, c.do(ctx, http.MethodGet, keysPath(sa, ""), nil, &out)
}

// GetAccessKey returns the access key id.
func (c *Client) GetAccessKey(ctx context.Context, id string) (*AccessKey, error) {
	var k AccessKey
	return &k, c.do(ctx, http.MethodGet, keysPath("", id), nil, &k)
}

// CreateAccessKey creates a key for the caller's own user, or for the
// service account sa when sa is not "". The answer carries the secret.
func (c *Client) CreateAccessKey(ctx context.Context, sa string, req CreateRequest) (*AccessKey, error) {
	var k AccessKey
	return &k, c.do(ctx, http.MethodPost, keysPath(sa, ""), req, &k)
}

// UpdateAccessKey changes the access key id.
func (c *Client) UpdateAccessKey(ctx context.Context, id string, req UpdateRequest) (*AccessKey, error) {
	var k AccessKey
	return &k, c.do(ctx, http.MethodPut, keysPath("", id), req, &k)
}

// RotateAccessKey replaces the access key id; the answer carries the new
// Access ID and Access Key.
func (c *Client) RotateAccessKey(ctx context.Context, id string) (*AccessKey, error) {
	var k AccessKey
	return &k, c.do(ctx, http.MethodPut, keysPath("", id)+"/rotate", nil, &k)
}

// DeleteAccessKey deletes the access key id.
func (c *Client) DeleteAccessKey(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, keysPath("", id), nil, nil)
}

// LifetimeDays returns accessKeysLifetimeInDays (0 = never).
func (c *Client) LifetimeDays(ctx context.Context) (int, error) {
	var v struct {
		Days int `json:"accessKeysLifetimeInDays"`
	}
	return v.Days, c.do(ctx, http.MethodGet, "/policies/accessKeysLifetime", nil, &v)
}

// SetLifetimeDays sets accessKeysLifetimeInDays and returns it.
func (c *Client) SetLifetimeDays(ctx context.Context, days int) (int, error) {
	var v struct {
		Days int `json:"accessKeysLifetimeInDays"`
	}
	v.Days = days
	return v.Days, c.do(ctx, http.MethodPut, "/policies/accessKeysLifetime", v, &v)
}

// UnusedDays returns unusedAccessKeysDisableAfterInDays (0 = never).
func (c *Client) UnusedDays(ctx context.Context) (int, error) {
	var v struct {
		Days int `json:"unusedAccessKeysDisableAfterInDays"`
	}
	return v.Days, c.do(ctx, http.MethodGet, "/policies/disableUnusedAccessKeys", nil, &v)
}

// SetUnusedDays sets unusedAccessKeysDisableAfterInDays and returns it.
func (c *Client) SetUnusedDays(ctx context.Context, days int) (int, error) {
	var v struct {
		Days int `json:"unusedAccessKeysDisableAfterInDays"`
	}
	v.Days = days
	return v.Days, c.do(ctx, http.MethodPut, "/policies/disableUnusedAccessKeys", v, &v)
}

// keysPath is the path of the keys of sa (or of /accessKeys when sa is
// ""), and of key id within them when id is not "".
func keysPath(sa, id string) string {
	p := "/accessKeys"
	if sa != "" {
		p = "/serviceAccounts/" + url.PathEscape(sa) + "/accessKeys"
	}
	if id != "" {
		p += "/" + url.PathEscape(id)
	}
	return p
}

// do sends one request with body in as JSON (nil for none) and decodes
// a 2xx answer into out (nil to ignore it).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.id, c.key)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("reading the answer of %s %s: %w", method, path, err)
	}
	if len(data) > maxBody {
		return fmt.Errorf("the answer of %s %s is larger than %d bytes", method, path, maxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errorOf(resp.StatusCode, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the answer of %s %s: %w", method, path, err)
	}
	return nil
}

// errorOf reads body A or body B of an error answer.
func errorOf(status int, data []byte) *Error {
	var b struct {
		ID      string    `json:"id"`
		Code    string    `json:"code"`
		Message string    `json:"message"`
		Errors  []Problem `json:"errors"`
	}
	e := &Error{Status: status}
	if json.Unmarshal(data, &b) == nil {
		e.ID, e.Code, e.Message, e.Problems = b.ID, b.Code, b.Message, b.Errors
	}
	return e
}
