package keystore

import "testing"

// TestSentinels: the sentinel options carry the credentials of the
// sentinel URLs and the TLS of the data servers' URL, as the failover
// client's own sentinel connections do; other topologies have none.
func TestSentinels(t *testing.T) {
	tests := []struct {
		name       string
		cfg        RedisConfig
		master     string
		addrs      []string
		user, pass string
		tls        bool
		err        bool
	}{
		{"single server", RedisConfig{URLs: []string{"redis://127.0.0.1:6379"}}, "", nil, "", "", false, false},
		{"plain sentinels", RedisConfig{SentinelMaster: "m", SentinelAddrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"}}, "m", []string{"10.0.0.1:26379", "10.0.0.2:26379"}, "", "", false, false},
		{"sentinel credentials, TLS", RedisConfig{URLs: []string{"rediss://u:p@db:6379"}, SentinelMaster: "m", SentinelAddrs: []string{"redis://su:sp@10.0.0.1:26379"}}, "m", []string{"10.0.0.1:26379"}, "su", "sp", true, false},
		{"no sentinel", RedisConfig{SentinelMaster: "m"}, "", nil, "", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			master, opts, err := Sentinels(tt.cfg)
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if master != tt.master || len(opts) != len(tt.addrs) {
				t.Fatalf("master %q with %d sentinels, want %q with %d", master, len(opts), tt.master, len(tt.addrs))
			}
			for i, o := range opts {
				if o.Addr != tt.addrs[i] || o.Username != tt.user || o.Password != tt.pass || (o.TLSConfig != nil) != tt.tls {
					t.Errorf("sentinel %d: %s user %q password %q TLS %v", i, o.Addr, o.Username, o.Password, o.TLSConfig != nil)
				}
				if o.DialTimeout != defaultDialTimeout || o.ReadTimeout != defaultIOTimeout {
					t.Errorf("sentinel %d: timeouts %v, %v", i, o.DialTimeout, o.ReadTimeout)
				}
			}
		})
	}
}
