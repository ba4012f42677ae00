package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// apiTimeout bounds one call of the management API.
const apiTimeout = 10 * time.Second

// API is a client of a gateway's management API, authenticated with one
// access key.
type API struct {
	base, id, key string
	client        *http.Client
}

// NewAPI returns a client of the management API at base (the gateway's
// URL) that authenticates as id:key.
func NewAPI(base, id, key string) *API {
	return &API{base: base, id: id, key: key, client: &http.Client{Timeout: apiTimeout}}
}

// Key is the part of an AccessKey object the soak uses.
type Key struct {
	ID       string `json:"id"`
	Key      string `json:"key"`
	Disabled bool   `json:"disabled"`
}

// Create makes a key with the given label and scopes.
func (a *API) Create(ctx context.Context, label string, scopes []string) (Key, error) {
	var k Key
	err := a.do(ctx, http.MethodPost, "/api/v1/accessKeys", map[string]any{"label": label, "scopes": scopes}, &k)
	return k, err
}

// SetDisabled deactivates or activates a key.
func (a *API) SetDisabled(ctx context.Context, id string, disabled bool) error {
	return a.do(ctx, http.MethodPut, "/api/v1/accessKeys/"+url.PathEscape(id), map[string]any{"disabled": disabled}, nil)
}

// Rotate rotates a key and returns the new pair.
func (a *API) Rotate(ctx context.Context, id string) (Key, error) {
	var k Key
	err := a.do(ctx, http.MethodPut, "/api/v1/accessKeys/"+url.PathEscape(id)+"/rotate", nil, &k)
	return k, err
}

// Delete deletes a key.
func (a *API) Delete(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodDelete, "/api/v1/accessKeys/"+url.PathEscape(id), nil, nil)
}

// List returns every key of the organisation, by Access ID.
func (a *API) List(ctx context.Context) (map[string]Key, error) {
	keys := map[string]Key{}
	token := ""
	for {
		var page struct {
			Data []Key  `json:"data"`
			Next string `json:"next"`
		}
		path := "/api/v1/accessKeys?limit=1000"
		if token != "" {
			path += "&token=" + url.QueryEscape(token)
		}
		if err := a.do(ctx, http.MethodGet, path, nil, &page); err != nil {
			return nil, err
		}
		for _, k := range page.Data {
			keys[k.ID] = k
		}
		if page.Next == "" {
			return keys, nil
		}
		token = page.Next
	}
}

// do sends one request and decodes a 2xx answer into out (if not nil).
func (a *API) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.id, a.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
