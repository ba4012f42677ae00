package mgmtapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseDays(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{`60`, 60, true},
		{`"60"`, 60, true},
		{`" 45 "`, 45, true},
		{`0`, 0, true},
		{`"0"`, 0, true},
		{`60.0`, 60, true},
		{`6e1`, 60, true},
		{`-1`, -1, true},
		{`1000`, 1000, true},
		{`1.5`, 0, false},
		{`"1.5"`, 0, false},
		{`"sixty"`, 0, false},
		{`""`, 0, false},
		{`true`, 0, false},
		{`[60]`, 0, false},
		{`{"days":60}`, 0, false},
		{`1e300`, 0, false},
		{`"NaN"`, 0, false},
		{`"Inf"`, 0, false},
		{`99999999999999999999`, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseDays(json.RawMessage(tt.in))
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("parseDays(%s) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestJSONContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                  true,
		"Application/JSON; charset=utf-8":   true,
		"application/merge-patch+json":      true,
		"application/vnd.api+json":          true,
		"":                                  false,
		"text/plain":                        false,
		"application/x-www-form-urlencoded": false,
		"text/json+json":                    false,
		"application/json; =":               false,
	} {
		if got := jsonContentType(ct); got != want {
			t.Errorf("jsonContentType(%q) = %v", ct, got)
		}
	}
}

// readTestBody runs readJSONObject on a request with the given body.
func readTestBody(body, ct string) (*jsonBody, error) {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/accessKeys", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return readJSONObject(httptest.NewRecorder(), r, "accessKey")
}

func TestReadJSONObject(t *testing.T) {
	tests := []struct {
		name, body, ct string
		status         int // 0: accepted
	}{
		{"object", `{"label":"x"}`, "application/json", 0},
		{"object with space", " \n{\"label\":\"x\"}\n\t ", "application/json; charset=utf-8", 0},
		{"empty object", `{}`, "application/json", 0},
		{"duplicate keys", `{"label":"x","label":"y"}`, "application/json", 0},
		{"not json type", `{"label":"x"}`, "text/plain", http.StatusUnsupportedMediaType},
		{"no type", `{"label":"x"}`, "", http.StatusUnsupportedMediaType},
		{"empty", ``, "application/json", http.StatusBadRequest},
		{"array", `[1]`, "application/json", http.StatusBadRequest},
		{"string", `"x"`, "application/json", http.StatusBadRequest},
		{"null", `null`, "application/json", http.StatusBadRequest},
		{"trailing", `{} x`, "application/json", http.StatusBadRequest},
		{"two objects", `{}{}`, "application/json", http.StatusBadRequest},
		{"truncated", `{"a":`, "application/json", http.StatusBadRequest},
		{"bad escape", `{"a":"\q"}`, "application/json", http.StatusBadRequest},
		{"deep", `{"a":` + strings.Repeat("[", 12000) + strings.Repeat("]", 12000) + `}`, "application/json", http.StatusBadRequest},
		{"too large", `{"a":"` + strings.Repeat("x", maxAPIBody) + `"}`, "application/json", http.StatusRequestEntityTooLarge},
		{"too large after object", `{}` + strings.Repeat(" ", maxAPIBody), "application/json", http.StatusRequestEntityTooLarge},
	}
	c := &apiCall{noun: "accessKey"}
	for _, tt := range tests {
		b, err := readTestBody(tt.body, tt.ct)
		if tt.status == 0 {
			if err != nil || b == nil || b.fields == nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if got := c.asAPIError(err).status; got != tt.status {
			t.Errorf("%s: status %d, want %d (%v)", tt.name, got, tt.status, err)
		}
	}
}

func TestJSONBodyFields(t *testing.T) {
	b, err := readTestBody(`{"label":5,"scopes":"x","corsHeaders":[1],"disabled":"no","days":"7","n":null,"ok":"fine","list":[],"yes":true}`, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if b.str("label") != nil || b.strs("scopes") != nil || b.strs("corsHeaders") != nil || b.boolean("disabled") != nil {
		t.Error("a value of the wrong type was accepted")
	}
	if d := b.days("days"); d == nil || *d != 7 {
		t.Errorf("days = %v", d)
	}
	if b.str("n") != nil || b.str("absent") != nil || b.require("n") || !b.require("ok") {
		t.Error("null or absent read as present")
	}
	if s := b.str("ok"); s == nil || *s != "fine" {
		t.Errorf("ok = %v", s)
	}
	if l := b.strs("list"); l == nil || *l == nil || len(*l) != 0 {
		t.Errorf("list = %v", l)
	}
	if y := b.boolean("yes"); y == nil || !*y {
		t.Errorf("yes = %v", y)
	}
	var ae *apiError
	if !errors.As(b.err(), &ae) || ae.status != http.StatusBadRequest || len(ae.problems) != 5 {
		t.Fatalf("err = %+v", b.err())
	}
	codes := map[string]int{}
	for _, p := range ae.problems {
		codes[p.Code]++
	}
	if codes["accessKey:invalid_type"] != 4 || codes["accessKey:n_required"] != 1 {
		t.Errorf("codes %v", codes)
	}
}

// FuzzAPIBody: the body reader never panics, and accepts exactly the
// bodies that are one JSON object.
func FuzzAPIBody(f *testing.F) {
	for _, s := range []string{`{"label":"x"}`, `{}`, `[]`, `null`, `{"a":[[[]]]}`, `{} {}`, `{"a":1e999}`, "{\"a\":\"\xff\"}", ` {"disabled":true} `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		b, err := readTestBody(body, "application/json")
		trimmed := strings.TrimSpace(body)
		isObject := json.Valid([]byte(trimmed)) && strings.HasPrefix(trimmed, "{") && len(body) <= maxAPIBody
		if (err == nil) != isObject {
			t.Fatalf("accepted=%v for %q (object: %v, err %v)", err == nil, body, isObject, err)
		}
		if err == nil && b.fields == nil {
			t.Fatal("accepted without fields")
		}
		if err != nil {
			st := (&apiCall{noun: "accessKey"}).asAPIError(err).status
			if st != http.StatusBadRequest && st != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for %q", st, body)
			}
		}
	})
}
