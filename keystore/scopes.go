package keystore

import (
	"context"
	"slices"
	"strings"
	"unicode"
)

// Scope types, as the scope catalogue reports them.
const (
	ScopeTypeView   = "View"
	ScopeTypeManage = "Manage"
	ScopeTypeRun    = "Run"
	ScopeTypeAdmin  = "Admin"
	ScopeTypeCreate = "Create"
	ScopeTypeCustom = "Custom"
)

// ScopeGroup is the group a scope is listed under.
type ScopeGroup struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// ScopeDef describes one scope a key may be restricted to.
type ScopeDef struct {
	ID        string     `json:"id"`
	Label     string     `json:"label"`
	Type      string     `json:"type"`
	DependsOn []string   `json:"dependsOn"`
	Group     ScopeGroup `json:"group"`
}

// Scope groups of the catalogue.
var (
	groupAlerting    = ScopeGroup{ID: "alerting", Label: "Alerting"}
	groupData        = ScopeGroup{ID: "dataManagement", Label: "Data Management"}
	groupLogs        = ScopeGroup{ID: "logs", Label: "Logs"}
	groupMetrics     = ScopeGroup{ID: "metrics", Label: "Metrics"}
	groupReliability = ScopeGroup{ID: "reliabilityManagement", Label: "Reliability Management"}
	groupSecurity    = ScopeGroup{ID: "security", Label: "Security"}
	groupUsers       = ScopeGroup{ID: "userManagement", Label: "User Management"}
	groupAccount     = ScopeGroup{ID: "accountManagement", Label: "Account Management"}

	// GatewayScopeGroup holds scopes that a gateway's route rules use but
	// the catalogue does not describe.
	GatewayScopeGroup = ScopeGroup{ID: "gateway", Label: "Gateway Routes"}
)

// scopeCatalogue lists the scopes offered for custom-scoped keys, in the
// order they are shown.
var scopeCatalogue = []ScopeDef{
	{ID: "viewMonitorsV2", Label: "View monitors", Type: ScopeTypeView, Group: groupAlerting},
	{ID: "manageMonitorsV2", Label: "Create, edit and delete monitors", Type: ScopeTypeManage, DependsOn: []string{"viewMonitorsV2"}, Group: groupAlerting},
	{ID: "adminMonitorsV2", Label: "Administer every monitor", Type: ScopeTypeAdmin, DependsOn: []string{"manageMonitorsV2", "viewMonitorsV2"}, Group: groupAlerting},

	{ID: "manageApps", Label: "Install and manage apps", Type: ScopeTypeManage, Group: groupData},
	{ID: "viewCollectors", Label: "View collectors and sources", Type: ScopeTypeView, Group: groupData},
	{ID: "manageCollectors", Label: "Create, edit and delete collectors and sources", Type: ScopeTypeManage, DependsOn: []string{"viewCollectors"}, Group: groupData},
	{ID: "viewConnections", Label: "View connections", Type: ScopeTypeView, Group: groupData},
	{ID: "manageConnections", Label: "Create, edit and delete connections", Type: ScopeTypeManage, DependsOn: []string{"viewConnections"}, Group: groupData},
	{ID: "contentAdmin", Label: "Administer all content in the library", Type: ScopeTypeAdmin, DependsOn: []string{"viewLibrary"}, Group: groupData},
	{ID: "viewFieldExtractionRules", Label: "View field extraction rules", Type: ScopeTypeView, Group: groupData},
	{ID: "manageFieldExtractionRules", Label: "Create, edit and delete field extraction rules", Type: ScopeTypeManage, DependsOn: []string{"viewFieldExtractionRules"}, Group: groupData},
	{ID: "viewFields", Label: "View fields", Type: ScopeTypeView, Group: groupData},
	{ID: "manageFields", Label: "Create, edit and delete fields", Type: ScopeTypeManage, DependsOn: []string{"viewFields"}, Group: groupData},
	{ID: "manageBudgets", Label: "Manage ingest budgets", Type: ScopeTypeManage, Group: groupData},
	{ID: "viewLibrary", Label: "View library content", Type: ScopeTypeView, Group: groupData},
	{ID: "manageLibrary", Label: "Create, edit and delete library content", Type: ScopeTypeManage, DependsOn: []string{"viewLibrary"}, Group: groupData},
	{ID: "viewPartitions", Label: "View partitions", Type: ScopeTypeView, Group: groupData},
	{ID: "managePartitions", Label: "Create, edit and delete partitions", Type: ScopeTypeManage, DependsOn: []string{"viewPartitions"}, Group: groupData},
	{ID: "manageS3DataForwarding", Label: "Manage data forwarding to S3", Type: ScopeTypeManage, Group: groupData},
	{ID: "viewScheduledViews", Label: "View scheduled views", Type: ScopeTypeView, Group: groupData},
	{ID: "manageScheduledViews", Label: "Create, edit and delete scheduled views", Type: ScopeTypeManage, DependsOn: []string{"viewScheduledViews"}, Group: groupData},
	{ID: "manageTokens", Label: "Manage installation tokens", Type: ScopeTypeManage, Group: groupData},

	{ID: "runLogSearch", Label: "Run log searches", Type: ScopeTypeRun, Group: groupLogs},

	{ID: "runMetricsQuery", Label: "Run metrics queries", Type: ScopeTypeRun, Group: groupMetrics},

	{ID: "viewSlos", Label: "View SLOs", Type: ScopeTypeView, Group: groupReliability},
	{ID: "manageSlos", Label: "Create, edit and delete SLOs", Type: ScopeTypeManage, DependsOn: []string{"viewSlos"}, Group: groupReliability},

	{ID: "createAccessKeys", Label: "Create access keys and manage one's own", Type: ScopeTypeCreate, Group: groupSecurity},
	{ID: "manageAccessKeys", Label: "Manage every access key of the organisation", Type: ScopeTypeManage, Group: groupSecurity},
	{ID: "viewPersonalAccessKeys", Label: "View one's own access keys", Type: ScopeTypeView, Group: groupSecurity},
	{ID: "managePersonalAccessKeys", Label: "Create, edit and delete one's own access keys", Type: ScopeTypeManage, DependsOn: []string{"viewPersonalAccessKeys"}, Group: groupSecurity},

	{ID: "viewUsersAndRoles", Label: "View users, roles and service accounts", Type: ScopeTypeView, Group: groupUsers},
	{ID: "manageUsersAndRoles", Label: "Create, edit and delete users, roles and service accounts", Type: ScopeTypeManage, DependsOn: []string{"viewUsersAndRoles"}, Group: groupUsers},

	{ID: "manageOrgSettings", Label: "Change organisation settings such as the access key policies", Type: ScopeTypeManage, Group: groupAccount},
}

// ScopeCatalogue returns the scopes offered for custom-scoped keys. The
// result is a copy the caller may change.
func ScopeCatalogue() []ScopeDef {
	out := make([]ScopeDef, len(scopeCatalogue))
	for i, d := range scopeCatalogue {
		d.DependsOn = nonNil(slices.Clone(d.DependsOn))
		out[i] = d
	}
	return out
}

// LookupScope returns the catalogue entry of a scope.
func LookupScope(id string) (ScopeDef, bool) {
	for _, d := range scopeCatalogue {
		if d.ID == id {
			d.DependsOn = nonNil(slices.Clone(d.DependsOn))
			return d, true
		}
	}
	return ScopeDef{}, false
}

// DescribeScope returns a definition for a scope that is not in the
// catalogue, such as one a gateway route rule names: its type and label
// come from its name (manageWidgets: type Manage, label "Manage widgets"),
// and it depends on the matching view scope when it is a manage scope.
func DescribeScope(id string) ScopeDef {
	d := ScopeDef{ID: id, Type: ScopeTypeCustom, DependsOn: []string{}, Group: GatewayScopeGroup}
	words := splitCamel(id)
	if len(words) > 0 {
		switch strings.ToLower(words[0]) {
		case "view":
			d.Type = ScopeTypeView
		case "manage":
			d.Type = ScopeTypeManage
			if len(id) > len("manage") {
				d.DependsOn = []string{"view" + id[len("manage"):]}
			}
		case "run":
			d.Type = ScopeTypeRun
		case "admin":
			d.Type = ScopeTypeAdmin
		case "create":
			d.Type = ScopeTypeCreate
		}
		for i := 1; i < len(words); i++ {
			words[i] = strings.ToLower(words[i])
		}
		words[0] = strings.ToUpper(words[0][:1]) + words[0][1:]
	}
	d.Label = strings.Join(words, " ")
	if d.Label == "" {
		d.Label = id
	}
	return d
}

// splitCamel splits a camelCase identifier into words; runs of capitals
// stay together ("runSQLQuery": run, SQL, Query) and separators other than
// letters and digits end a word.
func splitCamel(s string) []string {
	var words []string
	rs := []rune(s)
	start := 0
	flush := func(end int) {
		if w := strings.Trim(string(rs[start:end]), "_.:@-"); w != "" {
			words = append(words, w)
		}
		start = end
	}
	for i := 1; i < len(rs); i++ {
		prev, cur := rs[i-1], rs[i]
		next := rune(0)
		if i+1 < len(rs) {
			next = rs[i+1]
		}
		switch {
		case !unicode.IsLetter(cur) && !unicode.IsDigit(cur):
			flush(i)
		case unicode.IsUpper(cur) && (unicode.IsLower(prev) || unicode.IsDigit(prev)):
			flush(i)
		case unicode.IsUpper(cur) && unicode.IsUpper(prev) && unicode.IsLower(next):
			flush(i)
		}
	}
	flush(len(rs))
	return words
}

// KeyScopes returns the scopes stored on a key record, as listed (empty
// for the Default scope). Unlike Key it also reads a key that was rotated
// out and is in its grace period, since such a key still authenticates.
func (s *Store) KeyScopes(ctx context.Context, accessID string) ([]string, error) {
	k, err := s.rawKey(ctx, accessID)
	if err != nil {
		return nil, err
	}
	if k.Pending {
		return nil, &NotFoundError{Kind: "accessKey", ID: accessID}
	}
	return nonNil(k.Scopes), nil
}
