// Package keystore holds the access-key domain and its Redis persistence:
// key records, owners (users and service accounts), roles, policies, the
// audit stream and the invalidation channel.
//
// Redis is the only source of truth. Every Redis key starts with the
// configured prefix, and per-record data sits under a hash tag ({id}) so
// that a Redis Cluster can hold it and every atomic change stays in one
// slot. The package never imports Caddy.
package keystore
