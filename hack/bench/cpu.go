package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// CPU accounting from /proc (Linux), for suites that want to show where the
// machine's time went: this process, its child processes by name (e.g. the
// envtest kube-apiserver and etcd) and the rest of the machine. Elsewhere the
// figures are simply missing.

// clockTick is USER_HZ, 100 on every Linux platform Go supports.
const clockTick = 100

// cpuSample is a point-in-time reading of CPU time.
type cpuSample struct {
	at       time.Time
	machine  time.Duration            // busy time of all CPUs (not idle, not iowait)
	self     time.Duration            // this process
	children map[string]time.Duration // direct children, by command name
	ok       bool
}

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now(), children: map[string]time.Duration{}}
	busy, err := machineBusy()
	if err != nil {
		return s
	}
	s.machine = busy
	self, _, _, err := procCPU("/proc/self/stat")
	if err != nil {
		return s
	}
	s.self = self
	pid := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		t, ppid, comm, err := procCPU(f)
		if err == nil && ppid == pid {
			s.children[comm] += t
		}
	}
	s.ok = true
	return s
}

// cpuUse is the CPU time spent between two samples.
type cpuUse struct {
	wall     time.Duration
	machine  time.Duration
	self     time.Duration
	children map[string]time.Duration
	ok       bool
}

func (s cpuSample) since(before cpuSample) cpuUse {
	u := cpuUse{wall: s.at.Sub(before.at), children: map[string]time.Duration{}}
	if !s.ok || !before.ok {
		return u
	}
	u.machine, u.self, u.ok = s.machine-before.machine, s.self-before.self, true
	for k, v := range s.children {
		u.children[k] = v - before.children[k]
	}
	return u
}

// rest is the machine's busy time not spent by this process or its children.
func (u cpuUse) rest() time.Duration {
	r := u.machine - u.self
	for _, v := range u.children {
		r -= v
	}
	return max(0, r)
}

func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, errors.New("unexpected /proc/stat")
	}
	var busy uint64
	// user nice system idle iowait irq softirq steal (guest is inside user).
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, err
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return ticks(busy), nil
}

// procCPU returns utime+stime, the parent pid and the command name from a
// /proc/PID/stat file.
func procCPU(path string) (time.Duration, string, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", "", err
	}
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return 0, "", "", errors.New("unexpected " + path)
	}
	comm := s[open+1 : closing]
	f := strings.Fields(s[closing+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return 0, "", "", errors.New("unexpected " + path)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, "", "", errors.New("unexpected " + path)
	}
	return ticks(ut + st), f[1], comm, nil
}

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTick }

// Profiler labels that split a CPU profile of the bench process into its
// parts: goroutines labelled part=sink serve the consumer (the webhook
// targets), part=bench samples progress; everything else, the publishing
// included (in production the receiver's HTTP handler publishes), is the
// receiver's.
const (
	profilePart = "part"
	partSink    = "sink"
	partBench   = "bench"
)

// profileParts sums a CPU profile's samples by the part label: the total
// and the time of each labelled part.
func profileParts(path string) (total time.Duration, parts map[string]time.Duration, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = f.Close() }()
	p, err := profile.Parse(f)
	if err != nil {
		return 0, nil, err
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			idx = i
		}
	}
	if idx < 0 {
		return 0, nil, errors.New("no cpu/nanoseconds sample type")
	}
	parts = map[string]time.Duration{}
	for _, s := range p.Sample {
		d := time.Duration(s.Value[idx])
		total += d
		if v := s.Label[profilePart]; len(v) > 0 {
			parts[v[0]] += d
		}
	}
	return total, parts, nil
}

// startCPUProfile writes this process's CPU profile to path until stop is
// called; stop may be called more than once (a deferred call after an
// explicit one does nothing). An empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return sync.OnceFunc(func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}), nil
}
