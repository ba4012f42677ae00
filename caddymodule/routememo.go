package caddymodule

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// maxRouteMemo bounds the request paths whose matching scope rules are
// remembered; past it, paths are matched rule by rule as before.
const maxRouteMemo = 1024

// routeMemo remembers which scope rules match a (method, path), so that a
// path seen before costs one map lookup instead of running Caddy's path
// matcher once per rule. The map is copied on write and read without
// locks; it only grows, up to maxRouteMemo paths.
type routeMemo struct {
	m  atomic.Pointer[map[string][]memoEntry]
	mu sync.Mutex // serialises writers
}

// memoEntry is the answer for one method on a path: the indexes of the
// matching rules, in rule order.
type memoEntry struct {
	method string
	rules  []int
}

// memoizable reports whether rule matching depends on nothing but the
// method and the decoded path: no placeholders and no escaped patterns in
// any rule.
func memoizable(rules []ScopeRule) bool {
	for _, r := range rules {
		for _, p := range r.Paths {
			if strings.ContainsAny(p, "{%") {
				return false
			}
		}
	}
	return true
}

// get returns the remembered matching rules of r, if any. A nil memo
// remembers nothing.
func (m *routeMemo) get(r *http.Request) ([]int, bool) {
	if m == nil || r.URL.RawPath != "" {
		return nil, false
	}
	mp := m.m.Load()
	if mp == nil {
		return nil, false
	}
	for _, e := range (*mp)[r.URL.Path] {
		if e.method == r.Method {
			return e.rules, true
		}
	}
	return nil, false
}

// put remembers the matching rules of r, while there is room.
func (m *routeMemo) put(r *http.Request, rules []int) {
	if m == nil || r.URL.RawPath != "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.m.Load()
	n := 0
	if old != nil {
		n = len(*old)
	}
	if _, known := (*orEmpty(old))[r.URL.Path]; !known && n >= maxRouteMemo {
		return
	}
	next := make(map[string][]memoEntry, n+1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	entries := append([]memoEntry(nil), next[r.URL.Path]...)
	for _, e := range entries {
		if e.method == r.Method {
			return
		}
	}
	next[strings.Clone(r.URL.Path)] = append(entries, memoEntry{method: strings.Clone(r.Method), rules: rules})
	m.m.Store(&next)
}

var emptyMemo = map[string][]memoEntry{}

func orEmpty(p *map[string][]memoEntry) *map[string][]memoEntry {
	if p == nil {
		return &emptyMemo
	}
	return p
}
