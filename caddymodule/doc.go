// Package caddymodule is the Caddy face of accessgate: the access_keys app
// (shared state: the Redis client, the caches, the background loops), the
// access_keys handler that guards an upstream, the access_keys_api
// management handler, their Caddyfile syntax, and the registration of the
// `caddy access-keys` command, whose verbs live in package cli (caddymodule
// reads its --config as a Caddy config).
package caddymodule
