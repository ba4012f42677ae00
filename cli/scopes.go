package cli

import (
	"fmt"

	"github.com/accessgate/accessgate/keystore"
)

// catalogueHelp says, in the help of the verbs that set scopes, which
// scopes they accept.
const catalogueHelp = `Scopes must be in the scope catalogue, the one the management API serves
at /accessKeys/scopes. The scopes that route rules of a running
configuration add to that list are not known here: give those through
the management API.`

// checkCatalogue refuses, before anything is written, scopes that are not
// in the scope catalogue. Other problems with scopes are left to the
// store, which reports them with the rest of the input.
func checkCatalogue(scopes []string) error {
	v := &keystore.ValidationError{}
	for _, s := range scopes {
		if !keystore.ValidID(s) {
			continue
		}
		if _, ok := keystore.LookupScope(s); !ok {
			v.Problems = append(v.Problems, keystore.FieldError{Field: "scopes", Code: "accessKey:unknown_scope",
				Message: fmt.Sprintf("scope %q is not in the scope catalogue", s)})
		}
	}
	if len(v.Problems) > 0 {
		return v
	}
	return nil
}
