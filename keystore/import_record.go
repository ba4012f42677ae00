package keystore

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/accessgate/accessgate/limits"
)

// maxImportSkew is how far past now a time of an imported record may be:
// the clocks of the exporting and importing instances may differ.
const maxImportSkew = 5 * time.Minute

// maxImportVersion bounds the version of an imported key record, far
// beyond what its writes reach, so that the store's Version++ on it
// cannot overflow.
const maxImportVersion = 1 << 40

// parseRecord decodes and checks one record line of an export, read at
// now. An import file is outside input: a record that the store could
// not have written itself is refused, so that nothing an import writes
// can break a reader.
func parseRecord(b []byte, now time.Time) (exportRecord, error) {
	var rec exportRecord
	if err := strictDecode(b, &rec); err != nil {
		return rec, fmt.Errorf("invalid JSON: %w", err)
	}
	present := 0
	for _, set := range []bool{rec.Policies != nil, rec.Role != nil, rec.Owner != nil, rec.Key != nil, rec.Records != nil} {
		if set {
			present++
		}
	}
	var body bool
	switch rec.Kind {
	case recordPolicies:
		body = rec.Policies != nil
	case recordRole:
		body = rec.Role != nil
	case recordOwner:
		body = rec.Owner != nil
	case recordKey:
		body = rec.Key != nil
	case recordEnd:
		body = rec.Records != nil
	case "":
		return rec, errors.New("record without a kind")
	default:
		return rec, fmt.Errorf("unknown record kind %s", strconvQuote(truncateText(rec.Kind, 64)))
	}
	if !body || present != 1 {
		return rec, fmt.Errorf("a %s record must carry its %s object and nothing else", rec.Kind, rec.Kind)
	}
	if rec.Kind != recordKey && (rec.LastUsed != nil || rec.RecordExpiresAt != nil) {
		return rec, fmt.Errorf("lastUsed and recordExpiresAt belong to key records only")
	}
	limit := now.Add(maxImportSkew)
	switch rec.Kind {
	case recordPolicies:
		return rec, errors.Join(checkPolicies(rec.Policies),
			checkTimes(limit, "lifetimeSetAt", rec.Policies.LifetimeSetAt, "unusedSetAt", rec.Policies.UnusedSetAt))
	case recordRole:
		if err := checkRole(rec.Role); err != nil {
			return rec, err
		}
		return rec, about("role", rec.Role.ID, checkTimes(limit, "createdAt", &rec.Role.CreatedAt, "modifiedAt", &rec.Role.ModifiedAt))
	case recordOwner:
		if err := checkOwner(rec.Owner); err != nil {
			return rec, err
		}
		return rec, about("owner", rec.Owner.ID, checkTimes(limit, "createdAt", &rec.Owner.CreatedAt, "modifiedAt", &rec.Owner.ModifiedAt))
	case recordKey:
		if err := checkKey(&rec); err != nil {
			return rec, err
		}
		k := rec.Key
		return rec, about("key", k.ID, checkTimes(limit, "issuedAt", &k.IssuedAt, "activatedAt", &k.ActivatedAt,
			"createdAt", &k.CreatedAt, "modifiedAt", &k.ModifiedAt, "lastUsed", rec.LastUsed))
	}
	if *rec.Records < 0 {
		return rec, errors.New("negative record count")
	}
	return rec, nil
}

func checkPolicies(p *policyRecord) error {
	for _, d := range []*int{p.LifetimeDays, p.UnusedDays} {
		if d != nil && (*d < 0 || *d > MaxPolicyDays) {
			return fmt.Errorf("policy days %d outside 0..%d", *d, MaxPolicyDays)
		}
	}
	if p.LifetimeDays == nil && p.LifetimeSetAt != nil || p.UnusedDays == nil && p.UnusedSetAt != nil {
		return errors.New("a policy time without its policy")
	}
	return nil
}

// checkTimes refuses a time later than limit: pairs of a field name and
// a time, nil when absent.
func checkTimes(limit time.Time, pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if t := pairs[i+1].(*time.Time); t != nil && t.After(limit) {
			return fmt.Errorf("%s %s is in the future", pairs[i], t.Format(time.RFC3339))
		}
	}
	return nil
}

// checkText refuses text that the store's own checks would refuse.
func checkText(field, s string, max int) error {
	if !plainText(s) || utf8.RuneCountInString(s) > max {
		return fmt.Errorf("%s must be printable text of at most %d characters", field, max)
	}
	return nil
}

func checkIDs(field string, ids []string, max int) error {
	if len(ids) > max {
		return fmt.Errorf("more than %d %s", max, field)
	}
	for _, id := range ids {
		if !ValidID(id) {
			return fmt.Errorf("invalid %s entry %s", field, strconvQuote(truncateText(id, 64)))
		}
	}
	return nil
}

func checkRole(r *Role) error {
	if !ValidID(r.ID) {
		return fmt.Errorf("invalid role id %s", strconvQuote(truncateText(r.ID, 64)))
	}
	return about("role", r.ID, errors.Join(checkText("name", r.Name, MaxNameLen), checkText("description", r.Description, MaxDescriptionLen),
		checkIDs("capabilities", r.Capabilities, MaxCapabilities)))
}

func checkOwner(o *Owner) error {
	if !ValidID(o.ID) {
		return fmt.Errorf("invalid owner id %s", strconvQuote(truncateText(o.ID, 64)))
	}
	if o.Kind != OwnerUser && o.Kind != OwnerServiceAccount {
		return fmt.Errorf("owner %s: kind must be user or serviceAccount", o.ID)
	}
	var rate error
	if o.RateLimit != nil {
		rate = o.RateLimit.Validate()
	}
	return about("owner", o.ID, errors.Join(checkText("email", o.Email, 320), checkText("firstName", o.FirstName, MaxNameLen),
		checkText("lastName", o.LastName, MaxNameLen), checkText("name", o.Name, MaxNameLen),
		checkIDs("roleIds", o.RoleIDs, MaxCapabilities), rate))
}

func checkKey(rec *exportRecord) error {
	k := rec.Key
	if !ValidAccessID(k.ID) {
		return fmt.Errorf("invalid access id %s", strconvQuote(truncateText(k.ID, 64)))
	}
	if !validSecretHash(k.SecretHash) {
		return fmt.Errorf("key %s: secretHash must be 64 lower-case hex digits", k.ID)
	}
	if !ValidID(k.OwnerID) || k.OwnerKind != OwnerUser && k.OwnerKind != OwnerServiceAccount {
		return fmt.Errorf("key %s: invalid owner", k.ID)
	}
	if k.Version < 1 || k.Version > maxImportVersion {
		return fmt.Errorf("key %s: version must be at least 1 and at most %d", k.ID, maxImportVersion)
	}
	if k.Pending {
		return fmt.Errorf("key %s: a pending record (a rotation in progress) cannot be imported", k.ID)
	}
	for _, id := range []string{k.ReplacedBy, k.RotatedFrom, k.Lineage} {
		if id != "" && !ValidAccessID(id) {
			return fmt.Errorf("key %s: invalid access id %s", k.ID, strconvQuote(truncateText(id, 64)))
		}
	}
	switch k.DisabledReason {
	case "", DisabledManual, DisabledExpired, DisabledUnused:
	default:
		return fmt.Errorf("key %s: unknown disabledReason", k.ID)
	}
	if (k.ReplacedBy != "") != (rec.RecordExpiresAt != nil) {
		return fmt.Errorf("key %s: a key rotated out (replacedBy) and only such a key has recordExpiresAt", k.ID)
	}
	if rec.RecordExpiresAt != nil && k.GraceUntil.IsZero() {
		return fmt.Errorf("key %s: a key rotated out needs graceUntil", k.ID)
	}
	if len(k.CORSHeaders) > MaxAllowlist {
		return fmt.Errorf("key %s: more than %d corsHeaders", k.ID, MaxAllowlist)
	}
	if _, err := NormalizeAllowlist(k.CORSHeaders); err != nil {
		return fmt.Errorf("key %s: %w", k.ID, err)
	}
	var label ValidationError
	validateLabel(&label, k.Label)
	return about("key", k.ID, errors.Join(label.err(), checkIDs("scopes", k.Scopes, MaxScopes), checkKeyLimits(k)))
}

// about names the record an error is about; nil stays nil.
func about(kind, id string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", kind, id, err)
}

func checkKeyLimits(k *Key) error {
	var errs []error
	if k.RateLimit != nil {
		errs = append(errs, k.RateLimit.Validate())
	}
	if k.ConcurrencyLimit != nil {
		errs = append(errs, limits.ValidateConcurrency(*k.ConcurrencyLimit))
	}
	if k.Quota != nil {
		errs = append(errs, k.Quota.Validate())
	}
	return errors.Join(errs...)
}

// validSecretHash reports whether h looks like HashSecret's output.
func validSecretHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
