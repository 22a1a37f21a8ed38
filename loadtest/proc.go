package loadtest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (proc(5)). Linux fixes it at 100 on every architecture Go supports.
const clockTicks = 100

// procSample is one reading of a process's CPU time and memory.
type procSample struct {
	at      time.Time
	cpu     time.Duration // user + system
	sys     time.Duration // system (kernel) time alone
	rss     uint64        // VmRSS, bytes
	peakRSS uint64        // VmHWM, bytes: the high-water mark since the process started
}

// readProc reads /proc/PID/stat and /proc/PID/status under root.
func readProc(root string, pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	dir := filepath.Join(root, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return s, fmt.Errorf("loadtest: server process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields from the last ')'. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return s, fmt.Errorf("loadtest: %s/stat: unexpected format", dir)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("loadtest: %s/stat: only %d fields", dir, len(f)+2)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("loadtest: %s/stat: bad utime/stime", dir)
	}
	s.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	s.sys = time.Duration(stime) * time.Second / clockTicks

	status, err := os.Open(filepath.Join(dir, "status"))
	if err != nil {
		return s, fmt.Errorf("loadtest: server process %d: %w", pid, err)
	}
	defer status.Close()
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return s, fmt.Errorf("loadtest: %s/status: bad %s %q", dir, k, v)
		}
		if k == "VmRSS" {
			s.rss = kb << 10
		} else {
			s.peakRSS = kb << 10
		}
	}
	return s, sc.Err()
}
