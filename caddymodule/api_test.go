package caddymodule

import (
	"bytes"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestAPIHandlerCaddyfile(t *testing.T) {
	tests := []struct {
		input, realm, catalog, err string
	}{
		{"access_keys_api", "", "", ""},
		{"access_keys_api {\n}", "", "", ""},
		{"access_keys_api {\n realm \"Mgmt API\"\n}", "Mgmt API", "", ""},
		{"access_keys_api {\n scope_catalog gateway\n}", "", "gateway", ""},
		{"access_keys_api {\n realm R\n scope_catalog sumo\n}", "R", "sumo", ""},
		{"access_keys_api extra", "", "", "takes no arguments"},
		{"access_keys_api {\n realm\n}", "", "", "wrong argument count"},
		{"access_keys_api {\n realm a b\n}", "", "", "wrong argument count"},
		{"access_keys_api {\n scope x GET /\n}", "", "", "unknown setting"},
		{"access_keys_api {\n scope_catalog\n}", "", "", "wrong argument count"},
		{"access_keys_api {\n scope_catalog sumo gateway\n}", "", "", "wrong argument count"},
		{"access_keys_api {\n scope_catalog all\n}", "", "", "scope_catalog must be gateway or sumo"},
	}
	for _, tt := range tests {
		var h APIHandler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.input, err, tt.err)
			}
			continue
		}
		if err != nil || h.Realm != tt.realm || h.ScopeCatalog != tt.catalog {
			t.Errorf("%q: realm %q, scope_catalog %q, %v", tt.input, h.Realm, h.ScopeCatalog, err)
		}
	}
	if err := (&APIHandler{Realm: `a"b`}).Validate(); err == nil {
		t.Error("a realm with a quote is valid")
	}
	for _, catalog := range []string{"", "gateway", "sumo"} {
		if err := (&APIHandler{ScopeCatalog: catalog}).Validate(); err != nil {
			t.Errorf("scope_catalog %q: %v", catalog, err)
		}
	}
	if err := (&APIHandler{ScopeCatalog: "Sumo"}).Validate(); err == nil || !strings.Contains(err.Error(), "scope_catalog") {
		t.Errorf("scope_catalog \"Sumo\" (JSON): %v, want refused", err)
	}
}

// TestAPIDirectiveOrder: without a route block, access_keys_api runs before
// respond.
func TestAPIDirectiveOrder(t *testing.T) {
	in := ":8080 {\n\trespond \"fallback\"\n\taccess_keys_api\n}\n"
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings %v", warnings)
	}
	api, respond := bytes.Index(out, []byte(`"handler":"access_keys_api"`)), bytes.Index(out, []byte(`"handler":"static_response"`))
	if api < 0 || respond < 0 || api > respond {
		t.Errorf("adapted order wrong: %s", out)
	}
}
