// Package mgmtapi is the management API of accessgate, compatible with
// Sumo Logic's access-key API, as a plain net/http handler over keystore:
// the routes under /api/v1, the JSON views of keys, owners, roles and
// policies, the errors of body B and the capability checks that decide
// what a calling key may do. It serves the web console of
// mgmtapi/console beside it.
//
// Authentication is not its own: the gateway that serves the API passes
// in an Authenticator (the same gate its access_keys handler uses, so a
// key works the same way through both), the instance state a request
// works on (the store, this instance's caches to forget after a change,
// its unflushed last-use times, its audit queue), the client address and
// the scopes its configuration maps. caddymodule is that gateway.
//
// It must never import Caddy or caddymodule, so that it is testable with
// net/http/httptest and a real Redis alone; it imports keystore and
// internal/errbody.
package mgmtapi
