package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// User is a user as the API shows it.
type User struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	FirstName  string    `json:"firstName"`
	LastName   string    `json:"lastName"`
	RoleIDs    []string  `json:"roleIds"`
	IsActive   bool      `json:"isActive"`
	CreatedAt  time.Time `json:"createdAt"`
	CreatedBy  string    `json:"createdBy"`
	ModifiedAt time.Time `json:"modifiedAt"`
	ModifiedBy string    `json:"modifiedBy"`
}

// ServiceAccount is a service account as the API shows it.
type ServiceAccount struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Email      string    `json:"email"`
	RoleIDs    []string  `json:"roleIds"`
	IsActive   bool      `json:"isActive"`
	CreatedAt  time.Time `json:"createdAt"`
	CreatedBy  string    `json:"createdBy"`
	ModifiedAt time.Time `json:"modifiedAt"`
	ModifiedBy string    `json:"modifiedBy"`
}

// Role is a role as the API shows it.
type Role struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Capabilities []string  `json:"capabilities"`
	CreatedAt    time.Time `json:"createdAt"`
	CreatedBy    string    `json:"createdBy"`
	ModifiedAt   time.Time `json:"modifiedAt"`
	ModifiedBy   string    `json:"modifiedBy"`
}

// Page is one page of a list; Next is the token of the next page, "" on
// the last.
type Page[T any] struct {
	Data []T    `json:"data"`
	Next string `json:"next"`
}

// ListUsers returns one page of the users (needs viewUsersAndRoles).
// limit 0 asks for the API's default; token is "" for the first page.
func (c *Client) ListUsers(ctx context.Context, limit int, token string) (*Page[User], error) {
	var p Page[User]
	return &p, c.do(ctx, http.MethodGet, pagePath("/users", limit, token), nil, &p)
}

// ListServiceAccounts returns one page of the service accounts.
func (c *Client) ListServiceAccounts(ctx context.Context, limit int, token string) (*Page[ServiceAccount], error) {
	var p Page[ServiceAccount]
	return &p, c.do(ctx, http.MethodGet, pagePath("/serviceAccounts", limit, token), nil, &p)
}

// ListRoles returns one page of the roles.
func (c *Client) ListRoles(ctx context.Context, limit int, token string) (*Page[Role], error) {
	var p Page[Role]
	return &p, c.do(ctx, http.MethodGet, pagePath("/roles", limit, token), nil, &p)
}

// pagePath adds the paging parameters to path.
func pagePath(path string, limit int, token string) string {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if token != "" {
		q.Set("token", token)
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return path
}
