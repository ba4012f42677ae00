// Package caddymodule is the Caddy face of accessgate: the access_keys app
// (shared state: the Redis client, the caches, the background loops), the
// access_keys handler that guards an upstream, their Caddyfile syntax and
// metrics, the registration of the `caddy access-keys` command (whose verbs
// live in package cli; caddymodule reads its --config as a Caddy config),
// and access_keys_api, the thin adapter that serves mgmtapi's management
// API with the app's gate and state.
//
// It is the one package that imports Caddy: keystore, authcache, mgmtapi,
// cli and internal/errbody, which it builds on, must not, and nothing but
// the root package imports it.
package caddymodule
