package loadgen

import (
	"context"
	"testing"

	"github.com/accessgate/accessgate/internal/redistest"
)

// TestCheckSeedLayout shows that SeedKeys writes the Redis keys
// keystore.Store.CreateKey writes, so that the scale measurements seed
// what the gateway would hold.
func TestCheckSeedLayout(t *testing.T) {
	rs := redistest.Start(t)
	d, err := CheckSeedLayout(context.Background(), rs.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.StoreOnly)+len(d.SeedOnly) > 0 {
		t.Errorf("the store and SeedKeys write different Redis keys: store only %q, seeding only %q", d.StoreOnly, d.SeedOnly)
	}
	if d.StoreBytes == 0 || d.SeedBytes == 0 {
		t.Errorf("MEMORY USAGE: store %d B, seeding %d B; want both counted", d.StoreBytes, d.SeedBytes)
	}
}
