package keystore

import (
	"strings"
	"testing"
)

func TestNewAccessIDShape(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewAccessID()
		if len(id) != 14 || !strings.HasPrefix(id, "su") {
			t.Fatalf("NewAccessID() = %q: want 14 characters starting with su", id)
		}
		if !isBase62(id[2:]) {
			t.Fatalf("NewAccessID() = %q: tail is not base62", id)
		}
		if !ValidAccessID(id) {
			t.Fatalf("ValidAccessID(%q) = false for a generated ID", id)
		}
		if seen[id] {
			t.Fatalf("NewAccessID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestValidAccessID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"su0123456789AB", true},
		{"suabcdefghijkl", true},
		{"Su0123456789AB", false},
		{"xx0123456789AB", false},
		{"su0123456789A", false},
		{"su0123456789ABC", false},
		{"su0123456789A-", false},
		{"su0123456789A ", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidAccessID(tt.id); got != tt.want {
			t.Errorf("ValidAccessID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestNewAccessKeyShape(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k := NewAccessKey()
		if len(k) != 64 || !isBase62(k) {
			t.Fatalf("NewAccessKey() = %q: want 64 base62 characters", k)
		}
		if !ValidAccessKey(k) {
			t.Fatalf("ValidAccessKey(%q) = false for a generated key", k)
		}
		if got, want := k[58:], checksum(k[:58]); got != want {
			t.Fatalf("checksum of %q is %q, want %q", k, got, want)
		}
		if seen[k] {
			t.Fatalf("NewAccessKey() repeated %q", k)
		}
		seen[k] = true
	}
}

func TestValidAccessKeyRejectsEverySingleSubstitution(t *testing.T) {
	positions := []int{0, 1, 17, 31, 56, 57, 58, 59, 61, 63}
	for range 8 {
		key := NewAccessKey()
		for _, pos := range positions {
			for i := 0; i < len(base62); i++ {
				c := base62[i]
				if c == key[pos] {
					continue
				}
				mut := key[:pos] + string(c) + key[pos+1:]
				if ValidAccessKey(mut) {
					t.Fatalf("ValidAccessKey accepted %q, %q with position %d changed to %q", mut, key, pos, c)
				}
			}
		}
	}
}

func TestValidAccessKeyRejectsMalformed(t *testing.T) {
	good := NewAccessKey()
	tests := []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"one short", good[:63]},
		{"one long", good + "0"},
		{"body only", good[:58]},
		{"double", good + good},
		{"dash", good[:10] + "-" + good[11:]},
		{"underscore", good[:10] + "_" + good[11:]},
		{"space", good[:63] + " "},
		{"non-ASCII", good[:62] + "é"},
		{"NUL", good[:20] + "\x00" + good[21:]},
		{"lower-cased", strings.ToLower(good)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.key == good {
				t.Skip("mutation left the key unchanged")
			}
			if ValidAccessKey(tt.key) {
				t.Errorf("ValidAccessKey(%q) = true", tt.key)
			}
		})
	}
	if !ValidAccessKey(good) {
		t.Fatalf("ValidAccessKey(%q) = false", good)
	}
}

// TestChecksumDistribution checks that the checksum spreads keys: few
// collisions, every base62 digit used in the low positions, and the high
// digit bounded by the 32-bit CRC (62^6 > 2^32, so it is 0..4).
func TestChecksumDistribution(t *testing.T) {
	const n = 31000 // 500 per bucket of the last digit
	counts := [62]int{}
	sums := map[string]int{}
	for range n {
		k := NewAccessKey()
		sum := k[58:]
		sums[sum]++
		counts[base62Index[sum[5]]]++
		if d := base62Index[sum[0]]; d > 4 {
			t.Fatalf("checksum %q: leading digit %d above 4 cannot come from a 32-bit CRC", sum, d)
		}
	}
	// Expected collisions for n uniform 32-bit values: n²/2³³ ≈ 0.1.
	if dup := n - len(sums); dup > 5 {
		t.Errorf("%d checksum collisions in %d keys", dup, n)
	}
	// Each bucket expects 500 (sd ≈ 22); allow ±30%.
	for d, c := range counts {
		if c < 350 || c > 650 {
			t.Errorf("last checksum digit %q appears %d times of %d, want about 500", base62[d], c, n)
		}
	}
}

func TestRandomBase62Uniform(t *testing.T) {
	s := randomBase62(62 * 1000)
	counts := [62]int{}
	for i := 0; i < len(s); i++ {
		counts[base62Index[s[i]]]++
	}
	for d, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("digit %q appears %d times, want about 1000", base62[d], c)
		}
	}
}

func TestHashSecret(t *testing.T) {
	k := NewAccessKey()
	h := HashSecret(k)
	if len(h) != 64 || strings.Contains(h, k) {
		t.Fatalf("HashSecret = %q", h)
	}
	if !secretMatches(k, h) {
		t.Error("secretMatches(key, HashSecret(key)) = false")
	}
	if secretMatches(NewAccessKey(), h) {
		t.Error("secretMatches accepted another key")
	}
	if secretMatches(k, "") {
		t.Error("secretMatches accepted an empty hash")
	}
}
