package mgmtapi

import (
	"net/http"
	"slices"
	"strings"
)

// apiPrefix is the version prefix the management API lives under.
const apiPrefix = "/api/v1"

// apiRoots are the first path segments the management API serves.
var apiRoots = []string{"accessKeys", "policies", "serviceAccounts", "users", "roles", "usage", openAPIName}

// apiSegments returns the segments of the management API path of a request
// path: what follows the last "/api/v1" (or the whole path when a prefix
// was stripped), without a trailing slash. It reports false when the path
// is not one the API serves.
func apiSegments(path string) ([]string, bool) {
	if i := strings.LastIndex(path, apiPrefix); i >= 0 {
		if rest := path[i+len(apiPrefix):]; rest == "" || rest[0] == '/' {
			path = rest
		}
	}
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return nil, false
	}
	segs := strings.Split(path, "/")
	if !slices.Contains(apiRoots, segs[0]) {
		return nil, false
	}
	return segs, true
}

// apiFunc serves one endpoint.
type apiFunc func(c *apiCall) error

// apiMethods maps the methods of one path to their endpoints.
type apiMethods map[string]apiFunc

// allow lists the methods, for the Allow header.
func (m apiMethods) allow() string {
	out := make([]string, 0, len(m)+1)
	for k := range m {
		out = append(out, k)
	}
	if m[http.MethodGet] != nil {
		out = append(out, http.MethodHead)
	}
	out = append(out, http.MethodOptions)
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// routeAPI finds the endpoints of a management API path; nil means there
// is no such path.
func routeAPI(segs []string) apiMethods {
	if slices.Contains(segs, "") {
		return nil
	}
	switch segs[0] {
	case "accessKeys":
		return routeKeys(segs[1:], "")
	case "policies":
		return routePolicies(segs[1:])
	case "serviceAccounts":
		return routeServiceAccounts(segs[1:])
	case "users":
		return routeOwners(segs[1:], ownerRoutesUser)
	case "roles":
		return routeRoles(segs[1:])
	case "usage":
		if len(segs) == 1 {
			return apiMethods{http.MethodGet: getOrgUsage}
		}
	case openAPIName:
		if len(segs) == 1 {
			return apiMethods{http.MethodGet: getOpenAPI}
		}
	}
	return nil
}

// routeKeys routes /accessKeys/... and, with sa set,
// /serviceAccounts/{sa}/accessKeys/...
func routeKeys(segs []string, sa string) apiMethods {
	switch {
	case len(segs) == 0 && sa == "":
		return apiMethods{http.MethodGet: listKeys, http.MethodPost: createKey("")}
	case len(segs) == 0:
		return apiMethods{http.MethodGet: listServiceAccountKeys(sa), http.MethodPost: createKey(sa)}
	case len(segs) == 1 && sa == "" && segs[0] == "personal":
		return apiMethods{http.MethodGet: personalKeys}
	case len(segs) == 1 && sa == "" && segs[0] == "scopes":
		return apiMethods{http.MethodGet: listScopes}
	case len(segs) == 1:
		id := segs[0]
		return apiMethods{http.MethodGet: getKey(sa, id), http.MethodPut: updateKey(sa, id), http.MethodDelete: deleteKey(sa, id)}
	case len(segs) == 2 && segs[1] == "rotate":
		return apiMethods{http.MethodPut: rotateKey(sa, segs[0])}
	case len(segs) == 2 && segs[1] == "usage":
		return apiMethods{http.MethodGet: getKeyUsage(sa, segs[0])}
	}
	return nil
}

func routePolicies(segs []string) apiMethods {
	if len(segs) != 1 {
		return nil
	}
	for _, p := range apiPolicies {
		if p.path == segs[0] {
			return apiMethods{http.MethodGet: getPolicy(p), http.MethodPut: putPolicy(p)}
		}
	}
	return nil
}

func routeServiceAccounts(segs []string) apiMethods {
	if len(segs) >= 2 && segs[1] == "accessKeys" {
		return routeKeys(segs[2:], segs[0])
	}
	return routeOwners(segs, ownerRoutesServiceAccount)
}

func routeOwners(segs []string, k ownerRoutes) apiMethods {
	switch len(segs) {
	case 0:
		return apiMethods{http.MethodGet: listOwners(k), http.MethodPost: createOwner(k)}
	case 1:
		id := segs[0]
		return apiMethods{http.MethodGet: getOwner(k, id), http.MethodPut: updateOwner(k, id), http.MethodDelete: deleteOwner(k, id)}
	}
	return nil
}

func routeRoles(segs []string) apiMethods {
	switch len(segs) {
	case 0:
		return apiMethods{http.MethodGet: listRoles, http.MethodPost: createRole}
	case 1:
		id := segs[0]
		return apiMethods{http.MethodGet: getRole(id), http.MethodPut: updateRole(id), http.MethodDelete: deleteRole(id)}
	}
	return nil
}
