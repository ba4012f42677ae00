// Package loadgen supports accessgate's benchmarks: it fills Redis with
// realistic access keys quickly and drives HTTP/1.1 load at a gateway
// with a lean keep-alive client, recording latencies.
package loadgen

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/keystore"
)

// Cred is a seeded credential.
type Cred struct {
	ID     string
	Secret string
}

// Authorization returns the value of the Basic Authorization header that
// presents c.
func (c Cred) Authorization() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID+":"+c.Secret))
}

// Capabilities are the capabilities of the role that SeedOwners gives
// every owner.
var Capabilities = []string{"createAccessKeys", "runLogSearch", "viewCollectors"}

// SeedOwners creates a role holding Capabilities and n active users with
// that role through the store, and returns the users' IDs.
func SeedOwners(ctx context.Context, store *keystore.Store, n int) ([]string, error) {
	if _, err := store.PutRole(ctx, keystore.Role{ID: "bench-role", Name: "Benchmark role", Capabilities: Capabilities}, "bench"); err != nil {
		return nil, err
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-user-%04d", i)
		o := keystore.Owner{ID: ids[i], Kind: keystore.OwnerUser, Email: ids[i] + "@example.com", FirstName: "Bench", LastName: fmt.Sprint("User ", i), RoleIDs: []string{"bench-role"}, IsActive: true}
		if _, err := store.PutOwner(ctx, o, "bench"); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// SeedOptions configure SeedKeys.
type SeedOptions struct {
	// Prefix is the store's key prefix.
	Prefix string
	// Owners own the keys, in turn.
	Owners []string
	// N is the number of keys to create.
	N int
	// Batch is the number of keys written per pipeline; 1000 when zero.
	Batch int
	// Keep returns the credentials; leave it unset for large memory
	// measurements that only need the keys to exist.
	Keep bool
	// Sample, when positive, returns every Sample-th credential even
	// without Keep.
	Sample int
	// LastUsed also records a last use of every key, as the gateway does
	// for each key it lets through.
	LastUsed bool
}

// SeedKeys writes active keys as keystore.Store.CreateKey does (record,
// indexes, due-index entries, through keystore.Store.QueueSeed), but
// pipelined, so that a million keys take seconds; it marks the store as
// holding the current layout.
// The records are keystore.Key values with a label, two scopes and one
// allowlisted origin, like a typical production key. It returns the kept
// credentials.
func SeedKeys(ctx context.Context, rdb redis.UniversalClient, o SeedOptions) ([]Cred, error) {
	if len(o.Owners) == 0 {
		return nil, fmt.Errorf("loadgen: no owners")
	}
	batch := o.Batch
	if batch <= 0 {
		batch = 1000
	}
	var out []Cred
	if o.Keep {
		out = make([]Cred, 0, o.N)
	}
	store := keystore.New(rdb, keystore.Options{Prefix: o.Prefix})
	if err := store.MarkLayout(ctx); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for start := 0; start < o.N; start += batch {
		pipe := rdb.Pipeline()
		for i := start; i < min(start+batch, o.N); i++ {
			id, secret := keystore.NewAccessID(), keystore.NewAccessKey()
			owner := o.Owners[i%len(o.Owners)]
			k := keystore.Key{
				ID: id, SecretHash: keystore.HashSecret(secret), Label: fmt.Sprintf("ingest pipeline %06d", i),
				OwnerID: owner, OwnerKind: keystore.OwnerUser,
				Scopes:      []string{"runLogSearch", "viewCollectors"},
				CORSHeaders: []string{"https://app.example.com"},
				CreatedAt:   now, CreatedBy: owner, ModifiedAt: now, ModifiedBy: owner,
				IssuedAt: now, ActivatedAt: now, Version: 1, Lineage: id,
			}
			var used time.Time
			if o.LastUsed {
				used = now
			}
			store.QueueSeed(ctx, pipe, &k, used)
			if o.Keep || o.Sample > 0 && i%o.Sample == 0 {
				out = append(out, Cred{ID: id, Secret: secret})
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RecordKey is the Redis key of the record of the access key id, as
// keystore lays it out.
func RecordKey(prefix, id string) string { return prefix + ":key:{" + id + "}" }
