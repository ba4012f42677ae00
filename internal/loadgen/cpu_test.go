package loadgen

import (
	"os"
	"runtime"
	"testing"
)

func TestParseSyscalls(t *testing.T) {
	for _, tc := range []struct {
		name, io string
		want     int64
	}{
		{"both", "rchar: 10\nwchar: 20\nsyscr: 7\nsyscw: 5\nread_bytes: 0\n", 12},
		{"reads only", "syscr: 3\n", 3},
		{"none", "rchar: 10\n", 0},
		{"empty", "", 0},
		{"garbled count", "syscr: x\nsyscw: 5\n", 0},
		{"spacing", "syscr:   4\nsyscw:\t6\n", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseSyscalls(tc.io); got != tc.want {
				t.Errorf("parseSyscalls(%q) = %d, want %d", tc.io, got, tc.want)
			}
		})
	}
}

func TestProcessSyscallsGrows(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/<pid>/io is Linux-only")
	}
	pid := os.Getpid()
	before := ProcessSyscalls(pid)
	if before <= 0 {
		t.Fatalf("ProcessSyscalls(self) = %d, want > 0", before)
	}
	for range 10 {
		if _, err := os.ReadFile("/proc/self/stat"); err != nil {
			t.Fatal(err)
		}
	}
	if after := ProcessSyscalls(pid); after < before+10 {
		t.Errorf("after 10 file reads: %d → %d system calls, want at least 10 more", before, after)
	}
	if got := ProcessSyscalls(0); got != 0 {
		t.Errorf("ProcessSyscalls(0) = %d, want 0", got)
	}
}
