package keystore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// disguising are characters that hide or reorder text when shown: C0 and
// C1 controls and the bidirectional formatting characters.
var disguising = []rune{0x00, 0x09, 0x0a, 0x1b, 0x7f, 0x80, 0x85, 0x9f,
	0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069}

func TestPlainText(t *testing.T) {
	for _, s := range []string{"", "deploy key", "Zoë Ørsted", "ключ", "مفتاح", "密钥 🔑", "a\u200db", "x\u00a0y"} {
		if !plainText(s) {
			t.Errorf("plainText(%q) = false, want true", s)
		}
	}
	for _, r := range disguising {
		if s := "abc" + string(r) + "def"; plainText(s) {
			t.Errorf("plainText(%q) = true, want false", s)
		}
	}
	if plainText("abc\xff") {
		t.Error("plainText accepts invalid UTF-8")
	}
}

// TestDisguisingTextIsRefused: labels, names, e-mail addresses and role
// descriptions with control or bidirectional formatting characters are
// refused with the field's code, and nothing is written.
func TestDisguisingTextIsRefused(t *testing.T) {
	f := newFixture(t)
	for _, r := range disguising {
		bad := "gen" + string(r) + "txt.exe"
		tests := []struct {
			name, code string
			op         func() error
		}{
			{"label", "accessKey:label_invalid", func() error {
				_, _, err := f.store.CreateKey(f.ctx, KeySpec{Label: bad, OwnerID: testUser}, testOp)
				return err
			}},
			{"firstName", "owner:invalid_firstName", func() error {
				_, err := f.store.CreateOwner(f.ctx, Owner{ID: "U2", Kind: OwnerUser, Email: "u2@example.com", FirstName: bad}, testOp)
				return err
			}},
			{"lastName", "owner:invalid_lastName", func() error {
				_, err := f.store.PutOwner(f.ctx, Owner{ID: "U2", Kind: OwnerUser, Email: "u2@example.com", LastName: bad}, "admin")
				return err
			}},
			{"email", "owner:invalid_email", func() error {
				_, err := f.store.CreateOwner(f.ctx, Owner{ID: "U2", Kind: OwnerUser, Email: "u" + string(r) + "2@example.com"}, testOp)
				return err
			}},
			{"service account name", "owner:invalid_name", func() error {
				_, err := f.store.CreateOwner(f.ctx, Owner{ID: "S2", Kind: OwnerServiceAccount, Email: "s2@example.com", Name: bad}, testOp)
				return err
			}},
			{"role name", "role:invalid_name", func() error {
				_, err := f.store.CreateRole(f.ctx, Role{ID: "r2", Name: bad}, testOp)
				return err
			}},
			{"role description", "role:invalid_description", func() error {
				_, err := f.store.CreateRole(f.ctx, Role{ID: "r2", Name: "R2", Description: bad}, testOp)
				return err
			}},
			{"role name from the command line", "role:invalid_name", func() error {
				_, err := f.store.PutRole(f.ctx, Role{ID: "r2", Name: bad}, "admin")
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s U+%04X", tt.name, r), func(t *testing.T) {
				before := fmt.Sprint(dumpDB(t, f.rdb))
				err := tt.op()
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("want *ValidationError, got %T %v", err, err)
				}
				codes := make([]string, len(ve.Problems))
				for i, p := range ve.Problems {
					codes[i] = p.Code
				}
				if !slices.Contains(codes, tt.code) {
					t.Errorf("codes %q, want %s", codes, tt.code)
				}
				if after := fmt.Sprint(dumpDB(t, f.rdb)); after != before {
					t.Error("Redis changed")
				}
			})
		}
	}
}

func TestClientText(t *testing.T) {
	long := strings.Repeat("a", 2000)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"short", "/api/v1/x", "/api/v1/x"},
		{"exactly the limit", long[:maxClientText], long[:maxClientText]},
		{"one byte over", long[:maxClientText+1], long[:maxClientText] + "…"},
		{"long ASCII", long, long[:maxClientText] + "…"},
		// A two-byte rune straddles the limit: it is left out whole.
		{"split rune", long[:maxClientText-1] + "é" + long, long[:maxClientText-1] + "…"},
		// A four-byte rune ending right at the limit is kept whole.
		{"rune at the limit", long[:maxClientText-4] + "😀" + long, long[:maxClientText-4] + "😀…"},
		{"four-byte rune straddling", long[:maxClientText-2] + "😀" + long, long[:maxClientText-2] + "…"},
		// Not UTF-8 at all: the cut still happens, within three bytes.
		{"continuation bytes", strings.Repeat("\x80", 2000), strings.Repeat("\x80", maxClientText-3) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ClientText(tc.in)
			if got != tc.want {
				t.Errorf("clientText: got %d bytes ending %q, want %d bytes ending %q", len(got), got[max(0, len(got)-8):], len(tc.want), tc.want[max(0, len(tc.want)-8):])
			}
			if len(got) > maxClientText+len("…") {
				t.Errorf("clientText: %d bytes, want at most %d", len(got), maxClientText+len("…"))
			}
			if utf8.ValidString(tc.in) && !utf8.ValidString(got) {
				t.Error("clientText made valid UTF-8 invalid")
			}
		})
	}
}
