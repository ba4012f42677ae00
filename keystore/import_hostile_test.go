package keystore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/internal/redistest"
)

// halfWriteHook lets the first pipeline that writes key records run only
// its first half and then fail, as a connection lost in the middle of it.
type halfWriteHook struct {
	prefix string
	done   atomic.Bool
}

var errHalfWrite = errors.New("connection lost in the middle of the pipeline")

func (h *halfWriteHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *halfWriteHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *halfWriteHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		writesKeys := false
		for _, c := range cmds {
			if args := c.Args(); c.Name() == "set" && len(args) > 1 && strings.HasPrefix(args[1].(string), h.prefix+":key:") {
				writesKeys = true
			}
		}
		if !writesKeys || len(cmds) < 2 || !h.done.CompareAndSwap(false, true) {
			return next(ctx, cmds)
		}
		if err := next(ctx, cmds[:len(cmds)/2]); err != nil {
			return err
		}
		return errHalfWrite
	}
}

var _ redis.Hook = (*halfWriteHook)(nil)

// TestImportAnnouncesAPartialWrite: an import whose write of a batch fails
// midway, with part of it applied, still asks every gateway to drop its
// cache, as an import that wrote anything does.
func TestImportAnnouncesAPartialWrite(t *testing.T) {
	src := New(redistest.Start(t).Client(t), Options{Prefix: "ag"})
	seedStore(t, src, 20)
	file, _ := exportOf(t, src)

	rdb := redistest.Start(t).Client(t)
	hook := &halfWriteHook{prefix: "ag"}
	rdb.AddHook(hook)
	dst := New(rdb, Options{Prefix: "ag"})
	ctx := context.Background()
	sum, err := dst.Import(ctx, bytes.NewReader(file), ImportOptions{})
	if !errors.Is(err, errHalfWrite) {
		t.Fatalf("import: %+v, %v; want the write to fail midway", sum, err)
	}
	if keys := rdb.Keys(ctx, "ag:key:{*}").Val(); len(keys) == 0 || !hook.done.Load() {
		t.Fatal("no key record of the batch was written")
	}
	msgs, err := rdb.XRange(ctx, dst.changesKey(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Values[changeField] == invalidateAll {
			return
		}
	}
	t.Errorf("changes stream %v after an import that wrote part of a batch, want the invalidation of all", msgs)
}

// TestExportRotatedOutWithoutTTL: a key rotated out whose record lost its
// TTL is exported with its graceUntil as the time its record expires, so
// that the import of the export takes it, with the rest of its grace.
func TestExportRotatedOutWithoutTTL(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	src := New(rdb, Options{Prefix: "ag", RotationGrace: 10 * time.Minute})
	sd := seedStore(t, src, 5)
	ctx := context.Background()
	if err := rdb.Persist(ctx, src.keyKey(sd.rotatedOut)).Err(); err != nil {
		t.Fatal(err)
	}
	file, esum := exportOf(t, src)
	if esum.RotatedKeys != 1 {
		t.Fatalf("export %+v, want the key rotated out", esum)
	}
	dst := New(redistest.Start(t).Client(t), Options{Prefix: "ag"})
	sum, err := dst.Import(ctx, bytes.NewReader(file), ImportOptions{})
	if err != nil || !sum.Complete || sum.Written != esum.Records {
		t.Fatalf("import of the export: %+v, %v", sum, err)
	}
	ttl := dst.Client().PTTL(ctx, dst.keyKey(sd.rotatedOut)).Val()
	if ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Errorf("record of the key rotated out has TTL %v after the import, want the rest of its grace", ttl)
	}
}
