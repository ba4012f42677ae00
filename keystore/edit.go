package keystore

import (
	"context"
)

// KeyEdit changes the settings of a key: its label, scopes and
// allowlist. Nil fields stay as they are.
type KeyEdit struct {
	Label       *string
	Scopes      *[]string
	CORSHeaders *[]string
}

// EditKey changes the label, scopes and allowlist of the live key id:
// UpdateKey with those fields, all stored or none, announced and audited
// as one AccessKeyUpdated event. A key rotated out cannot be edited
// (*ConflictError).
func (s *Store) EditKey(ctx context.Context, id string, u KeyEdit, op Operator) (*Key, error) {
	return s.UpdateKey(ctx, id, KeyUpdate{Label: u.Label, Scopes: u.Scopes, CORSHeaders: u.CORSHeaders}, op)
}
