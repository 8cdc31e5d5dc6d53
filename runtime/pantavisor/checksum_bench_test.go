package pantavisor

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// benchObjects is the revision the checksum benchmarks verify: 4 objects
// of 32 MiB (a typical container's squashfs each).
const (
	benchObjectCount = 4
	benchObjectSize  = 32 << 20
)

// BenchmarkChecksumRevision measures RUN's object verification (one
// goroutine, so one core) on a revision whose objects are in the page
// cache: the figure to hold against BenchmarkSHA256Raw, Go's sha256 on
// the same bytes in memory. The MB/s column is the speed.
func BenchmarkChecksumRevision(b *testing.B) {
	root := newStorage(b)
	objects := map[string][]byte{}
	for i := 0; i < benchObjectCount; i++ {
		data := make([]byte, benchObjectSize)
		rand.Read(data)
		objects[fmt.Sprintf("app%d/root.squashfs", i)] = data
	}
	storeObjects(b, root, objects)
	st, err := storage.Open(root)
	if err != nil {
		b.Fatal(err)
	}
	conf, err := config.Load(config.Options{})
	if err != nil {
		b.Fatal(err)
	}
	data, err := st.StateJSON("0")
	if err != nil {
		b.Fatal(err)
	}
	rev, err := state.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	d := &Daemon{conf: conf, store: st, log: slog.New(slog.DiscardHandler)}
	if _, err := d.checkObjects("0", rev); err != nil { // and warms the page cache
		b.Fatal(err)
	}
	b.SetBytes(benchObjectCount * benchObjectSize)
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := d.checkObjects("0", rev); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu, benchObjectCount*benchObjectSize)
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds MB per CPU second: on a shared machine the wall-clock
// MB/s says how busy the neighbours were, this says what one core does.
func reportCPU(b *testing.B, since time.Duration, bytesPerOp int64) {
	if used := cpuTime() - since; used > 0 {
		b.ReportMetric(float64(bytesPerOp)*float64(b.N)/1e6/used.Seconds(), "MB/cpu-s")
	}
}

// BenchmarkSHA256Raw is the baseline: crypto/sha256 over a 32 MiB buffer
// in memory (SHA extensions when the CPU has them, sha_ni in
// /proc/cpuinfo).
func BenchmarkSHA256Raw(b *testing.B) {
	data := make([]byte, benchObjectSize)
	rand.Read(data)
	b.SetBytes(benchObjectSize)
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		sha256.Sum256(data)
	}
	reportCPU(b, cpu, benchObjectSize)
}
