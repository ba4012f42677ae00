package keystore

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/accessgate/accessgate/limits"
)

// A key record is stored in Redis as JSON in one of two layouts.
//
// The full layout is the Key struct's own JSON: long field names, RFC 3339
// times, every field present. Records written by earlier versions use it,
// and it is still written for a key the compact layout cannot hold
// exactly (a time not in whole UTC milliseconds, a secret hash that is not
// a hex SHA-256).
//
// The compact layout starts with {"v":2 and uses one- or two-letter
// names, Unix-millisecond times and a base64 secret hash, and leaves out
// what it can derive: empty and false values, the owner kind "user",
// modification and issue times equal to the creation time, a modifier
// equal to the creator, a lineage equal to the Access ID. A typical
// record takes less than half the space of its full layout (245 bytes
// instead of 543).
//
// Both layouts decode into the same Key, through decoders written out by
// hand for the request path (no reflection, one allocation for all the
// strings kept). Anything they do not expect (escapes, non-ASCII text,
// whitespace, nulls, the usage-limit objects, times not in UTC) is decoded
// by encoding/json instead, with the same result.

// compactPrefix starts every record in the compact layout, followed by ,
// or by } (a record of a Key holding nothing but defaults).
const compactPrefix = `{"v":2`

// isCompact reports whether s is a record in the compact layout.
func isCompact[T string | []byte](s T) bool {
	return len(s) > len(compactPrefix) && string(s[:len(compactPrefix)]) == compactPrefix &&
		(s[len(compactPrefix)] == ',' || s[len(compactPrefix)] == '}')
}

// keyRecord is the compact layout. Pointer fields are those whose absence
// means a derived value rather than the zero value.
type keyRecord struct {
	V                int           `json:"v"`
	ID               string        `json:"i,omitempty"`
	Hash             string        `json:"h,omitempty"`
	Label            string        `json:"l,omitempty"`
	OwnerID          string        `json:"o,omitempty"`
	OwnerKind        *string       `json:"k,omitempty"`
	Scopes           []string      `json:"s,omitempty"`
	CORSHeaders      []string      `json:"c,omitempty"`
	Disabled         bool          `json:"d,omitempty"`
	DisabledReason   string        `json:"r,omitempty"`
	CreatedAt        *int64        `json:"t,omitempty"`
	CreatedBy        string        `json:"b,omitempty"`
	ModifiedAt       *int64        `json:"m,omitempty"`
	ModifiedBy       *string       `json:"mb,omitempty"`
	IssuedAt         *int64        `json:"is,omitempty"`
	ActivatedAt      *int64        `json:"a,omitempty"`
	GraceUntil       *int64        `json:"g,omitempty"`
	ReplacedBy       string        `json:"rb,omitempty"`
	RotatedFrom      string        `json:"rf,omitempty"`
	Pending          bool          `json:"p,omitempty"`
	Version          int64         `json:"n,omitempty"`
	Lineage          *string       `json:"ln,omitempty"`
	RateLimit        *limits.Rate  `json:"rateLimit,omitempty"`
	ConcurrencyLimit *int          `json:"concurrencyLimit,omitempty"`
	Quota            *limits.Quota `json:"quota,omitempty"`
}

// EncodeKey returns the stored form of k, as the store writes it.
func EncodeKey(k *Key) []byte { return encodeKey(k) }

// DecodeKey reads a stored key record of either layout into k, which it
// overwrites.
func DecodeKey(raw []byte, k *Key) error { return decodeKey(raw, k) }

// encodeKey returns the stored form of k: the compact layout when it holds
// k exactly, else the full one.
func encodeKey(k *Key) []byte {
	r, ok := compactRecord(k)
	if !ok {
		b, _ := json.Marshal(k)
		return b
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&r); err != nil {
		b, _ := json.Marshal(k)
		return b
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// decodeKey reads a stored key record of either layout into k, which it
// overwrites.
func decodeKey(raw []byte, k *Key) error { return decodeKeyString(string(raw), k) }

// decodeKeyString is decodeKey for a record held in a string, as Redis
// replies come. A record in the full layout decodes as json.Unmarshal into
// a zero Key always decoded it.
func decodeKeyString(s string, k *Key) error {
	var nk Key
	if !isCompact(s) {
		if !scanFull(s, &nk) {
			// Through a Key on the heap, so that nk does not escape on
			// the way of the hand-written decoders.
			hk := new(Key)
			if err := json.Unmarshal([]byte(s), hk); err != nil {
				return err
			}
			nk = *hk
		}
		*k = nk
		return nil
	}
	var d derivable
	if !scanCompact(s, &nk, &d) {
		var r keyRecord
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return err
		}
		nk, d = r.key()
	}
	if err := d.apply(&nk); err != nil {
		return err
	}
	*k = nk
	return nil
}

// compactRecord returns k in the compact layout, or false when that
// layout cannot hold k exactly.
func compactRecord(k *Key) (keyRecord, bool) {
	r := keyRecord{
		V: 2, ID: k.ID, Label: k.Label, OwnerID: k.OwnerID,
		Scopes: k.Scopes, CORSHeaders: k.CORSHeaders,
		Disabled: k.Disabled, DisabledReason: k.DisabledReason,
		CreatedBy: k.CreatedBy, ReplacedBy: k.ReplacedBy, RotatedFrom: k.RotatedFrom,
		Pending: k.Pending, Version: k.Version,
		RateLimit: k.RateLimit, ConcurrencyLimit: k.ConcurrencyLimit, Quota: k.Quota,
	}
	if k.SecretHash != "" {
		sum, ok := hexSHA256(k.SecretHash)
		if !ok {
			return keyRecord{}, false
		}
		r.Hash = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if k.OwnerKind != OwnerUser {
		r.OwnerKind = new(string(k.OwnerKind))
	}
	if k.ModifiedBy != k.CreatedBy {
		r.ModifiedBy = new(k.ModifiedBy)
	}
	if k.Lineage != k.ID {
		r.Lineage = new(k.Lineage)
	}
	for _, t := range []time.Time{k.CreatedAt, k.ModifiedAt, k.IssuedAt, k.ActivatedAt, k.GraceUntil} {
		if !compactTime(t) {
			return keyRecord{}, false
		}
	}
	if !k.CreatedAt.IsZero() {
		r.CreatedAt = new(unixMilli(k.CreatedAt))
	}
	sinceCreated := func(t time.Time) *int64 {
		if t.Equal(k.CreatedAt) {
			return nil
		}
		return new(unixMilli(t))
	}
	r.ModifiedAt = sinceCreated(k.ModifiedAt)
	r.IssuedAt = sinceCreated(k.IssuedAt)
	r.ActivatedAt = sinceCreated(k.ActivatedAt)
	if !k.GraceUntil.IsZero() {
		r.GraceUntil = new(unixMilli(k.GraceUntil))
	}
	return r, true
}

// key returns the record's fields as a Key, with what is left to derive.
func (r *keyRecord) key() (Key, derivable) {
	k := Key{
		ID: r.ID, Label: r.Label, OwnerID: r.OwnerID,
		Scopes: r.Scopes, CORSHeaders: r.CORSHeaders,
		Disabled: r.Disabled, DisabledReason: r.DisabledReason,
		CreatedBy: r.CreatedBy, ReplacedBy: r.ReplacedBy, RotatedFrom: r.RotatedFrom,
		Pending: r.Pending, Version: r.Version,
		RateLimit: r.RateLimit, ConcurrencyLimit: r.ConcurrencyLimit, Quota: r.Quota,
	}
	d := derivable{hash: r.Hash}
	if r.OwnerKind != nil {
		k.OwnerKind, d.has = OwnerKind(*r.OwnerKind), d.has|hasOwnerKind
	}
	if r.ModifiedBy != nil {
		k.ModifiedBy, d.has = *r.ModifiedBy, d.has|hasModifiedBy
	}
	if r.Lineage != nil {
		k.Lineage, d.has = *r.Lineage, d.has|hasLineage
	}
	for _, f := range []struct {
		ms  *int64
		dst *int64
		bit uint16
	}{
		{r.CreatedAt, &d.created, hasCreatedAt},
		{r.ModifiedAt, &d.modified, hasModifiedAt},
		{r.IssuedAt, &d.issued, hasIssuedAt},
		{r.ActivatedAt, &d.activated, hasActivatedAt},
		{r.GraceUntil, &d.grace, hasGraceUntil},
	} {
		if f.ms != nil {
			*f.dst, d.has = *f.ms, d.has|f.bit
		}
	}
	return k, d
}

// Bits of derivable.has: which of the fields that have a derived default
// the record holds.
const (
	hasOwnerKind uint16 = 1 << iota
	hasModifiedBy
	hasLineage
	hasCreatedAt
	hasModifiedAt
	hasIssuedAt
	hasActivatedAt
	hasGraceUntil
)

// derivable is what a compact record holds in another form than the Key
// (times, the hash) or may leave out for a derived value.
type derivable struct {
	has                                         uint16
	hash                                        string
	created, modified, issued, activated, grace int64
}

// errCorruptHash is the error of a compact record whose secret hash is
// not a base64 SHA-256.
var errCorruptHash = errors.New("keystore: corrupt secret hash in key record")

// apply completes k from d.
func (d *derivable) apply(k *Key) error {
	if d.hash != "" {
		var sum [32]byte
		var enc [43]byte // base64.RawURLEncoding.EncodedLen(len(sum))
		if len(d.hash) != len(enc) {
			return errCorruptHash
		}
		if n, err := base64.RawURLEncoding.Decode(sum[:], enc[:copy(enc[:], d.hash)]); err != nil || n != len(sum) {
			return errCorruptHash
		}
		k.SecretHash = hex.EncodeToString(sum[:])
	}
	if d.has&hasOwnerKind == 0 {
		k.OwnerKind = OwnerUser
	}
	if d.has&hasModifiedBy == 0 {
		k.ModifiedBy = k.CreatedBy
	}
	if d.has&hasLineage == 0 {
		k.Lineage = k.ID
	}
	if d.has&hasCreatedAt != 0 {
		k.CreatedAt = fromMilli(d.created)
	}
	orCreated := func(bit uint16, ms int64) time.Time {
		if d.has&bit == 0 {
			return k.CreatedAt
		}
		return fromMilli(ms)
	}
	k.ModifiedAt = orCreated(hasModifiedAt, d.modified)
	k.IssuedAt = orCreated(hasIssuedAt, d.issued)
	k.ActivatedAt = orCreated(hasActivatedAt, d.activated)
	if d.has&hasGraceUntil != 0 {
		k.GraceUntil = fromMilli(d.grace)
	}
	return nil
}

// zeroMilli is the zero time.Time in Unix milliseconds.
const zeroMilli = -62135596800000

// compactTime reports whether t survives the compact layout unchanged:
// zero, or UTC in whole milliseconds within the years JSON can write.
func compactTime(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	return t.Location() == time.UTC && t.Nanosecond()%int(time.Millisecond) == 0 && t.Year() >= 1 && t.Year() <= 9999
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return zeroMilli
	}
	return t.UnixMilli()
}

func fromMilli(ms int64) time.Time {
	if ms == zeroMilli {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// hexSHA256 reads a SHA-256 in lower-case hex, the only spelling
// HashSecret writes.
func hexSHA256(s string) (sum [32]byte, ok bool) {
	if len(s) != hex.EncodedLen(len(sum)) {
		return sum, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return sum, false
		}
	}
	_, err := hex.Decode(sum[:], []byte(s))
	return sum, err == nil
}

// scanCompact decodes a compact record as encodeKey writes it, filling k
// and d, without reflection. It returns false, leaving the record to
// encoding/json, on anything else: escapes or bytes outside printable
// ASCII in a string, whitespace, null, numbers that are not plain
// integers, the usage-limit objects, unknown or repeated names, text after
// the object. What it accepts it decodes exactly as json.Unmarshal into
// keyRecord does.
func scanCompact(s string, k *Key, d *derivable) bool {
	sc := recScanner{s: s, i: len(compactPrefix), names: compactNames[:]}
	ok := sc.object(true, func(name string) (ok bool) {
		switch name {
		case "i":
			k.ID, ok = sc.rawStr()
		case "h":
			d.hash, ok = sc.rawStr()
		case "l":
			k.Label, ok = sc.rawStr()
		case "o":
			k.OwnerID, ok = sc.rawStr()
		case "k":
			var v string
			v, ok = sc.rawStr()
			k.OwnerKind, d.has = OwnerKind(internKind(v)), d.has|hasOwnerKind
		case "s":
			k.Scopes, ok = sc.strs()
		case "c":
			k.CORSHeaders, ok = sc.strs()
		case "d":
			k.Disabled, ok = sc.boolean()
		case "r":
			var v string
			v, ok = sc.rawStr()
			k.DisabledReason = internReason(v)
		case "t":
			d.created, ok = sc.integer()
			d.has |= hasCreatedAt
		case "b":
			k.CreatedBy, ok = sc.rawStr()
		case "m":
			d.modified, ok = sc.integer()
			d.has |= hasModifiedAt
		case "mb":
			k.ModifiedBy, ok = sc.rawStr()
			d.has |= hasModifiedBy
		case "is":
			d.issued, ok = sc.integer()
			d.has |= hasIssuedAt
		case "a":
			d.activated, ok = sc.integer()
			d.has |= hasActivatedAt
		case "g":
			d.grace, ok = sc.integer()
			d.has |= hasGraceUntil
		case "rb":
			k.ReplacedBy, ok = sc.rawStr()
		case "rf":
			k.RotatedFrom, ok = sc.rawStr()
		case "p":
			k.Pending, ok = sc.boolean()
		case "n":
			k.Version, ok = sc.integer()
		case "ln":
			k.Lineage, ok = sc.rawStr()
			d.has |= hasLineage
		}
		return ok
	})
	if !ok {
		return false
	}
	detach(k)
	return true
}

// scanFull decodes a record in the full layout as earlier versions wrote
// it, with the limits of scanCompact; times must be RFC 3339 in UTC
// ("Z"). What it accepts it decodes exactly as json.Unmarshal into a zero
// Key does.
func scanFull(s string, k *Key) bool {
	if len(s) < 2 || s[0] != '{' {
		return false
	}
	sc := recScanner{s: s, i: 1, names: fullNames[:]}
	var hash string
	ok := sc.object(false, func(name string) (ok bool) {
		switch name {
		case "id":
			k.ID, ok = sc.rawStr()
		case "secretHash":
			hash, ok = sc.rawStr()
		case "label":
			k.Label, ok = sc.rawStr()
		case "ownerId":
			k.OwnerID, ok = sc.rawStr()
		case "ownerKind":
			var v string
			v, ok = sc.rawStr()
			k.OwnerKind = OwnerKind(internKind(v))
		case "scopes":
			k.Scopes, ok = sc.strs()
		case "corsHeaders":
			k.CORSHeaders, ok = sc.strs()
		case "disabled":
			k.Disabled, ok = sc.boolean()
		case "disabledReason":
			var v string
			v, ok = sc.rawStr()
			k.DisabledReason = internReason(v)
		case "createdAt":
			k.CreatedAt, ok = sc.timestamp()
		case "createdBy":
			k.CreatedBy, ok = sc.rawStr()
		case "modifiedAt":
			k.ModifiedAt, ok = sc.timestamp()
		case "modifiedBy":
			k.ModifiedBy, ok = sc.rawStr()
		case "issuedAt":
			k.IssuedAt, ok = sc.timestamp()
		case "activatedAt":
			k.ActivatedAt, ok = sc.timestamp()
		case "graceUntil":
			k.GraceUntil, ok = sc.timestamp()
		case "replacedBy":
			k.ReplacedBy, ok = sc.rawStr()
		case "rotatedFrom":
			k.RotatedFrom, ok = sc.rawStr()
		case "pending":
			k.Pending, ok = sc.boolean()
		case "version":
			k.Version, ok = sc.integer()
		case "lineage":
			k.Lineage, ok = sc.rawStr()
		}
		return ok
	})
	if !ok {
		return false
	}
	detach(k)
	// Apart from the strings kept with the Key's others.
	k.SecretHash = strings.Clone(hash)
	return true
}

// recScanner reads a record from s, at i.
type recScanner struct {
	s string
	i int
	// names are the names of the layout; seen has the bits of those read.
	names []string
	seen  uint32
}

// compactNames and fullNames are the names scanCompact and scanFull know.
var (
	compactNames = [...]string{"i", "h", "l", "o", "k", "s", "c", "d", "r", "t", "b", "m", "mb", "is", "a", "g", "rb", "rf", "p", "n", "ln"}
	fullNames    = [...]string{"id", "secretHash", "label", "ownerId", "ownerKind", "scopes", "corsHeaders", "disabled", "disabledReason",
		"createdAt", "createdBy", "modifiedAt", "modifiedBy", "issuedAt", "activatedAt", "graceUntil", "replacedBy", "rotatedFrom",
		"pending", "version", "lineage"}
)

// object reads the members of an object up to its closing brace, which
// must end s, calling member after each name to read the value. comma
// says whether a comma comes before the first member (the part already
// read held one).
func (sc *recScanner) object(comma bool, member func(name string) bool) bool {
	for {
		if sc.i >= len(sc.s) {
			return false
		}
		switch c := sc.s[sc.i]; {
		case c == '}':
			return sc.i == len(sc.s)-1
		case comma && c == ',':
			sc.i++
		case comma:
			return false
		}
		comma = true
		name, ok := sc.name()
		if !ok || !member(name) {
			return false
		}
	}
}

// name reads `"name":` and returns the name, refusing one not in
// sc.names or already read (json.Unmarshal merges repeated names in ways
// not worth copying).
func (sc *recScanner) name() (string, bool) {
	n, ok := sc.rawStr()
	if !ok || sc.i >= len(sc.s) || sc.s[sc.i] != ':' {
		return "", false
	}
	sc.i++
	for b, x := range sc.names {
		if x == n {
			if sc.seen&(1<<b) != 0 {
				return "", false
			}
			sc.seen |= 1 << b
			return n, true
		}
	}
	return "", false
}

// rawStr reads a string of printable ASCII without escapes and returns it
// as a part of s.
func (sc *recScanner) rawStr() (string, bool) {
	s, i := sc.s, sc.i
	if i >= len(s) || s[i] != '"' {
		return "", false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			sc.i = j + 1
			return s[i+1 : j], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", false
		}
	}
	return "", false
}

// detach copies the strings of k, parts of the record, into one new
// allocation, so that k holds neither the record (with the secret hash in
// it) nor an allocation per string.
func detach(k *Key) {
	each := func(f func(p *string)) {
		for _, p := range [...]*string{&k.ID, &k.Label, &k.OwnerID, &k.CreatedBy, &k.ModifiedBy, &k.ReplacedBy, &k.RotatedFrom, &k.Lineage} {
			f(p)
		}
		for i := range k.Scopes {
			f(&k.Scopes[i])
		}
		for i := range k.CORSHeaders {
			f(&k.CORSHeaders[i])
		}
	}
	n := 0
	each(func(p *string) { n += len(*p) })
	var b strings.Builder
	b.Grow(n)
	each(func(p *string) { b.WriteString(*p) })
	all, off := b.String(), 0
	each(func(p *string) {
		*p, off = all[off:off+len(*p)], off+len(*p)
	})
}

// strs reads an array of strings.
func (sc *recScanner) strs() ([]string, bool) {
	if sc.i >= len(sc.s) || sc.s[sc.i] != '[' {
		return nil, false
	}
	start := *sc
	n := 0
	for sc.i++; ; n++ {
		if n == 0 && sc.i < len(sc.s) && sc.s[sc.i] == ']' {
			break
		}
		if _, ok := sc.rawStr(); !ok || sc.i >= len(sc.s) {
			return nil, false
		}
		if sc.s[sc.i] == ']' {
			n++
			break
		}
		if sc.s[sc.i] != ',' {
			return nil, false
		}
		sc.i++
	}
	out := make([]string, n)
	*sc = start
	sc.i++
	for j := range out {
		out[j], _ = sc.rawStr()
		sc.i++ // ',' or ']'
	}
	if n == 0 {
		sc.i++
	}
	return out, true
}

// integer reads a plain decimal integer of at most 18 digits.
func (sc *recScanner) integer() (int64, bool) {
	s, i := sc.s, sc.i
	neg := i < len(s) && s[i] == '-'
	if neg {
		i++
	}
	start := i
	var v int64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		v = v*10 + int64(s[i]-'0')
		i++
	}
	n := i - start
	if n == 0 || n > 18 || s[start] == '0' && (n > 1 || neg) {
		return 0, false
	}
	sc.i = i
	if neg {
		v = -v
	}
	return v, true
}

// timestamp reads a time as Time.MarshalJSON writes one in UTC:
// 2006-01-02T15:04:05Z with up to 9 digits of fraction before the Z.
func (sc *recScanner) timestamp() (time.Time, bool) {
	v, ok := sc.rawStr()
	if !ok || len(v) < 20 || len(v) == 21 || len(v) > 30 || v[len(v)-1] != 'Z' ||
		v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' || len(v) > 20 && v[19] != '.' {
		return time.Time{}, false
	}
	digits := func(a, b int) int {
		n := 0
		for i := a; i < b; i++ {
			if v[i] < '0' || v[i] > '9' {
				return -1
			}
			n = n*10 + int(v[i]-'0')
		}
		return n
	}
	y, mo, d, h, mi, sec := digits(0, 4), digits(5, 7), digits(8, 10), digits(11, 13), digits(14, 16), digits(17, 19)
	if y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysIn(time.Month(mo), y) || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	ns := 0
	if len(v) > 20 {
		if ns = digits(20, len(v)-1); ns < 0 {
			return time.Time{}, false
		}
		for range 30 - len(v) {
			ns *= 10
		}
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC), true
}

// daysIn returns the number of days of month m of year y.
func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// boolean reads true or false.
func (sc *recScanner) boolean() (bool, bool) {
	switch {
	case strings.HasPrefix(sc.s[sc.i:], "true"):
		sc.i += 4
		return true, true
	case strings.HasPrefix(sc.s[sc.i:], "false"):
		sc.i += 5
		return false, true
	}
	return false, false
}

// internKind returns the constant spelling of a known owner kind, so that
// decoding one allocates nothing.
func internKind(v string) string {
	switch v {
	case string(OwnerUser):
		return string(OwnerUser)
	case string(OwnerServiceAccount):
		return string(OwnerServiceAccount)
	}
	return strings.Clone(v)
}

// internReason is internKind for disabled reasons.
func internReason(v string) string {
	switch v {
	case DisabledManual:
		return DisabledManual
	case DisabledExpired:
		return DisabledExpired
	case DisabledUnused:
		return DisabledUnused
	}
	return strings.Clone(v)
}
