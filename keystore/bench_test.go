package keystore

import (
	"testing"
)

func BenchmarkVerifyRedis(b *testing.B) {
	f := newFixture(b)
	k, secret := f.createKey(b, KeySpec{Scopes: []string{"viewCollectors"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.store.Verify(f.ctx, k.ID, secret, VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidAccessKey(b *testing.B) {
	key := NewAccessKey()
	b.ReportAllocs()
	for b.Loop() {
		if !ValidAccessKey(key) {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkNormalizeOrigin(b *testing.B) {
	for _, in := range []string{"https://app.example.com", "HTTPS://App.Example.com:443", "https://[2001:db8::1]:8443"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizeOrigin(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
