package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/keystore"
)

// ScaleState is what the steps of a scale run share, kept in a JSON file
// between them: the seeded owners, an administrator's credential for the
// management API, the credentials the subscription step caches, and a
// sample of the seeded Access IDs.
type ScaleState struct {
	Owners []string
	Admin  Cred
	Sub    []Cred
	Sample []string
	// Keys is the number of access keys seeded so far.
	Keys int
	// RestartBase is the gateway's metrics before Redis was restarted.
	RestartBase Metrics
}

// LoadScaleState reads the state file at path; a missing file is an
// empty state.
func LoadScaleState(path string) (*ScaleState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &ScaleState{}, nil
	}
	if err != nil {
		return nil, err
	}
	st := &ScaleState{}
	return st, json.Unmarshal(b, st)
}

// Save writes the state file at path.
func (st *ScaleState) Save(path string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// scaleAdminCapability is what the administrator's key needs to list
// every key.
const scaleAdminCapability = "manageAccessKeys"

// SeedStage is the outcome of ScaleSeed.
type SeedStage struct {
	// Added is the number of keys written by this stage.
	Added int
	// Seconds is how long writing them took.
	Seconds float64
	// BytesPerKey is the growth of INFO used_memory per key written.
	BytesPerKey float64
	// UsedMemory is INFO used_memory after the stage.
	UsedMemory int64
}

// ScaleSeed brings the store to total access keys. On the first call it
// creates the owners and the administrator through the store and seeds
// subCreds keys whose credentials it keeps for the subscription step.
// Keys are written by SeedKeys (each with a last use, as keys in service
// have), in parallel pipelines; the growth of used_memory is measured
// over exactly those writes.
func ScaleSeed(ctx context.Context, rdb *redis.Client, prefix string, st *ScaleState, total, subCreds int) (SeedStage, error) {
	store := keystore.New(rdb, keystore.Options{Prefix: prefix})
	if len(st.Owners) == 0 {
		owners, err := SeedOwners(ctx, store, 100)
		if err != nil {
			return SeedStage{}, err
		}
		st.Owners = owners
		if _, err := store.PutRole(ctx, keystore.Role{ID: "scale-admin", Name: "Scale administrator", Capabilities: []string{scaleAdminCapability}}, "scale"); err != nil {
			return SeedStage{}, err
		}
		o := keystore.Owner{ID: "scale-admin", Kind: keystore.OwnerUser, Email: "scale-admin@example.com", FirstName: "Scale", LastName: "Admin", RoleIDs: []string{"scale-admin"}, IsActive: true}
		if _, err := store.PutOwner(ctx, o, "scale"); err != nil {
			return SeedStage{}, err
		}
		k, secret, err := store.CreateKey(ctx, keystore.KeySpec{Label: "scale admin", OwnerID: o.ID}, keystore.Operator{ID: "loadgen"})
		if err != nil {
			return SeedStage{}, err
		}
		st.Admin = Cred{ID: k.ID, Secret: secret}
	}
	n := total - st.Keys
	if n <= 0 {
		return SeedStage{}, nil
	}
	before, err := InfoInt(ctx, rdb, "memory", "used_memory")
	if err != nil {
		return SeedStage{}, err
	}
	start := time.Now()
	if len(st.Sub) == 0 && subCreds > 0 {
		subCreds = min(subCreds, n)
		sub, err := SeedKeys(ctx, rdb, SeedOptions{Prefix: prefix, Owners: st.Owners, N: subCreds, Keep: true, LastUsed: true})
		if err != nil {
			return SeedStage{}, err
		}
		st.Sub = sub
		for _, c := range sub {
			st.Sample = append(st.Sample, c.ID)
		}
		n -= subCreds
	}
	// Two pipelines in parallel keep Redis busy while the other encodes.
	const workers = 2
	sample := max(1, n/1000)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		part := n / workers
		if w == workers-1 {
			part = n - part*(workers-1)
		}
		wg.Go(func() {
			got, err := SeedKeys(ctx, rdb, SeedOptions{Prefix: prefix, Owners: st.Owners, N: part, Sample: sample, LastUsed: true})
			errs[w] = err
			mu.Lock()
			defer mu.Unlock()
			for _, c := range got {
				st.Sample = append(st.Sample, c.ID)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return SeedStage{}, err
	}
	added := total - st.Keys
	st.Keys = total
	after, err := InfoInt(ctx, rdb, "memory", "used_memory")
	if err != nil {
		return SeedStage{}, err
	}
	return SeedStage{Added: added, Seconds: time.Since(start).Seconds(), BytesPerKey: float64(after-before) / float64(added), UsedMemory: after}, nil
}

// MemInfo returns MemAvailable and MemTotal from /proc/meminfo, in bytes,
// or zeros where it cannot be read.
func MemInfo() (available, total int64) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	return parseMemInfo(string(b))
}

func parseMemInfo(text string) (available, total int64) {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemAvailable:":
			available = kb << 10
		case "MemTotal:":
			total = kb << 10
		}
	}
	return available, total
}
