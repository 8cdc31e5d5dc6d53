package logserver

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func benchServer(b *testing.B, mod func(*Options)) *Server {
	b.Helper()
	root := b.TempDir()
	o := Options{LogDir: filepath.Join(root, "logs"), Level: int(All), MaxSize: 8 << 20,
		Log: testLogger(b), Platform: func(int32) string { return "app" }}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// pace waits while the first output's queue is nearly full, so the
// benchmark measures what the output writes rather than what it drops.
func pace(s *Server) {
	k := s.sinks[0]
	for len(k.q) > cap(k.q)-300 {
		runtime.Gosched()
	}
}

// cpuTime is the user+system CPU time of the process: the machine running
// the benchmarks is shared, so CPU per line is the stable figure.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(b *testing.B, s *Server, start time.Time, cpu0 time.Duration) {
	s.Sync()
	el := time.Since(start).Seconds()
	st := s.Stats()
	b.ReportMetric(float64(b.N)/el, "lines/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "lines/cpu-s")
	b.ReportMetric(float64(st.Dropped), "dropped")
	b.ReportMetric(float64(st.Rotated), "rotations")
}

// BenchmarkFiletreeFlood: container lines (100 B) into filetree with
// rotation (8 MiB budget: rot_size 400 KiB) and cleanup on.
func BenchmarkFiletreeFlood(b *testing.B) {
	s := benchServer(b, nil)
	msg := strings.Repeat("x", 99)
	srcs := []string{"lxc/console.log", "var/log/messages", "syslog", "app.log"}
	b.SetBytes(int64(len(msg) + 1))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		if i%256 == 0 {
			pace(s)
		}
		s.Write(Entry{Level: Info, Platform: "app", Source: srcs[i&3], Msg: msg})
	}
	report(b, s, start, cpu0)
}

// BenchmarkFiletreeFloodPantavisor: formatted pantavisor lines.
func BenchmarkFiletreeFloodPantavisor(b *testing.B) {
	s := benchServer(b, nil)
	msg := strings.Repeat("y", 80)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		if i%256 == 0 {
			pace(s)
		}
		s.Write(Entry{Level: Info, Source: "ctrl", Msg: msg})
	}
	report(b, s, start, cpu0)
}

// BenchmarkCtrlSocketLegacy: LEGACY frames through pv-ctrl-log into
// filetree (one client, no pacing: dropped counts what the output lost).
func BenchmarkCtrlSocketLegacy(b *testing.B) {
	s := benchServer(b, func(o *Options) { o.RunDir = filepath.Join(filepath.Dir(o.LogDir), "run") })
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	c, err := net.Dial("unix", filepath.Join(s.o.RunDir, CtrlSocket))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	frame := AppendFrame(nil, CodeLegacy, LegacyPayload(Info, "app", "bench", strings.Repeat("z", 99)+"\n"))
	batch := make([]byte, 0, 64*len(frame))
	for i := 0; i < 64; i++ {
		batch = append(batch, frame...)
	}
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < b.N; i += 64 {
		if i%1024 == 0 {
			pace(s)
		}
		c.Write(batch)
	}
	c.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		st := s.Stats()
		if st.Written+st.Dropped >= uint64(b.N) {
			break
		}
	}
	report(b, s, start, cpu0)
}

// BenchmarkFloodMemory: producers flood a server whose stdout output is
// stuck; memory must stay flat (bounded queues), lines are dropped.
func BenchmarkFloodMemory(b *testing.B) {
	pr, pw := io.Pipe()
	s := benchServer(b, func(o *Options) { o.Outputs = []string{OutFiletree, OutStdout}; o.Stdout = pw })
	msg := strings.Repeat("m", 200)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Write(Entry{Level: Info, Platform: "app", Source: "flood" + strconv.Itoa(i&7), Msg: msg})
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/1024, "heap-growth-KiB")
	b.ReportMetric(float64(s.sinks[1].dropped.Load())/float64(b.N)*100, "%dropped-stdout")
	go io.Copy(io.Discard, pr)
}
