// Package cli is the `access-keys` command: its verbs (role, user,
// service-account, create, update, list, disable, enable, rotate, delete,
// policy, audit) work directly on
// the data of the access_keys app in Redis, through keystore, with the
// same checks and audit events as the management API.
//
// Setup builds the command on a cobra.Command; the program that registers
// it (caddymodule, for Caddy's command line) passes a ReadConfig that
// turns the file named by --config into a Target: the Redis setup, key
// prefix and rotation grace. The package imports keystore, never Caddy
// nor caddymodule, so it can be used and tested alone.
package cli
