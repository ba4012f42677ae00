package loadgen

import (
	"maps"
	"testing"
)

func TestParseCommandStats(t *testing.T) {
	tests := []struct {
		name    string
		info    string
		want    CommandStats
		wantErr bool
	}{
		{
			name: "Redis 7",
			info: "# Commandstats\r\n" +
				"cmdstat_get:calls=12,usec=40,usec_per_call=3.33,rejected_calls=0,failed_calls=0\r\n" +
				"cmdstat_client|setinfo:calls=4,usec=3,usec_per_call=0.75,rejected_calls=0,failed_calls=0\r\n" +
				"cmdstat_INFO:calls=7,usec=700,usec_per_call=100.00,rejected_calls=0,failed_calls=0\r\n",
			want: CommandStats{"get": 12, "client|setinfo": 4, "info": 7},
		},
		{name: "empty section", info: "# Commandstats\r\n", want: CommandStats{}},
		{name: "no colon", info: "cmdstat_get calls=1\r\n", wantErr: true},
		{name: "no calls", info: "cmdstat_get:usec=1\r\n", wantErr: true},
		{name: "bad number", info: "cmdstat_get:calls=x,usec=1\r\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommandStats(tt.info)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCommandStatsArithmetic(t *testing.T) {
	before := CommandStats{"get": 10, "info": 3, "ping": 1}
	after := CommandStats{"get": 110, "info": 9, "ping": 1, "zrange": 5, "set": 5}
	d := after.Sub(before)
	if want := (CommandStats{"get": 100, "info": 6, "zrange": 5, "set": 5}); !maps.Equal(d, want) {
		t.Errorf("Sub = %v, want %v", d, want)
	}
	if got := d.Total(); got != 110 {
		t.Errorf("Total = %d, want 110 (INFO, the observer's own, left out)", got)
	}
	if got, want := d.Top(2), "get=100 set=5"; got != want {
		t.Errorf("Top(2) = %q, want %q (ties by name)", got, want)
	}
}

func TestParseInfoInt(t *testing.T) {
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n"
	if got, err := parseInfoInt(info, "used_memory"); err != nil || got != 1<<20 {
		t.Errorf("used_memory = %d, %v; want %d", got, err, 1<<20)
	}
	if _, err := parseInfoInt(info, "used_memory_peak"); err == nil {
		t.Error("a missing field gave no error")
	}
}
