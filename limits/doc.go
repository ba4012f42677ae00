// Package limits enforces usage limits on access keys and their owners:
// rates, requests in flight and quotas, fleet-wide across every gateway
// instance that shares one Redis. It never imports Caddy.
package limits
