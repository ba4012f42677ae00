package caddymodule

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Bounds of the route memo: it remembers at most maxRouteMemo paths, each
// at most maxMemoPathLen bytes long, and for each path at most one answer
// per method of memoMethods. Anything else is matched rule by rule, so a
// client inventing paths or methods costs neither memory nor copying.
const (
	maxRouteMemo   = 1024
	maxMemoPathLen = 512
)

// memoMethods are the methods whose answers the memo keeps, each in its
// own slot of a memoPath.
var memoMethods = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace,
}

// routeMemo remembers which scope rules match a (method, path), so that a
// path seen before costs one map lookup instead of running Caddy's path
// matcher once per rule. The map is copied on write and read without
// locks; it only grows, up to maxRouteMemo paths, so the copies are
// bounded too: at most maxRouteMemo × len(memoMethods) writes, each
// copying at most maxRouteMemo pointers.
type routeMemo struct {
	m  atomic.Pointer[map[string]*memoPath]
	mu sync.Mutex // serialises writers
}

// memoPath holds the answers for one path, a slot per method of
// memoMethods.
type memoPath [len(memoMethods)]memoSlot

// memoSlot is the answer for one method on a path: the indexes of the
// matching rules, in rule order.
type memoSlot struct {
	known bool
	rules []int
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

// memoMethod returns the slot of method m in a memoPath, or -1 when the
// memo keeps no answers for it. Methods compare as scope rules compare
// them (case folded), so that the one slot holds the one answer for
// `get`, `GET` and `Get`.
func memoMethod(m string) int {
	for i, s := range memoMethods {
		if m == s {
			return i
		}
	}
	for i, s := range memoMethods {
		if strings.EqualFold(m, s) {
			return i
		}
	}
	return -1
}

// slot returns where the answer for r belongs, or false when the memo
// keeps none for it: a nil memo, an escaped or overlong path, or a method
// outside memoMethods.
func (m *routeMemo) slot(r *http.Request) (int, bool) {
	if m == nil || r.URL.RawPath != "" || len(r.URL.Path) > maxMemoPathLen {
		return 0, false
	}
	i := memoMethod(r.Method)
	return i, i >= 0
}

// holds reports whether the memo may hold the answer for r.
func (m *routeMemo) holds(r *http.Request) bool {
	_, ok := m.slot(r)
	return ok
}

// get returns the remembered matching rules of r, if any. A nil memo
// remembers nothing.
func (m *routeMemo) get(r *http.Request) ([]int, bool) {
	i, ok := m.slot(r)
	if !ok {
		return nil, false
	}
	mp := m.m.Load()
	if mp == nil {
		return nil, false
	}
	if p := (*mp)[r.URL.Path]; p != nil && p[i].known {
		return p[i].rules, true
	}
	return nil, false
}

// put remembers the matching rules of r, while there is room.
func (m *routeMemo) put(r *http.Request, rules []int) {
	i, ok := m.slot(r)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.m.Load()
	var oldMap map[string]*memoPath
	if old != nil {
		oldMap = *old
	}
	p, known := oldMap[r.URL.Path]
	if !known && len(oldMap) >= maxRouteMemo || known && p[i].known {
		return
	}
	np := new(memoPath)
	if known {
		*np = *p
	}
	np[i] = memoSlot{known: true, rules: rules}
	next := make(map[string]*memoPath, len(oldMap)+1)
	for k, v := range oldMap {
		next[k] = v
	}
	next[strings.Clone(r.URL.Path)] = np
	m.m.Store(&next)
}
