package keystore

import "github.com/accessgate/accessgate/limits"

// UserView is a user as the management API and the command line's --json
// show it.
type UserView struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	FirstName  string    `json:"firstName"`
	LastName   string    `json:"lastName"`
	RoleIDs    []string  `json:"roleIds"`
	IsActive   bool      `json:"isActive"`
	CreatedAt  Timestamp `json:"createdAt"`
	CreatedBy  string    `json:"createdBy"`
	ModifiedAt Timestamp `json:"modifiedAt"`
	ModifiedBy string    `json:"modifiedBy"`
	// RateLimit overrides the default rate limit of owners (all keys of
	// the owner together); null: the default. It shows its burst.
	RateLimit *limits.Rate `json:"rateLimit"`
}

// ServiceAccountView is a service account as the management API and the
// command line's --json show it.
type ServiceAccountView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Email      string    `json:"email"`
	RoleIDs    []string  `json:"roleIds"`
	IsActive   bool      `json:"isActive"`
	CreatedAt  Timestamp `json:"createdAt"`
	CreatedBy  string    `json:"createdBy"`
	ModifiedAt Timestamp `json:"modifiedAt"`
	ModifiedBy string    `json:"modifiedBy"`
	// RateLimit overrides the default rate limit of owners (all keys of
	// the owner together); null: the default. It shows its burst.
	RateLimit *limits.Rate `json:"rateLimit"`
}

// RoleView is a role as the management API and the command line's --json
// show it.
type RoleView struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Capabilities []string  `json:"capabilities"`
	CreatedAt    Timestamp `json:"createdAt"`
	CreatedBy    string    `json:"createdBy"`
	ModifiedAt   Timestamp `json:"modifiedAt"`
	ModifiedBy   string    `json:"modifiedBy"`
}

// ViewUser builds the public shape of user o.
func ViewUser(o *Owner) UserView {
	return UserView{
		ID: o.ID, Email: o.Email, FirstName: o.FirstName, LastName: o.LastName, RoleIDs: nonNil(o.RoleIDs), IsActive: o.IsActive,
		CreatedAt: Timestamp{o.CreatedAt}, CreatedBy: o.CreatedBy, ModifiedAt: Timestamp{o.ModifiedAt}, ModifiedBy: o.ModifiedBy,
		RateLimit: viewRate(o.RateLimit),
	}
}

// ViewServiceAccount builds the public shape of service account o.
func ViewServiceAccount(o *Owner) ServiceAccountView {
	return ServiceAccountView{
		ID: o.ID, Name: o.Name, Email: o.Email, RoleIDs: nonNil(o.RoleIDs), IsActive: o.IsActive,
		CreatedAt: Timestamp{o.CreatedAt}, CreatedBy: o.CreatedBy, ModifiedAt: Timestamp{o.ModifiedAt}, ModifiedBy: o.ModifiedBy,
		RateLimit: viewRate(o.RateLimit),
	}
}

// ViewRole builds the public shape of role r.
func ViewRole(r *Role) RoleView {
	return RoleView{
		ID: r.ID, Name: r.Name, Description: r.Description, Capabilities: nonNil(r.Capabilities),
		CreatedAt: Timestamp{r.CreatedAt}, CreatedBy: r.CreatedBy, ModifiedAt: Timestamp{r.ModifiedAt}, ModifiedBy: r.ModifiedBy,
	}
}
