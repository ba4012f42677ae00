// Package accessgate puts access keys in front of any HTTP API as a Caddy
// v2 module. Importing it registers the access_keys app, the
// http.handlers.access_keys and http.handlers.access_keys_api handlers and
// the `caddy access-keys` command, so that
//
//	xcaddy build --with github.com/accessgate/accessgate
//
// builds a Caddy that has them. The code lives in the caddymodule,
// mgmtapi, keystore and authcache packages.
package accessgate

import (
	// The Caddy modules of accessgate.
	_ "github.com/accessgate/accessgate/caddymodule"
)
