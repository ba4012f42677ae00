package loadgen

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ProcessCPU returns the CPU time the process pid has used so far, from
// the scheduler statistics of its threads (nanosecond resolution), or
// from /proc/<pid>/stat (clock ticks) where those are missing. It is
// Linux-only and returns 0 elsewhere or on error.
func ProcessCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err == nil {
		var total time.Duration
		ok := true
		for _, t := range tasks {
			b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
			if err != nil {
				continue // the thread exited
			}
			f := strings.Fields(string(b))
			if len(f) == 0 {
				ok = false
				break
			}
			ns, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				ok = false
				break
			}
			total += time.Duration(ns)
		}
		if ok && total > 0 {
			return total
		}
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick
}

// ProcessSyscalls returns the read and write system calls the process pid
// has made so far (syscr + syscw of /proc/<pid>/io: reads and writes of
// sockets included). It is Linux-only and returns 0 elsewhere, on error
// or without the permission to read the file.
func ProcessSyscalls(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "io"))
	if err != nil {
		return 0
	}
	return parseSyscalls(string(b))
}

// parseSyscalls sums the syscr and syscw lines of a /proc/<pid>/io file.
func parseSyscalls(io string) int64 {
	var n int64
	for line := range strings.SplitSeq(io, "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "syscr" && name != "syscw") {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0
		}
		n += v
	}
	return n
}
