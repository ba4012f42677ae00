package loadgen

import "testing"

func TestCountPubSub(t *testing.T) {
	list := "id=3 addr=127.0.0.1:50000 laddr=127.0.0.1:6379 fd=8 name= age=10 idle=0 flags=N db=0 sub=0 psub=0 cmd=client|list\n" +
		"id=4 addr=127.0.0.1:50002 laddr=127.0.0.1:6379 fd=9 name= age=9 idle=9 flags=P db=0 sub=1 psub=0 cmd=subscribe\n" +
		"id=5 addr=127.0.0.1:50004 laddr=127.0.0.1:6379 fd=10 name= age=9 idle=9 flags=NP db=0 sub=0 psub=1 cmd=psubscribe\n"
	if got := countPubSub(list); got != 2 {
		t.Errorf("countPubSub = %d, want 2", got)
	}
	if got := countPubSub(""); got != 0 {
		t.Errorf("countPubSub of nothing = %d, want 0", got)
	}
}

func TestParseMemInfo(t *testing.T) {
	text := "MemTotal:       24000000 kB\nMemFree:        1000 kB\nMemAvailable:   20000000 kB\nbroken\n"
	avail, total := parseMemInfo(text)
	if avail != 20000000<<10 || total != 24000000<<10 {
		t.Errorf("parseMemInfo = %d, %d; want %d, %d", avail, total, 20000000<<10, 24000000<<10)
	}
}

func TestMiddleID(t *testing.T) {
	tests := []struct {
		ids  []string
		want string
	}{
		{nil, ""},
		{[]string{"c"}, "c"},
		{[]string{"d", "a", "c", "b", "e"}, "c"},
		{[]string{"d", "a", "c", "b"}, "c"},
	}
	for _, tt := range tests {
		if got := MiddleID(tt.ids); got != tt.want {
			t.Errorf("MiddleID(%q) = %q, want %q", tt.ids, got, tt.want)
		}
	}
}
