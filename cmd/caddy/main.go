// Command caddy is Caddy with its standard modules and accessgate's
// access_keys app and handlers.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/accessgate/accessgate"
)

func main() {
	caddycmd.Main()
}
