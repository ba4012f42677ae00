package errbody

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestErrorID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if len(id) != 17 || id[5] != '-' || id[11] != '-' {
			t.Fatalf("error id %q is not 5-5-5", id)
		}
		for i, c := range id {
			if i == 5 || i == 11 {
				continue
			}
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				t.Fatalf("error id %q has %q", id, c)
			}
		}
		if seen[id] {
			t.Fatalf("error id %q repeated", id)
		}
		seen[id] = true
	}
}

func TestWriteA(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteA(rec, http.StatusForbidden, "FRXHW-NB12G-HMYO6", CodeForbidden, ScopeMessage("viewWidgets"))
	if rec.Code != http.StatusForbidden {
		t.Errorf("status %d", rec.Code)
	}
	h := rec.Header()
	if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" || h.Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
		t.Errorf("headers %v for a body of %d bytes", h, rec.Body.Len())
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"status": float64(403), "id": "FRXHW-NB12G-HMYO6", "code": "forbidden",
		"message": "This access key lacks the scope viewWidgets needed for this request"}
	if len(got) != len(want) {
		t.Errorf("body %v, want exactly %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
