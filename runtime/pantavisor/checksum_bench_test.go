package pantavisor

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"testing"

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
	if err := d.checkObjects(rev); err != nil { // and warms the page cache
		b.Fatal(err)
	}
	b.SetBytes(benchObjectCount * benchObjectSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.checkObjects(rev); err != nil {
			b.Fatal(err)
		}
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
	for i := 0; i < b.N; i++ {
		sha256.Sum256(data)
	}
}
