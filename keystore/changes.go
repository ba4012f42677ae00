package keystore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Every change a gateway may have cached is announced twice: on the
// invalidation channel (InvalidationChannel), which every instance
// subscribes to, and in the changes stream, a capped Redis stream holding
// the same messages in the order they were published. An instance whose
// subscription was lost replays from the stream what it missed
// (ReplayChanges) and flushes its whole cache only when the stream cannot
// tell: the gap is older than the stream, or the stream lost history.

// Invalidation messages published on InvalidationChannel.
const (
	invalidateAll       = "all"
	invalidateKeyPrefix = "key:"
	invalidateOwnerPfx  = "owner:"
)

// changeField is the field of a changes stream entry that holds its
// invalidation message.
const changeField = "m"

// InvalidationTarget decodes an invalidation message: all, or the access
// ID or owner ID whose cached authentications must go.
func InvalidationTarget(msg string) (all bool, accessID, ownerID string) {
	if msg == invalidateAll {
		return true, "", ""
	}
	if id, ok := strings.CutPrefix(msg, invalidateKeyPrefix); ok && id != "" {
		return false, id, ""
	}
	if id, ok := strings.CutPrefix(msg, invalidateOwnerPfx); ok && id != "" {
		return false, "", id
	}
	return true, "", "" // unknown message: be safe
}

// OwnerTag is the cache tag of every cached authentication of ownerID's
// keys. A cache of authentications tags each entry with its access ID and
// this tag, so that either target of an invalidation message (see
// InvalidationTarget) drops its entries with one call; the prefix keeps
// it apart from access IDs, which hold no colon.
func OwnerTag(ownerID string) string { return invalidateOwnerPfx + ownerID }

// announce queues in p, the MULTI block of a change, the invalidation
// message msg that announces it, so that the change is stored only with
// its announcement: if Redis refuses the PUBLISH, EXEC stores nothing and
// the caller gets the error. Every change a gateway may have cached is
// made this way; none is announced after it is stored, where a refused
// message would leave it stored but unannounced, honoured by every
// instance for up to its cache TTL.
//
// The message goes to the changes stream too. On one Redis server (or a
// Sentinel-watched master) the XADD is queued in the same MULTI, so that
// the stream's order is the order of publication and an entry exists
// exactly when its change does. In a Redis Cluster the stream lives in
// another slot than the change, so the XADD runs at once, before the
// change's EXEC: the entry may precede its change by the time the
// transaction takes, or stand for a change that then failed (a harmless
// extra invalidation on replay). Either way an XADD that fails aborts the
// change: announce returns the error, which the caller returns from its
// pipeline function so that nothing is executed.
//
// PUBLISH names no key, so in a Redis Cluster it runs on the node of the
// transaction's keys, and the Cluster passes the message on to
// subscribers on every node.
func (s *Store) announce(ctx context.Context, p redis.Pipeliner, msg string) error {
	add := &redis.XAddArgs{Stream: s.changesKey(), MaxLen: s.changesN, Approx: true, Values: []string{changeField, msg}}
	if s.cluster() {
		if err := s.rdb.XAdd(ctx, add).Err(); err != nil {
			return fmt.Errorf("announcing %s in the changes stream: %w", msg, err)
		}
	} else {
		p.XAdd(ctx, add)
	}
	p.Publish(ctx, s.InvalidationChannel(), msg)
	return nil
}

// cluster reports whether the store talks to a Redis Cluster.
func (s *Store) cluster() bool {
	_, ok := s.rdb.(*redis.ClusterClient)
	return ok
}

// ChangeID is the ID of a changes stream entry: the milliseconds of the
// Redis clock when it was added, and a sequence number within that
// millisecond. The zero ChangeID precedes every entry.
type ChangeID struct {
	MS, Seq uint64
}

// ParseChangeID parses a stream entry ID, "ms-seq".
func ParseChangeID(s string) (ChangeID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return ChangeID{}, fmt.Errorf("stream entry ID %q: no '-'", s)
	}
	var id ChangeID
	var err1, err2 error
	id.MS, err1 = strconv.ParseUint(ms, 10, 64)
	id.Seq, err2 = strconv.ParseUint(seq, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ChangeID{}, fmt.Errorf("stream entry ID %q: %w", s, err)
	}
	return id, nil
}

// String returns the ID as Redis writes it.
func (id ChangeID) String() string {
	return strconv.FormatUint(id.MS, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Compare returns -1, 0 or +1 as id is before, equal to or after o.
func (id ChangeID) Compare(o ChangeID) int {
	return cmp.Or(cmp.Compare(id.MS, o.MS), cmp.Compare(id.Seq, o.Seq))
}

// IsZero reports whether id is the zero ID.
func (id ChangeID) IsZero() bool { return id == ChangeID{} }

// before returns the first ID of the millisecond d before id's (the zero
// ID if there is none).
func (id ChangeID) before(d time.Duration) ChangeID {
	ms := uint64(d.Milliseconds())
	if id.MS <= ms {
		return ChangeID{}
	}
	return ChangeID{MS: id.MS - ms}
}

// ChangePosition is a point in the history of the changes stream: the ID
// of an entry, how many entries the stream had ever received then, and
// the time (by the clock of the stream's Redis server, in Unix
// milliseconds) when the position was read. An instance holds the
// position up to which it received every announcement; the zero position
// means none is known.
type ChangePosition struct {
	ID    ChangeID
	Added int64
	Read  uint64
}

// Known reports whether p is a position in the stream. A stream holds at
// least one entry; the zero position, and the positions of a Redis older
// than 7.0 (which does not count the entries added), are not known.
func (p ChangePosition) Known() bool { return p.Added > 0 }

// ChangesInfo is the state of the changes stream, as XINFO STREAM gives
// it.
type ChangesInfo struct {
	// Exists is false when the stream is not there: no change was ever
	// made, or Redis lost it.
	Exists bool
	// Last is the ID of the newest entry ever added.
	Last ChangeID
	// Added counts every entry ever added, trimmed ones included; 0 on a
	// Redis older than 7.0.
	Added int64
	// Length is the number of entries in the stream.
	Length int64
	// First is the ID of the oldest entry kept; zero if there is none.
	First ChangeID
	// MaxDeleted is the greatest ID deleted by XDEL; zero if none.
	MaxDeleted ChangeID
	// Read is when the state was read, by the clock of the stream's
	// server, in Unix milliseconds.
	Read uint64
}

// Position returns the position of the newest entry.
func (i ChangesInfo) Position() ChangePosition {
	if !i.Exists {
		return ChangePosition{}
	}
	return ChangePosition{ID: i.Last, Added: i.Added, Read: i.Read}
}

// ChangesInfo reads the state of the changes stream, with the time of its
// server.
func (s *Store) ChangesInfo(ctx context.Context) (ChangesInfo, error) {
	node := redis.Cmdable(s.rdb)
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		c, err := cc.MasterForKey(ctx, s.changesKey())
		if err != nil {
			return ChangesInfo{}, err
		}
		node = c
	}
	// XINFO STREAM fails on a missing key, which would count as a Redis
	// error: ask first whether the stream exists.
	var exists *redis.IntCmd
	var now *redis.TimeCmd
	if _, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		now = p.Time(ctx)
		exists = p.Exists(ctx, s.changesKey())
		return nil
	}); err != nil {
		return ChangesInfo{}, err
	}
	read := uint64(now.Val().UnixMilli())
	if exists.Val() == 0 {
		return ChangesInfo{Read: read}, nil
	}
	x, err := node.XInfoStream(ctx, s.changesKey()).Result()
	if err != nil {
		return ChangesInfo{}, err
	}
	info := ChangesInfo{Exists: true, Added: x.EntriesAdded, Length: x.Length, Read: read}
	ids := []struct {
		dst *ChangeID
		src string
	}{{&info.Last, x.LastGeneratedID}, {&info.First, x.FirstEntry.ID}, {&info.MaxDeleted, x.MaxDeletedEntryID}}
	for _, id := range ids {
		if id.src == "" {
			continue
		}
		if *id.dst, err = ParseChangeID(id.src); err != nil {
			return ChangesInfo{}, err
		}
	}
	return info, nil
}

// Bounds of a replay.
const (
	// MaxReplay is the largest number of missed changes replayed; an
	// instance that missed more flushes its cache instead.
	MaxReplay = 100000
	// replayPage is how many entries one XRANGE of a replay reads.
	replayPage = 1000
	// clusterReplayMargin is how much of the stream before its position
	// an instance on a Redis Cluster replays too: the entries added in
	// the margin before the position was read. There the entry of a
	// change is added before the change's transaction runs (the stream
	// is in another slot), and the message is published on the node of
	// the change and passed to the subscriber's node over the cluster
	// bus, later. So when an instance takes its position (the stream's
	// newest entry at a moment when everything published on its node
	// before has reached it), the messages of the entries added just
	// before may still be pending: their transaction not yet executed,
	// or the message still on the bus. Both delays last milliseconds, at
	// worst the time out of a Redis command (seconds); 30 s covers them
	// with room, and costs at most the replay of 30 s of changes. The
	// margin is measured by the clock of the stream's server, which
	// stamps the entries.
	clusterReplayMargin = 30 * time.Second
)

// ErrChangesGap says that the changes stream cannot tell every change
// made after a position: the stream lost history, trimmed the entries
// needed, or holds more of them than are replayed.
var ErrChangesGap = errors.New("missed changes unknown")

func gapError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrChangesGap}, args...)...)
}

// ReplayChanges calls apply with the message of every change made after
// pos, oldest first, and returns the stream's newest position, up to
// which every change was then applied, and how many messages it applied.
// An error wrapping ErrChangesGap says that the changes after pos cannot
// all be known; the caller must then treat every change as possible (flush
// its caches). The position returned is valid, or the zero position, also
// with an error: it is read before anything else, so a caller that
// flushes its caches after the error holds nothing older than it.
//
// Messages may come more than once, and in a Redis Cluster a few from
// before pos (see clusterReplayMargin); both only drop more.
func (s *Store) ReplayChanges(ctx context.Context, pos ChangePosition, apply func(msg string)) (ChangePosition, int, error) {
	info, err := s.ChangesInfo(ctx)
	if err != nil {
		return ChangePosition{}, 0, err
	}
	next := info.Position()
	margin := time.Duration(0)
	if s.cluster() {
		margin = clusterReplayMargin
	}
	from, err := planReplay(pos, info, margin, MaxReplay)
	if err != nil {
		return next, 0, err
	}
	if from == "" {
		return next, 0, nil
	}
	n, after := 0, int64(0)
	end := info.Last.String()
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.changesKey(), from, end, replayPage).Result()
		if err != nil {
			return next, n, err
		}
		for _, m := range msgs {
			id, err := ParseChangeID(m.ID)
			if err != nil {
				return next, n, err
			}
			if id.Compare(pos.ID) > 0 {
				after++
			}
			// A message that is not a string decodes as "all".
			msg, _ := m.Values[changeField].(string)
			apply(msg)
			n++
		}
		if n > MaxReplay {
			return next, n, gapError("more than %d changes to replay", MaxReplay)
		}
		if len(msgs) < replayPage {
			break
		}
		from = "(" + msgs[len(msgs)-1].ID
	}
	if missed := info.Added - pos.Added; after != missed {
		return next, n, gapError("%d of the %d changes missed are in the stream", after, missed)
	}
	return next, n, nil
}

// planReplay decides whether the changes made after pos can be read from
// a stream in the state info, at most limit of them, with the entries
// added within margin before pos was read (see clusterReplayMargin). It returns the start
// argument of the XRANGE that reads them ("" when there is nothing to
// read), or an error wrapping ErrChangesGap saying why they cannot be.
//
// The count of entries ever added, with the newest ID, is what proves
// that no history was lost: a stream that Redis lost and started anew,
// or a failover to a replica that missed entries, shows fewer entries
// added than pos; or, if as many changes followed as were lost, the same
// count with another newest ID; or, if more followed, a different number
// of entries after pos than the difference (which ReplayChanges checks
// once it has read them).
func planReplay(pos ChangePosition, info ChangesInfo, margin time.Duration, limit int64) (string, error) {
	switch {
	case !pos.Known():
		return "", gapError("no position in the changes stream yet")
	case !info.Exists:
		return "", gapError("the changes stream is gone (Redis lost its data)")
	case info.Added < pos.Added || info.Last.Compare(pos.ID) < 0:
		return "", gapError("the changes stream has lost history (Redis restarted or failed over without it)")
	}
	missed := info.Added - pos.Added
	if missed > limit {
		return "", gapError("%d changes missed, more than the %d replayed", missed, limit)
	}
	if info.Length < missed {
		return "", gapError("%d changes missed, of which the stream trimmed some (it holds %d)", missed, info.Length)
	}
	if !info.MaxDeleted.IsZero() && info.MaxDeleted.Compare(pos.ID) > 0 {
		return "", gapError("changes missed were deleted from the stream")
	}
	if start := (ChangeID{MS: pos.Read}).before(margin); margin > 0 && start.Compare(pos.ID) <= 0 {
		trimmed := info.Added > info.Length
		if !info.MaxDeleted.IsZero() && info.MaxDeleted.Compare(start) >= 0 || trimmed && info.First.Compare(start) > 0 {
			return "", gapError("changes of the %v before the position may have been trimmed from the stream", margin)
		}
		return start.String(), nil
	}
	if missed == 0 {
		if info.Last != pos.ID {
			// As many entries were added as were lost: the count alone
			// cannot tell, the newest ID can.
			return "", gapError("the changes stream has lost history (its newest entry is not the position's, with as many entries added)")
		}
		return "", nil
	}
	return "(" + pos.ID.String(), nil
}
