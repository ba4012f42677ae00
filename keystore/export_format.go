package keystore

import (
	"time"
)

// The export format: JSON lines, a header first, then one record per
// line (the policies, roles, owners, keys), then an end line that says
// how many records came before it, so that a file cut short at a line
// boundary is told from a complete one.
const (
	// ExportFormat names the format in the header line.
	ExportFormat = "accessgate-export"
	// ExportVersion is the version of the format this build writes and
	// the only one it reads.
	ExportVersion = 1
	// MaxExportLine bounds one line of an export file; import refuses a
	// longer one. A record is a few KiB at most.
	MaxExportLine = 1 << 20
)

// Record kinds of the export format.
const (
	recordPolicies = "policies"
	recordRole     = "role"
	recordOwner    = "owner"
	recordKey      = "key"
	recordEnd      = "end"
)

// Audit event names of backups.
const (
	EventKeysExported = "AccessKeysExported"
	EventKeysImported = "AccessKeysImported"
)

// RecordCounts are the numbers of records a store holds, as its indexes
// count them: cheap to read, and a progress total for export and import.
// Keys counts live keys; keys rotated out and still in their grace come
// on top.
type RecordCounts struct {
	// Policies is 1 when either policy was ever set, else 0.
	Policies        int `json:"policies"`
	Keys            int `json:"keys"`
	Users           int `json:"users"`
	ServiceAccounts int `json:"serviceAccounts"`
	Roles           int `json:"roles"`
}

// Total is the number of records the counts stand for.
func (c RecordCounts) Total() int { return c.Policies + c.Keys + c.Users + c.ServiceAccounts + c.Roles }

// exportHeader is the first line of an export.
type exportHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// ExportID tells one export from another, so that an import can
	// recognise a store filled from the same file.
	ExportID   string       `json:"exportId"`
	Prefix     string       `json:"prefix"`
	ExportedAt time.Time    `json:"exportedAt"`
	Counts     RecordCounts `json:"counts"`
}

// policyRecord is the policy hash as stored: only the fields set.
type policyRecord struct {
	LifetimeDays  *int       `json:"lifetimeDays,omitempty"`
	LifetimeSetAt *time.Time `json:"lifetimeSetAt,omitempty"`
	UnusedDays    *int       `json:"unusedDays,omitempty"`
	UnusedSetAt   *time.Time `json:"unusedSetAt,omitempty"`
}

// exportRecord is every line after the header.
type exportRecord struct {
	Kind     string        `json:"kind"`
	Policies *policyRecord `json:"policies,omitempty"`
	Role     *Role         `json:"role,omitempty"`
	Owner    *Owner        `json:"owner,omitempty"`
	Key      *Key          `json:"key,omitempty"`
	// LastUsed is the key's last use as stored (absent if never used).
	LastUsed *time.Time `json:"lastUsed,omitempty"`
	// RecordExpiresAt is when Redis drops the key record: set on keys
	// rotated out, whose record lives through their grace only.
	RecordExpiresAt *time.Time `json:"recordExpiresAt,omitempty"`
	// Records is, on the end line, the number of records before it.
	Records *int `json:"records,omitempty"`
}
